#include "semver/version.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace lichen::semver {
namespace {

Version V(std::string_view text) {
  auto v = Version::Parse(text);
  EXPECT_TRUE(v.ok()) << text << ": " << (v.ok() ? "" : v.error().message);
  return v.ok() ? *v : Version{};
}

TEST(semverVersionParse, Components) {
  const Version v = V("1.22.333-rc.1.x-y+build.007");
  EXPECT_EQ(v.major, 1u);
  EXPECT_EQ(v.minor, 22u);
  EXPECT_EQ(v.patch, 333u);
  EXPECT_EQ(v.prerelease, (std::vector<std::string>{"rc", "1", "x-y"}));
  EXPECT_EQ(v.build, (std::vector<std::string>{"build", "007"}));
  EXPECT_EQ(v.ToString(), "1.22.333-rc.1.x-y");
  EXPECT_EQ(v.ToStringWithBuild(), "1.22.333-rc.1.x-y+build.007");
}

TEST(semverVersionParse, AcceptsWhatNpmValidAccepts) {
  EXPECT_EQ(V("v1.2.3").ToString(), "1.2.3");
  EXPECT_EQ(V("  v1.2.3\t\n").ToString(), "1.2.3");
  EXPECT_EQ(V("\xc2\xa0"
              "1.2.3\xe3\x80\x80")
                .ToString(),
            "1.2.3");  // U+00A0, U+3000
  EXPECT_EQ(V("\xef\xbb\xbf"
              "1.2.3")
                .ToString(),
            "1.2.3");  // U+FEFF
  EXPECT_EQ(V("0.0.0").ToString(), "0.0.0");
  EXPECT_EQ(V("1.2.3-0a").ToString(), "1.2.3-0a");
  EXPECT_EQ(V("1.2.3--").ToString(), "1.2.3--");
  EXPECT_EQ(V("1.2.3+0-0.00").ToString(), "1.2.3");
  EXPECT_EQ(V("9007199254740991.0.0").major, 9007199254740991u);
  // Numeric prerelease identifiers are not range-checked, only kept as text.
  EXPECT_EQ(V("1.0.0-99999999999999999999").ToString(), "1.0.0-99999999999999999999");
}

TEST(semverVersionParse, RejectsWhatNpmValidRejects) {
  for (const char* bad : {"",
                          "1",
                          "1.2",
                          "1.2.3.4",
                          "=1.2.3",
                          "v=1.2.3",
                          "V1.2.3",
                          "vv1.2.3",
                          "01.2.3",
                          "1.02.3",
                          "1.2.03",
                          "1.2.3-01",
                          "1.2.3-",
                          "1.2.3-a..b",
                          "1.2.3+",
                          "1.2.3+a+b",
                          "1.2.3-a_b",
                          "1.2.3 -a",
                          "1 .2.3",
                          "1.2.3\xe2\x80\x8b" /* U+200B is not whitespace */,
                          "-1.2.3",
                          "1.2.-3",
                          "x.2.3",
                          "1.2.x",
                          "9007199254740992.0.0",
                          "0.9007199254740992.0",
                          "0.0.99999999999999999999"}) {
    EXPECT_FALSE(Version::Parse(bad).ok()) << bad;
  }
}

TEST(semverVersionParse, LengthLimitCountsUtf16UnitsBeforeTrimming) {
  std::string v256 = "1.2.3-";
  v256.resize(256, 'a');
  EXPECT_TRUE(Version::Parse(v256).ok());
  EXPECT_FALSE(Version::Parse(v256 + "a").ok());
  EXPECT_FALSE(Version::Parse(" " + v256).ok());  // whitespace counts toward the limit
  std::string v254 = v256.substr(0, 254);
  // U+3000 is 3 bytes but one UTF-16 unit: 254 + 2 = 256 units is still fine.
  EXPECT_TRUE(Version::Parse("\xe3\x80\x80" + v254 + "\xe3\x80\x80").ok());
  const auto err = Version::Parse(v256 + "a");
  ASSERT_FALSE(err.ok());
  EXPECT_NE(err.error().message.find("longer than 256"), std::string::npos);
}

TEST(semverVersionParse, ErrorsNameTheTextAndTheRule) {
  auto r = Version::Parse("1.2");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("\"1.2\""), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("MAJOR.MINOR.PATCH"), std::string::npos);
  r = Version::Parse("9007199254740992.0.0");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("major 9007199254740992 exceeds"), std::string::npos)
      << r.error().message;
}

TEST(semverVersionParseStrict, GreengrassRules) {
  EXPECT_TRUE(Version::ParseStrict("1.0.0").ok());
  EXPECT_TRUE(Version::ParseStrict("999999.999999.999999-rc.1+build").ok());

  const auto expect_error = [](std::string_view text, std::string_view needle) {
    const auto r = Version::ParseStrict(text);
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_NE(r.error().message.find(needle), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find("component version"), std::string::npos);
  };
  expect_error("v1.0.0", "'v' prefix");
  expect_error("=1.0.0", "'=' prefix");
  expect_error(" 1.0.0", "whitespace");
  expect_error("1.0.0\n", "whitespace");
  expect_error("", "empty");
  expect_error("1000000.0.0", "major 1000000 exceeds 999999");
  expect_error("0.1000000.0", "minor 1000000 exceeds 999999");
  expect_error("0.0.1000000", "patch 1000000 exceeds 999999");
  expect_error("1.0", "not valid SemVer");
  expect_error("1.0.0-01", "not valid SemVer");
  std::string long_version = "1.0.0-";
  long_version.resize(65, 'a');
  expect_error(long_version, "longer than 64");
  EXPECT_TRUE(Version::ParseStrict(long_version.substr(0, 64)).ok());
}

TEST(semverVersionOrder, Precedence) {
  // The SemVer 2.0.0 spec's example chain.
  const std::vector<std::string> ordered = {"1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta",
                                            "1.0.0-beta",  "1.0.0-beta.2",  "1.0.0-beta.11",
                                            "1.0.0-rc.1",  "1.0.0",         "1.0.1",
                                            "1.1.0",       "2.0.0",         "10.0.0"};
  for (size_t i = 0; i + 1 < ordered.size(); ++i) {
    EXPECT_LT(V(ordered[i]), V(ordered[i + 1])) << ordered[i] << " < " << ordered[i + 1];
    EXPECT_GT(V(ordered[i + 1]), V(ordered[i]));
    EXPECT_NE(V(ordered[i]), V(ordered[i + 1]));
  }
}

TEST(semverVersionOrder, BuildMetadataIsIgnored) {
  EXPECT_EQ(V("1.0.0+a"), V("1.0.0+b"));
  EXPECT_EQ(V("1.0.0+a"), V("1.0.0"));
  EXPECT_FALSE(V("1.0.0+a") < V("1.0.0+b"));
}

TEST(semverVersionOrder, NumericIdentifiersCompareNumericallyAtAnyLength) {
  EXPECT_LT(V("1.0.0-2"), V("1.0.0-10"));
  EXPECT_LT(V("1.0.0-9007199254740992"), V("1.0.0-9007199254740993"));
  EXPECT_LT(V("1.0.0-99999999999999999999"), V("1.0.0-100000000000000000000"));
  EXPECT_LT(V("1.0.0-999"), V("1.0.0-a"));  // numeric below alphanumeric
  EXPECT_LT(V("1.0.0-B"), V("1.0.0-a"));    // ASCII order
  EXPECT_LT(V("1.0.0-a"), V("1.0.0-a.0"));  // a prefix ranks lower
}

}  // namespace
}  // namespace lichen::semver
