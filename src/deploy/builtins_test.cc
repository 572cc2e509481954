#include "deploy/builtins.h"

#include <gtest/gtest.h>

namespace lichen::deploy {
namespace {

semver::Version V(const char* text) { return *semver::Version::Parse(text); }

TEST(builtins, AnyValidRequirementOnABuiltinIsSatisfied) {
  Catalog catalog;
  catalog["app"] = {
      Candidate{V("1.0.0"),
                {{"aws.greengrass.DockerApplicationManager", {"~2.0.0", DependencyType::kHard}},
                 {"aws.greengrass.TokenExchangeService", {"~2.1.0", DependencyType::kSoft}},
                 {"lib", {"^1", DependencyType::kHard}}}}};
  catalog["lib"] = {Candidate{
      V("1.2.0"), {{"aws.greengrass.Nucleus", {">=2.0.0 <2.11.0", DependencyType::kHard}}}}};
  auto r = ResolveWithBuiltins({{"app", "=1.0.0"}}, catalog);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->resolution.versions.size(), 2u);
  EXPECT_EQ(r->builtins, (std::set<std::string>{"aws.greengrass.DockerApplicationManager",
                                                "aws.greengrass.Nucleus",
                                                "aws.greengrass.TokenExchangeService"}));
  // Edges to built-ins stay, with their types, for start gating.
  EXPECT_EQ(r->resolution.dependencies["app"]["aws.greengrass.DockerApplicationManager"],
            DependencyType::kHard);
  EXPECT_EQ(r->resolution.dependencies["app"]["aws.greengrass.TokenExchangeService"],
            DependencyType::kSoft);
  EXPECT_EQ(r->resolution.dependencies["app"]["lib"], DependencyType::kHard);
}

TEST(builtins, InvalidRangeOnABuiltinNamesTheRequirer) {
  Catalog catalog;
  catalog["app"] = {
      Candidate{V("1.0.0"), {{"aws.greengrass.Nucleus", {"~>>2", DependencyType::kHard}}}}};
  auto r = ResolveWithBuiltins({{"app", "1.0.0"}}, catalog);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("app@1.0.0"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("~>>2"), std::string::npos);
}

TEST(builtins, BuiltinRootsNeedNoRecipe) {
  auto r = ResolveWithBuiltins({{"aws.greengrass.Cli", "2.12.0"}}, Catalog{});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(r->resolution.versions.empty());
  EXPECT_EQ(r->builtins.count("aws.greengrass.Cli"), 1u);
  EXPECT_FALSE(IsBuiltin("aws.greengrass.LogManager"));  // not provided: must come from a recipe
}

}  // namespace
}  // namespace lichen::deploy
