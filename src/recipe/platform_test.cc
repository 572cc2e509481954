#include "recipe/platform.h"

#include <gtest/gtest.h>

namespace lichen::recipe {
namespace {

const Platform kLinuxAmd64 = {{"os", "linux"}, {"architecture", "amd64"}};

bool M(const char* templates_json, const Platform& p = kLinuxAmd64) {
  return PlatformMatches(Json::parse(templates_json), p);
}

TEST(Platform, ExactAndWildcards) {
  EXPECT_TRUE(M(R"({})"));
  EXPECT_TRUE(M(R"({"os": "linux"})"));
  EXPECT_FALSE(M(R"({"os": "windows"})"));
  EXPECT_TRUE(M(R"({"os": "*", "architecture": "*"})"));
  EXPECT_TRUE(M(R"({"os": "all"})"));
  EXPECT_TRUE(M(R"({"architecture": "any"})"));
  EXPECT_FALSE(M(R"({"runtime2": "all"})"));  // all/any are wildcards for os/architecture only
  EXPECT_TRUE(M(R"({"os": "linux", "runtime": "*"})"));  // * accepts a missing attribute
  EXPECT_FALSE(M(R"({"runtime": "//"})"));               // "//" needs a value
  EXPECT_TRUE(M(R"({"os": "//"})"));
}

TEST(Platform, RegexMustMatchTheWholeValue) {
  EXPECT_TRUE(M(R"({"architecture": "/amd64|x86_64/"})"));
  EXPECT_FALSE(M(R"({"architecture": "/amd/"})"));
  EXPECT_FALSE(M(R"({"architecture": "/[/"})"));  // a broken regex matches nothing
}

TEST(Platform, ListsAreAlternativesAndNullMeansAbsent) {
  EXPECT_TRUE(M(R"({"architecture": ["aarch64", "amd64"]})"));
  EXPECT_FALSE(M(R"({"architecture": ["aarch64", "arm"]})"));
  EXPECT_TRUE(M(R"({"custom": null})"));
  EXPECT_FALSE(M(R"({"os": null})"));
}

TEST(Platform, SpecialLabelsNeverMatch) {
  Platform odd = {{"os", "-linux"}};
  EXPECT_FALSE(M(R"({"os": "-linux"})", odd));
}

TEST(Platform, BlankAttributeFailsNonWildcards) {
  Platform blank = {{"os", ""}};
  EXPECT_FALSE(M(R"({"os": "linux"})", blank));
  EXPECT_TRUE(M(R"({"os": "*"})", blank));
}

TEST(Platform, KeysIgnoreCase) { EXPECT_TRUE(M(R"({"OS": "linux"})")); }

TEST(Platform, OverridesAndSpecs) {
  Platform p = kLinuxAmd64;
  ApplyOverride(p, Json::parse(R"({"architecture": "aarch64", "runtime": "lichen", "n": 3})"));
  EXPECT_EQ(p["architecture"], "aarch64");
  EXPECT_EQ(p["runtime"], "lichen");
  EXPECT_EQ(p["n"], "3");

  auto spec = ParsePlatformSpec("os=linux,architecture.detail=armv7l");
  ASSERT_TRUE(spec);
  EXPECT_EQ((*spec)["architecture.detail"], "armv7l");
  EXPECT_FALSE(ParsePlatformSpec("os"));
  EXPECT_FALSE(ParsePlatformSpec("=linux"));
}

TEST(Platform, DetectsThisMachine) {
  Platform p = DetectPlatform();
  EXPECT_EQ(p["os"], "linux");
  EXPECT_FALSE(p["architecture"].empty());
}

TEST(Platform, FirstMatchingManifestWins) {
  Recipe r;
  Manifest a, b, c;
  a.platform = Json::parse(R"({"os": "windows"})");
  b.platform = Json::parse(R"({"os": "linux"})");
  c.platform = Json::object();
  r.manifests = {a, b, c};
  EXPECT_EQ(SelectManifest(r, kLinuxAmd64), 1u);
  r.manifests = {a};
  EXPECT_FALSE(SelectManifest(r, kLinuxAmd64).has_value());
}

}  // namespace
}  // namespace lichen::recipe
