// npm-style version ranges ("^1.2", "~1.2.3 || >=2 <3", "1.x - 2"), because a Greengrass
// VersionRequirement is npm range syntax and npm's semver 7.6 is the reference behaviour.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "semver/version.h"

namespace lichen::semver {

class Range {
 public:
  // Accepts exactly what npm `semver.validRange(text)` accepts (loose=false); an error names
  // the offending text.
  static Result<Range> Parse(std::string_view text);

  // npm `satisfies` with includePrerelease=false: a prerelease version matches only when a
  // comparator in the same set names a prerelease of the same major.minor.patch.
  bool Satisfies(const Version& version) const;

  // npm `validRange`'s text: the desugared comparators, e.g. ">=1.2.0 <2.0.0-0", or "*".
  std::string ToString() const;

 private:
  Range() = default;  // only Parse makes ranges: an empty set list would match nothing

  // One primitive comparator: an empty `op` means "=" and `any` means the whole set matches.
  struct Comparator {
    std::string op;
    Version version;
    bool any = false;
    std::string Text() const;  // npm's Comparator.value
  };
  using ComparatorSet = std::vector<Comparator>;

  static Result<ComparatorSet> ParseSet(std::string_view text);
  static bool Test(const Comparator& c, const Version& v);

  std::vector<ComparatorSet> sets_;  // the range is the union of its sets
};

}  // namespace lichen::semver
