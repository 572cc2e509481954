#include "semver/npm_grammar.h"

namespace lichen::semver::grammar {

size_t JsSpaceAt(std::string_view s, size_t pos) {
  if (pos >= s.size()) {
    return 0;
  }
  const auto byte = [&](size_t i) -> unsigned char {
    return pos + i < s.size() ? static_cast<unsigned char>(s[pos + i]) : 0;
  };
  const unsigned char b0 = byte(0);
  if (b0 == ' ' || (b0 >= 0x09 && b0 <= 0x0D)) {
    return 1;
  }
  if (b0 == 0xC2 && byte(1) == 0xA0) {  // U+00A0
    return 2;
  }
  if (b0 == 0xE1 && byte(1) == 0x9A && byte(2) == 0x80) {  // U+1680
    return 3;
  }
  if (b0 == 0xE2 && byte(1) == 0x80) {
    const unsigned char b2 = byte(2);
    // U+2000..U+200A, U+2028, U+2029, U+202F
    if ((b2 >= 0x80 && b2 <= 0x8A) || b2 == 0xA8 || b2 == 0xA9 || b2 == 0xAF) {
      return 3;
    }
  }
  if (b0 == 0xE2 && byte(1) == 0x81 && byte(2) == 0x9F) {  // U+205F
    return 3;
  }
  if (b0 == 0xE3 && byte(1) == 0x80 && byte(2) == 0x80) {  // U+3000
    return 3;
  }
  if (b0 == 0xEF && byte(1) == 0xBB && byte(2) == 0xBF) {  // U+FEFF
    return 3;
  }
  return 0;
}

std::string_view JsTrim(std::string_view s) {
  size_t begin = 0;
  while (size_t n = JsSpaceAt(s, begin)) {
    begin += n;
  }
  // Whitespace is at most three bytes long, so scan forward for the last non-space.
  size_t end = begin;
  size_t pos = begin;
  while (pos < s.size()) {
    if (size_t n = JsSpaceAt(s, pos)) {
      pos += n;
    } else {
      ++pos;
      end = pos;
    }
  }
  return s.substr(begin, end - begin);
}

size_t Utf16Length(std::string_view s) {
  size_t units = 0;
  size_t i = 0;
  while (i < s.size()) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    size_t len = 1;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
      len = 2;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
      len = 3;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
      len = 4;
    }
    bool valid = i + len <= s.size();
    for (size_t k = 1; valid && k < len; ++k) {
      valid = (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
    }
    if (!valid) {
      len = 1;
    }
    units += len == 4 ? 2 : 1;
    i += len;
  }
  return units;
}

bool IsNumericIdentifier(std::string_view s) {
  if (s == "0") {
    return true;
  }
  return !s.empty() && s[0] != '0' && s.size() <= kMaxDigits + 1 &&
         RunLength(s, 0, IsDigit) == s.size();
}

bool IsPrereleaseIdentifier(std::string_view s) {
  if (s.empty() || RunLength(s, 0, IsIdentChar) != s.size()) {
    return false;
  }
  const size_t digits = RunLength(s, 0, IsDigit);
  if (digits == s.size()) {
    return IsNumericIdentifier(s);
  }
  // `\d{0,256}[a-zA-Z-][a-zA-Z0-9-]{0,250}`: the first non-digit is the pivot.
  return digits <= kMaxDigits && s.size() - digits - 1 <= kMaxIdentChars;
}

bool IsBuildIdentifier(std::string_view s) {
  return !s.empty() && s.size() <= kMaxIdentChars && RunLength(s, 0, IsIdentChar) == s.size();
}

namespace {

// `ID(?:\.ID)*` from `pos`; each identifier is a maximal [a-zA-Z0-9-] run because only '.',
// '+' or the end may follow it. Returns the end, or kNpos.
template <typename IsId>
size_t MatchDottedIdentifiers(std::string_view s, size_t pos, IsId is_id) {
  while (true) {
    const size_t len = RunLength(s, pos, IsIdentChar);
    if (!is_id(s.substr(pos, len))) {
      return kNpos;
    }
    pos += len;
    if (pos < s.size() && s[pos] == '.') {
      ++pos;
      continue;
    }
    return pos;
  }
}

}  // namespace

std::optional<Tail> MatchTail(std::string_view s) {
  Tail tail;
  size_t pos = 0;
  if (pos < s.size() && s[pos] == '-') {
    const size_t end = MatchDottedIdentifiers(s, pos + 1, IsPrereleaseIdentifier);
    if (end == kNpos) {
      return std::nullopt;
    }
    tail.prerelease = s.substr(pos + 1, end - pos - 1);
    pos = end;
  }
  if (pos < s.size() && s[pos] == '+') {
    const size_t end = MatchDottedIdentifiers(s, pos + 1, IsBuildIdentifier);
    if (end == kNpos) {
      return std::nullopt;
    }
    tail.build = s.substr(pos + 1, end - pos - 1);
    pos = end;
  }
  if (pos != s.size()) {
    return std::nullopt;
  }
  return tail;
}

std::string Quote(std::string_view text) {
  constexpr size_t kShown = 120;
  std::string out = "\"";
  for (size_t i = 0; i < text.size() && i < kShown; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7F) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '"';
  if (text.size() > kShown) {
    out += "... (" + std::to_string(text.size()) + " bytes)";
  }
  return out;
}

std::optional<uint64_t> ParseSafeInteger(std::string_view digits) {
  if (digits.empty() || RunLength(digits, 0, IsDigit) != digits.size()) {
    return std::nullopt;
  }
  while (digits.size() > 1 && digits[0] == '0') {
    digits.remove_prefix(1);
  }
  // 17+ significant digits always exceed 2^53 - 1 (and would overflow uint64_t later).
  if (digits.size() > 16) {
    return std::nullopt;
  }
  uint64_t value = 0;
  for (char c : digits) {
    value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  if (value > kMaxSafeInteger) {
    return std::nullopt;
  }
  return value;
}

}  // namespace lichen::semver::grammar
