// Internal: the token grammar of npm semver 7.6 (internal/re.js, the "safeRe" variants with
// bounded quantifiers), compiled by hand. Matching npm byte for byte matters more than
// elegance: validity must agree with the oracle, so each rule names the regex it mirrors.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace lichen::semver::grammar {

inline constexpr size_t kMaxLength = 256;                      // MAX_LENGTH
inline constexpr uint64_t kMaxSafeInteger = 9007199254740991;  // Number.MAX_SAFE_INTEGER
inline constexpr size_t kMaxDigits = 256;                      // `\d*` -> `\d{0,256}`
inline constexpr size_t kMaxIdentChars = 250;                  // `[a-zA-Z0-9-]*` -> `{0,250}`
inline constexpr size_t kNpos = std::string_view::npos;

inline bool IsDigit(char c) { return c >= '0' && c <= '9'; }
inline bool IsLetterOrHyphen(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
}
inline bool IsIdentChar(char c) { return IsDigit(c) || IsLetterOrHyphen(c); }

// Length of the run of characters at `pos` that satisfy `pred`, counting at most `limit`
// (a bounded quantifier never needs to look further, and it keeps scans linear).
template <typename Pred>
size_t RunLength(std::string_view s, size_t pos, Pred pred, size_t limit = kNpos) {
  size_t end = pos;
  while (end < s.size() && end - pos < limit && pred(s[end])) {
    ++end;
  }
  return end - pos;
}

// Byte length of the ECMAScript whitespace or line terminator (what `\s` and trim() match)
// encoded in UTF-8 at `pos`, or 0. npm sees JS strings, so U+00A0, U+3000, U+FEFF... count.
size_t JsSpaceAt(std::string_view s, size_t pos);
// String.prototype.trim().
std::string_view JsTrim(std::string_view s);
// String.prototype.length: UTF-16 code units (an invalid UTF-8 byte counts as one).
size_t Utf16Length(std::string_view s);

// `0|[1-9]\d{0,256}` matching all of `s`.
bool IsNumericIdentifier(std::string_view s);
// Strict PRERELEASEIDENTIFIER matching all of `s`.
bool IsPrereleaseIdentifier(std::string_view s);
// BUILDIDENTIFIER matching all of `s`.
bool IsBuildIdentifier(std::string_view s);

// `(?:-(PRERELEASE))?(?:\+(BUILD))?$` anchored at both ends of `s`: the tail of a version.
struct Tail {
  std::string_view prerelease;  // without the '-'; empty when absent
  std::string_view build;       // without the '+'; empty when absent
};
std::optional<Tail> MatchTail(std::string_view s);

// The text quoted for an error message: escaped, and shortened when very long.
std::string Quote(std::string_view text);

// Parses a decimal digit string; nullopt when it is not one or exceeds MAX_SAFE_INTEGER.
std::optional<uint64_t> ParseSafeInteger(std::string_view digits);

}  // namespace lichen::semver::grammar
