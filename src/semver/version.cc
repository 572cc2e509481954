#include "semver/version.h"

#include <algorithm>
#include <tuple>
#include <utility>

#include "semver/npm_grammar.h"

namespace lichen::semver {
namespace {

using grammar::Quote;

constexpr std::string_view kShape = "MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]";
constexpr size_t kGreengrassMaxLength = 64;
constexpr uint64_t kGreengrassMaxNumber = 999999;

std::vector<std::string> SplitDots(std::string_view s) {
  std::vector<std::string> parts;
  if (s.empty()) {
    return parts;
  }
  size_t start = 0;
  while (true) {
    const size_t dot = s.find('.', start);
    parts.emplace_back(s.substr(start, dot - start));
    if (dot == std::string_view::npos) {
      return parts;
    }
    start = dot + 1;
  }
}

bool IsAllDigits(std::string_view s) {
  return !s.empty() && grammar::RunLength(s, 0, grammar::IsDigit) == s.size();
}

// Exact numeric order of two digit strings of any length.
std::weak_ordering CompareDigits(std::string_view a, std::string_view b) {
  const auto strip = [](std::string_view s) {
    while (s.size() > 1 && s[0] == '0') {
      s.remove_prefix(1);
    }
    return s;
  };
  a = strip(a);
  b = strip(b);
  if (a.size() != b.size()) {
    return a.size() <=> b.size();
  }
  return a.compare(b) <=> 0;
}

std::string Join(const std::vector<std::string>& ids) {
  std::string out;
  for (const auto& id : ids) {
    if (!out.empty()) {
      out += '.';
    }
    out += id;
  }
  return out;
}

}  // namespace

Result<Version> Version::Parse(std::string_view text) {
  // npm measures String.length before trimming, so whitespace counts toward the limit.
  if (grammar::Utf16Length(text) > grammar::kMaxLength) {
    return MakeError("invalid version " + Quote(text) + ": longer than " +
                     std::to_string(grammar::kMaxLength) + " characters");
  }
  const std::string_view s = grammar::JsTrim(text);
  size_t pos = (!s.empty() && s[0] == 'v') ? 1 : 0;
  std::string_view numbers[3];
  for (int i = 0; i < 3; ++i) {
    const size_t len = grammar::RunLength(s, pos, grammar::IsDigit);
    numbers[i] = s.substr(pos, len);
    pos += len;
    const bool separator_ok = i == 2 || (pos < s.size() && s[pos] == '.');
    if (!grammar::IsNumericIdentifier(numbers[i]) || !separator_ok) {
      return MakeError("invalid version " + Quote(text) + ": expected " + std::string(kShape) +
                       " with numbers without leading zeros");
    }
    pos += i == 2 ? 0 : 1;
  }
  const auto tail = grammar::MatchTail(s.substr(pos));
  if (!tail) {
    return MakeError("invalid version " + Quote(text) +
                     ": prerelease and build identifiers must be non-empty [0-9A-Za-z-] "
                     "runs, numeric prerelease identifiers without leading zeros");
  }
  Version v;
  uint64_t* fields[3] = {&v.major, &v.minor, &v.patch};
  static constexpr const char* kNames[3] = {"major", "minor", "patch"};
  for (int i = 0; i < 3; ++i) {
    const auto n = grammar::ParseSafeInteger(numbers[i]);
    if (!n) {
      return MakeError("invalid version " + Quote(text) + ": " + kNames[i] + " " +
                       std::string(numbers[i]) + " exceeds Number.MAX_SAFE_INTEGER (" +
                       std::to_string(grammar::kMaxSafeInteger) + ")");
    }
    *fields[i] = *n;
  }
  v.prerelease = SplitDots(tail->prerelease);
  v.build = SplitDots(tail->build);
  return v;
}

Result<Version> Version::ParseStrict(std::string_view text) {
  const std::string what = "component version " + Quote(text);
  if (text.empty()) {
    return MakeError(what + " is empty: expected " + std::string(kShape));
  }
  if (text.size() > kGreengrassMaxLength) {
    return MakeError(what + " is longer than " + std::to_string(kGreengrassMaxLength) +
                     " characters");
  }
  if (grammar::JsTrim(text).size() != text.size()) {
    return MakeError(what + " must not have surrounding whitespace");
  }
  if (text[0] == 'v' || text[0] == '=') {
    return MakeError(what + " must not have a '" + text[0] + "' prefix: expected " +
                     std::string(kShape));
  }
  auto parsed = Parse(text);
  if (!parsed) {
    return MakeError(what + " is not valid SemVer 2.0.0: " + parsed.error().message);
  }
  const Version& v = *parsed;
  const std::pair<const char*, uint64_t> fields[3] = {
      {"major", v.major}, {"minor", v.minor}, {"patch", v.patch}};
  for (const auto& [name, value] : fields) {
    if (value > kGreengrassMaxNumber) {
      return MakeError(what + ": " + name + " " + std::to_string(value) + " exceeds " +
                       std::to_string(kGreengrassMaxNumber));
    }
  }
  return parsed;
}

std::string Version::ToString() const {
  std::string out =
      std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
  if (!prerelease.empty()) {
    out += "-" + Join(prerelease);
  }
  return out;
}

std::string Version::ToStringWithBuild() const {
  std::string out = ToString();
  if (!build.empty()) {
    out += "+" + Join(build);
  }
  return out;
}

std::weak_ordering operator<=>(const Version& a, const Version& b) {
  if (auto c = std::tie(a.major, a.minor, a.patch) <=> std::tie(b.major, b.minor, b.patch);
      c != 0) {
    return c;
  }
  // A release ranks above its prereleases.
  if (a.prerelease.empty() || b.prerelease.empty()) {
    return a.prerelease.empty() <=> b.prerelease.empty();
  }
  const size_t common = std::min(a.prerelease.size(), b.prerelease.size());
  for (size_t i = 0; i < common; ++i) {
    const std::string& x = a.prerelease[i];
    const std::string& y = b.prerelease[i];
    const bool x_num = IsAllDigits(x);
    const bool y_num = IsAllDigits(y);
    std::weak_ordering c = std::weak_ordering::equivalent;
    if (x_num && y_num) {
      c = CompareDigits(x, y);
    } else if (x_num != y_num) {
      c = x_num ? std::weak_ordering::less : std::weak_ordering::greater;
    } else {
      c = x.compare(y) <=> 0;
    }
    if (c != 0) {
      return c;
    }
  }
  return a.prerelease.size() <=> b.prerelease.size();
}

}  // namespace lichen::semver
