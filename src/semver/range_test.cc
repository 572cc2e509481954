#include "semver/range.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "semver/version.h"

namespace lichen::semver {
namespace {

std::string Desugar(std::string_view text) {
  const auto r = Range::Parse(text);
  return r.ok() ? r->ToString() : "invalid: " + r.error().message;
}

bool Sat(std::string_view version, std::string_view range) {
  const auto v = Version::Parse(version);
  const auto r = Range::Parse(range);
  EXPECT_TRUE(v.ok()) << version;
  EXPECT_TRUE(r.ok()) << range << ": " << (r.ok() ? "" : r.error().message);
  return v.ok() && r.ok() && r->Satisfies(*v);
}

// Expected texts are what npm semver 7.6.3 `validRange` returns.
TEST(semverRangeParse, DesugarsEveryForm) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      // primitives and prefixes
      {"1.0.0", "1.0.0"},
      {"=1.0.0", "1.0.0"},
      {"v1.0.0", "1.0.0"},
      {"=v1.0.0", "1.0.0"},
      {">= 1.0.0", ">=1.0.0"},
      {"<\t2.0.0", "<2.0.0"},
      {">=1.2.3+build", ">=1.2.3"},
      // any
      {"", "*"},
      {"*", "*"},
      {"x", "*"},
      {"X", "*"},
      {"x.x.x", "*"},
      {">=*", "*"},
      {">=0.0.0", "*"},
      {"||", "*"},
      {"1 || *", "*"},
      // x-ranges and partials
      {"1", ">=1.0.0 <2.0.0-0"},
      {"1.2", ">=1.2.0 <1.3.0-0"},
      {"1.x", ">=1.0.0 <2.0.0-0"},
      {"1.2.*", ">=1.2.0 <1.3.0-0"},
      {"1.2.x-alpha", ">=1.2.0 <1.3.0-0"},
      {">1", ">=2.0.0"},
      {">1.2", ">=1.3.0"},
      {"<1.2", "<1.2.0-0"},
      {"<=1.2", "<1.3.0-0"},
      {"<=7.x", "<8.0.0-0"},
      {">=1.x", ">=1.0.0"},
      {"=1.2", ">=1.2.0 <1.3.0-0"},
      {">x", "<0.0.0-0"},
      {"<X", "<0.0.0-0"},
      {"<x <* || >* 2.x", "<0.0.0-0"},
      {">x 2.x || * || <x", "*"},
      // tilde
      {"~1.2.3", ">=1.2.3 <1.3.0-0"},
      {"~1.2", ">=1.2.0 <1.3.0-0"},
      {"~1", ">=1.0.0 <2.0.0-0"},
      {"~>1.2.3", ">=1.2.3 <1.3.0-0"},
      {"~> 1", ">=1.0.0 <2.0.0-0"},
      {"~ 1.0", ">=1.0.0 <1.1.0-0"},
      {"~1.2.3-beta.2", ">=1.2.3-beta.2 <1.3.0-0"},
      {"~x", "*"},
      // caret
      {"^1.2.3", ">=1.2.3 <2.0.0-0"},
      {"^0.2.3", ">=0.2.3 <0.3.0-0"},
      {"^0.0.3", ">=0.0.3 <0.0.4-0"},
      {"^1.x", ">=1.0.0 <2.0.0-0"},
      {"^0.0", "<0.1.0-0"} /* ">=0.0.0" is dropped as "*" */,
      {"^0.x", "<1.0.0-0"},
      {"^0", "<1.0.0-0"},
      {"^1.2.3-beta.4", ">=1.2.3-beta.4 <2.0.0-0"},
      {"^0.0.1-beta", ">=0.0.1-beta <0.0.2-0"},
      {"^ 1.2 ^ 1", ">=1.2.0 <2.0.0-0 >=1.0.0"},
      {"^x", "*"},
      // hyphen ranges
      {"1.2.3 - 2.3.4", ">=1.2.3 <=2.3.4"},
      {"1.2 - 2.3.4", ">=1.2.0 <=2.3.4"},
      {"1.2.3 - 2.3", ">=1.2.3 <2.4.0-0"},
      {"1.2.3 - 2", ">=1.2.3 <3.0.0-0"},
      {"x - 1.0.0", "<=1.0.0"},
      {"1.0.0 - x", ">=1.0.0"},
      {"1.2.3-pre+asdf - 2.4.3-pre+asdf", ">=1.2.3-pre <=2.4.3-pre"},
      {"1.2.3 - v 2", ">=1.2.3 <3.0.0-0"},
      // unions and sets
      {"1.2.7 || >=1.2.9 <2.0.0", "1.2.7||>=1.2.9 <2.0.0"},
      {"<0.0.0-0 || 1", ">=1.0.0 <2.0.0-0"},
      {">=1.2.3 >=1.2.3", ">=1.2.3"},
      {"\xc2\xa0^1.2.3\xe3\x80\x80||\xe2\x80\xa8"
       "2",
       ">=1.2.3 <2.0.0-0||>=2.0.0 <3.0.0-0"},
  };
  for (const auto& [text, want] : cases) {
    EXPECT_EQ(Desugar(text), want) << "range " << text;
  }
}

TEST(semverRangeParse, RejectsWhatNpmRejects) {
  for (const char* bad : {"blerg",
                          ">=01.02.03",
                          "~1.2.3beta",
                          "1.2.3 foo",
                          "=> 1.0.0",
                          "=<1.0.0",
                          "<>1.0.0",
                          "> = 1.0.0",
                          "==1.0.0",
                          "1.2.3-",
                          "1.2.3-01",
                          "**",
                          "~",
                          "^",
                          "1 | 2",
                          "1.2.3 -2.3.4",
                          "1.2.3 - 2.3.4 - 3",
                          ">=v 1.2.3",
                          "9007199254740992",
                          "^9007199254740991",
                          "~>>1.2.3",
                          "1.2.3\xe2\x80\x8b"}) {
    const auto r = Range::Parse(bad);
    EXPECT_FALSE(r.ok()) << bad << " parsed as " << (r.ok() ? r->ToString() : "");
  }
}

TEST(semverRangeParse, ErrorNamesTheRangeAndTheComparator) {
  const auto r = Range::Parse(">=1.0.0 <2.0.0 || nope");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("\">=1.0.0 <2.0.0 || nope\""), std::string::npos)
      << r.error().message;
  EXPECT_NE(r.error().message.find("invalid comparator \"nope\""), std::string::npos)
      << r.error().message;
}

TEST(semverRangeSatisfies, Includes) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"1.2.3", "1.0.0 - 2.0.0"},
      {"1.3.0", "^1.2.3+build"},
      {"0.2.4", ">=*"},
      {"1.0.0", ""},
      {"1.9999.9999", "<2.0.0"},
      {"1.0.1", ">=  1.0.0"},
      {"0.0.0", ">=0.2.3 || <0.0.1"},
      {"2.1.3", "1.2.x || 2.x"},
      {"1.2.3", "x"},
      {"0.0.9", "~x"},
      {"3.2.2", "~>3.2.1"},
      {"0.5.5", "~v0.5.4-pre"},
      {"0.7.2", "<=0.7.x"},
      {"1.2.3", "~1.2.1 1.2.3"},
      {"1.2.3", "~1.2.1 =1.2.3"},
      {"1.4.2", "^1.2 ^1"},
      {"1.2.3-pre", "^1.2.3-alpha"},
      {"0.0.1", "^0.0.1-alpha"},
      {"0.1.1-beta", "^0.1.1-alpha"},
      {"0.9.7", "x - 1.x"},
      {"1.9.7", "1.x - x"},
      {"7.9.9", "<=7.x"},
      {"2.4.3-alpha", "1.2.3-pre+asdf - 2.4.3-pre+asdf"},
      {"1.2.3-pre.2", "1.2.3-pre+asdf - 2.4.3-pre+asdf"},
  };
  for (const auto& [version, range] : cases) {
    EXPECT_TRUE(Sat(version, range)) << version << " in " << range;
  }
}

TEST(semverRangeSatisfies, Excludes) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"2.2.3", "1.0.0 - 2.0.0"},
      {"2.0.0", "^1.2.3+build"},
      {"1.2.0", "^1.2.3+build"},
      {"1.0.0beta", "1.0.0"},
      {"0.0.1", ">=1.0.0"},
      {"2.0.0", "<2.0.0"},
      {"0.2.2", ">=0.2.3 || <0.0.1"},
      {"1.1.1", "1.2.x"},
      {"2.0.0", "~1.2"},
      {"1.3.0", "~1.2.3"},
      {"0.0.2", "^0.0.1"},
      {"0.2.0", "^0.1.2"},
      {"1.0.0", "<1"},
      {"2.0.0", "<=1.x"},
      {"1.2.4-beta", "^1.2.3"},
      {"1.2.3-beta", "^1.2.3"},
      {"2.0.0-alpha", "1 - 2"},
      {"1.1.0-pre", ">=1.0.0"},
      {"1.0.0-rc1", "*"},
      {"1.2.3-alpha", ">1.2.3-alpha.3"},
  };
  for (const auto& [version, range] : cases) {
    const auto v = Version::Parse(version);
    const auto r = Range::Parse(range);
    ASSERT_TRUE(r.ok()) << range;
    // An invalid version ("1.0.0beta") never satisfies anything.
    EXPECT_FALSE(v.ok() && r->Satisfies(*v)) << version << " not in " << range;
  }
}

TEST(semverRangeSatisfies, PrereleaseNeedsAComparatorOnTheSameTuple) {
  EXPECT_TRUE(Sat("1.2.3-alpha.7", ">1.2.3-alpha.3"));
  EXPECT_FALSE(Sat("3.4.5-alpha.9", ">1.2.3-alpha.3"));
  // The tuple match must be in the same comparator set, not in another || branch.
  EXPECT_FALSE(Sat("2.0.0-rc.1", ">=1.0.0-rc.1 <3.0.0 || 5.0.0-rc.1"));
  EXPECT_TRUE(Sat("1.0.0-rc.2", ">=1.0.0-rc.1 <3.0.0 || 5.0.0-rc.1"));
}

TEST(semverRangeSatisfies, NumbersPast2To53CompareAsNpmDoes) {
  // npm compares numeric identifiers as JS numbers, so these two are equal to it.
  EXPECT_TRUE(Sat("1.2.3-9007199254740993", "<=1.2.3-9007199254740992"));
  EXPECT_TRUE(Sat("1.2.3-9007199254740993", "1.2.3-9007199254740992"));
  EXPECT_FALSE(Sat("1.2.3-9007199254740994", "<=1.2.3-9007199254740992"));
}

TEST(semverRangeToString, RoundTrips) {
  for (const char* text : {"^1.2.3 || ~0.1", "1.2.3 - 2", "<0.0.0-0", "*", ">=1.2.3-rc.1 <2",
                           "x.99999999999999999999999"}) {
    const auto r = Range::Parse(text);
    ASSERT_TRUE(r.ok()) << text;
    const auto again = Range::Parse(r->ToString());
    ASSERT_TRUE(again.ok()) << r->ToString();
    EXPECT_EQ(again->ToString(), r->ToString());
  }
}

TEST(semverRangeParse, LongInputsStayFast) {
  // Ranges have no length limit in npm; the matchers must stay linear on long runs.
  const std::string runs = std::string(200000, 'v') + " " + std::string(200000, '1');
  EXPECT_FALSE(Range::Parse(runs).ok());
  std::string many;
  for (int i = 0; i < 20000; ++i) {
    many += ">=1.2." + std::to_string(i) + " ";
  }
  const auto r = Range::Parse(many);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->Satisfies(*Version::Parse("1.2.19999")));
  EXPECT_FALSE(r->Satisfies(*Version::Parse("1.2.19998")));
}

}  // namespace
}  // namespace lichen::semver
