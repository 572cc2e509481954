// Semantic versions (SemVer 2.0.0) with npm semver's parsing rules, because Greengrass
// recipes use npm range syntax and npm is the reference every edge case is checked against.
#pragma once

#include <compare>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace lichen::semver {

struct Version {
  uint64_t major = 0;
  uint64_t minor = 0;
  uint64_t patch = 0;
  // Identifiers keep their text: numeric ones have no leading zeros, so text is lossless.
  std::vector<std::string> prerelease;
  std::vector<std::string> build;

  // As npm `semver.valid(text)` (loose=false): surrounding JS whitespace and one leading
  // 'v' are accepted ('=' is not); at most 256 characters; each number at most 2^53 - 1.
  static Result<Version> Parse(std::string_view text);

  // A Greengrass ComponentVersion: the same grammar without prefix or whitespace, at most
  // 64 characters, each of major/minor/patch at most 999999.
  static Result<Version> ParseStrict(std::string_view text);

  // npm's format(): "1.2.3-rc.1". Build metadata is left out because it has no precedence.
  std::string ToString() const;
  // "1.2.3-rc.1+build.5", for display and storage where the build must survive.
  std::string ToStringWithBuild() const;

  // SemVer precedence: build metadata is ignored, numeric prerelease identifiers compare
  // numerically and below alphanumeric ones. Hence weak: 1.0.0+a and 1.0.0+b are equivalent.
  friend std::weak_ordering operator<=>(const Version& a, const Version& b);
  friend bool operator==(const Version& a, const Version& b) {
    return (a <=> b) == std::weak_ordering::equivalent;
  }
};

}  // namespace lichen::semver
