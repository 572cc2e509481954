#include "deploy/document.h"

#include <gtest/gtest.h>

namespace lichen::deploy {
namespace {

TEST(document, ParsesEveryField) {
  auto d = ParseCreateLocalDeployment(Json::parse(R"({
    "groupName": "edge",
    "rootComponentVersionsToAdd": {"com.example.App": "1.0.0", "lib": "2.1.3-beta.1"},
    "rootComponentsToRemove": ["old.Thing"],
    "componentToConfiguration": {"com.example.App": {"MERGE": {"a": {"b": 1}}, "RESET": ["/x", ""]}},
    "componentToRunWithInfo": {"com.example.App": {"posixUser": "ggc_user:ggc_group",
                                                     "systemResourceLimits": {"cpus": 0.5, "memory": 10240}}},
    "recipeDirectoryPath": "/r", "artifactsDirectoryPath": "/a",
    "failureHandlingPolicy": "ROLLBACK"})"));
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ(d->group_name, "edge");
  EXPECT_EQ(d->components_to_add.at("lib"), "2.1.3-beta.1");
  EXPECT_EQ(d->components_to_remove, std::vector<std::string>{"old.Thing"});
  EXPECT_EQ(d->configuration.at("com.example.App").merge["a"]["b"], 1);
  EXPECT_EQ(d->configuration.at("com.example.App").reset, (std::vector<std::string>{"/x", ""}));
  EXPECT_EQ(*d->run_with.at("com.example.App").posix_user, "ggc_user:ggc_group");
  EXPECT_EQ(*d->run_with.at("com.example.App").memory_kb, 10240);
  EXPECT_EQ(d->failure_policy, FailurePolicy::kRollback);

  // What is written is what is read back.
  auto again = ParseCreateLocalDeployment(ToRequestJson(*d));
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(ToRequestJson(*again), ToRequestJson(*d));
}

TEST(document, DefaultsMatchTheGreengrassCli) {
  auto d = ParseCreateLocalDeployment(Json::parse(R"({"rootComponentVersionsToAdd": {"a": "1.0.0"},
                                                      "groupName": null})"));
  ASSERT_TRUE(d);
  EXPECT_EQ(d->group_name, "LOCAL_DEPLOYMENT");
  EXPECT_EQ(d->failure_policy, FailurePolicy::kDoNothing);
}

TEST(document, BadRequestsNameTheField) {
  struct Case {
    const char* json;
    const char* words;
  } cases[] = {
      {R"([])", "JSON object"},
      {R"({"rootComponentVersionsToAdd": {"a": "1.0"}})", "rootComponentVersionsToAdd.a: '1.0'"},
      {R"({"rootComponentVersionsToAdd": {"a b": "1.0.0"}})", "'a b' is not a component name"},
      {R"({"rootComponentVersionsToAdd": {"a": 1}})", "must be a version string"},
      {R"({"rootComponentsToRemove": "a"})", "must be a list"},
      {R"({"componentToConfiguration": {"a": {"MERGE": [1]}}})", "MERGE must be an object"},
      {R"({"componentToConfiguration": {"a": {"RESET": ["x"]}}})", "not a JSON pointer"},
      {R"({"componentToConfiguration": {"a": {"RESET": ["/a~2"]}}})", "'~'"},
      {R"({"componentToConfiguration": {"a": {"UPDATE": {}}}})", "only MERGE and RESET"},
      {R"({"componentToRunWithInfo": {"a": {"windowsUser": "x"}}})", "posixUser"},
      {R"({"componentToRunWithInfo": {"a": {"systemResourceLimits": {"cpus": -1}}}})", "cpus"},
      {R"({"failureHandlingPolicy": "RETRY"})", "ROLLBACK or DO_NOTHING"},
      {R"({"rootComponentVersionsToAdd": {"a": "1.0.0"}, "rootComponentsToRemove": ["a"]})",
       "both added"},
      {R"({"bogus": 1})", "unknown field 'bogus'"},
  };
  for (const auto& c : cases) {
    auto d = ParseCreateLocalDeployment(Json::parse(c.json));
    ASSERT_FALSE(d) << c.json;
    EXPECT_NE(d.error().message.find(c.words), std::string::npos)
        << c.json << " -> " << d.error().message;
  }
}

TEST(document, CliFlags) {
  auto m = ParseMergeFlag("com.example.App=1.2.3");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->first, "com.example.App");
  EXPECT_EQ(m->second, "1.2.3");
  EXPECT_FALSE(ParseMergeFlag("com.example.App"));
  EXPECT_FALSE(ParseMergeFlag("com.example.App=latest"));

  auto r = ParseRunWithFlag("com.example.App:posixUser=ggc_user:ggc_group");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->first, "com.example.App");
  EXPECT_EQ(*r->second.posix_user, "ggc_user:ggc_group");
  EXPECT_FALSE(ParseRunWithFlag("com.example.App:windowsUser=x"));
  EXPECT_FALSE(ParseRunWithFlag("posixUser=x"));

  auto u = ParseConfigurationUpdates(Json::parse(R"({"a": {"MERGE": {"k": "v"}}})"));
  ASSERT_TRUE(u);
  EXPECT_TRUE(u->at("a").reset.empty());
}

}  // namespace
}  // namespace lichen::deploy
