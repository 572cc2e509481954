#include "ipc/authorization.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

namespace lichen::ipc {
namespace {

using ::testing::HasSubstr;
using Style = Authorizer::Pattern::Style;

constexpr std::string_view kPublish = "aws.greengrass#PublishToTopic";
constexpr std::string_view kSubscribe = "aws.greengrass#SubscribeToTopic";
constexpr std::string_view kIotPublish = "aws.greengrass#PublishToIoTCore";

bool Match(std::string_view resource, Style style, std::string_view text) {
  std::string error;
  auto pattern = Authorizer::Pattern::Compile(resource, style, &error);
  EXPECT_TRUE(pattern) << resource << ": " << error;
  return pattern && pattern->Matches(text);
}

struct MatchCase {
  std::string_view resource;
  std::string_view text;
  bool standard;  // aws.greengrass.ipc.pubsub and every service but mqttproxy
  bool mqtt;      // aws.greengrass.ipc.mqttproxy
};

TEST(PatternTest, MatchesLikeTheSpecSays) {
  const std::vector<MatchCase> cases = {
      // Literals.
      {"a/b", "a/b", true, true},
      {"a/b", "a/c", false, false},
      {"a/b", "a/b/c", false, false},
      {"a/b", "a", false, false},
      {"a/b", "A/B", false, false},  // resources are case-sensitive
      // `*`: any run, '/' and the empty run included, in every service.
      {"*", "", true, true},
      {"*", "anything/at/all", true, true},
      {"a/*", "a/", true, true},
      {"a/*", "a/b/c", true, true},
      {"a/*", "a", false, false},
      {"*/b", "x/y/b", true, true},
      {"a*c", "ac", true, true},
      {"a*c", "abbbc", true, true},
      {"a*c", "abbbd", false, false},
      {"a*b*c", "a/b/c", true, true},
      {"a*b*c", "acb", false, false},
      {"*a*", "bab", true, true},
      {"**", "x", true, true},
      {"a**b", "ab", true, true},
      {"*ab", "aab", true, true},  // the star must retry after a partial match
      {"*aab", "aaab", true, true},
      {"a*a*a", "aaa", true, true},
      {"a*a*a", "aa", false, false},
      // `+`: one level in mqttproxy, a plain character elsewhere.
      {"a/+/c", "a/b/c", false, true},
      {"a/+/c", "a/+/c", true, true},
      {"a/+/c", "a//c", false, true},  // an empty level is a level
      {"a/+/c", "a/b/d/c", false, false},
      {"a/+", "a/b", false, true},
      {"a/+", "a/b/c", false, false},
      {"a/+", "a", false, false},
      {"+", "abc", false, true},
      {"+", "a/b", false, false},
      {"+/b", "a/b", false, true},
      {"+/+", "a/b", false, true},
      {"+/+", "a/b/c", false, false},
      {"a+/b", "a+/b", true, true},    // not a whole level: literal
      {"a+/b", "ax/b", false, false},  //
      {"a/+b", "a/xb", false, false},
      {"*/+/c", "x/y/z/c", false, true},  // `*` takes x/y, `+` z
      {"*/+", "a/b/c", false, true},
      {"*/+", "a/+", true, true},
      {"a/+/*", "a/b/c/d", false, true},
      // `#`: the rest (or nothing after `a`) in mqttproxy, a character elsewhere.
      {"a/#", "a", false, true},
      {"a/#", "a/", false, true},
      {"a/#", "a/b/c", false, true},
      {"a/#", "a/#", true, true},
      {"a/#", "ab", false, false},
      {"a/#", "b/a", false, false},
      {"#", "anything/at/all", false, true},
      {"#", "#", true, true},
      {"a#", "a#", true, true},  // not after '/': literal
      {"a#", "ab", false, false},
      {"a/#/b", "a/x/b", false, false},  // not last: literal
      {"a/#/b", "a/#/b", true, true},
      {"abc/*xy/#", "abc/12xy", false, true},  // the nucleus's own example
      {"abc/*xy/#", "abc/12xy/z", false, true},
      {"*/#", "abc", false, true},
      {"a/+/#", "a/b", false, true},
      {"a/+/#", "a/b/c/d", false, true},
      {"a/+/#", "a", false, false},
      // Escapes: literal `*`, `?`, `$` everywhere.
      {"a${*}b", "a*b", true, true},
      {"a${*}b", "axb", false, false},
      {"${?}", "?", true, true},
      {"${$}{x}", "${x}", true, true},
      {"cost$", "cost$", true, true},  // a '$' not starting "${" is itself
      {"$x", "$x", true, true},
      {"${*}*", "*anything", true, true},
      {"${*}*", "anything", false, false},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(Match(c.resource, Style::kStandard, c.text), c.standard)
        << "standard: '" << c.resource << "' vs '" << c.text << "'";
    EXPECT_EQ(Match(c.resource, Style::kMqtt, c.text), c.mqtt)
        << "mqtt: '" << c.resource << "' vs '" << c.text << "'";
  }
}

TEST(PatternTest, RefusesInvalidResources) {
  const std::vector<std::pair<std::string_view, std::string_view>> cases = {
      {"", "empty"},       {"a?b", "'?'"},    {"${x}", "escape"}, {"${*", "escape"},
      {"${**}", "escape"}, {"a${", "escape"}, {"${}", "escape"},
  };
  for (const auto& [resource, why] : cases) {
    for (auto style : {Style::kStandard, Style::kMqtt}) {
      std::string error;
      EXPECT_FALSE(Authorizer::Pattern::Compile(resource, style, &error)) << resource;
      EXPECT_THAT(error, HasSubstr(std::string(why))) << resource;
    }
  }
}

TEST(PatternTest, StarHeavyInputsStayFast) {
  // Exponential backtracking would never finish these.
  const std::string many_a(200000, 'a');
  const std::string slashes = [] {
    std::string s;
    for (int i = 0; i < 20000; ++i) s += "a/";
    return s;
  }();
  struct Case {
    std::string resource;
    const std::string& text;
    Style style;
    bool expected;
  };
  const std::vector<Case> cases = {
      {"*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b", many_a, Style::kStandard, false},
      {"*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a", many_a, Style::kStandard, true},
      {"a*aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab", many_a, Style::kStandard, false},
      {"*/+/*/+/*/+/*/+/*/+/x", slashes, Style::kMqtt, false},
      {"*/+/*/+/*/+/*/+/*/+/#", slashes, Style::kMqtt, true},
      {"+/*+*+*+*+*+*+*+*+*+*+*b", slashes, Style::kMqtt, false},
  };
  const auto start = std::chrono::steady_clock::now();
  for (const auto& c : cases) {
    auto pattern = Authorizer::Pattern::Compile(c.resource, c.style);
    ASSERT_TRUE(pattern) << c.resource;
    EXPECT_EQ(pattern->Matches(c.text), c.expected) << c.resource;
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST(OperationTableTest, MapsOperationsToServices) {
  EXPECT_EQ(ServiceForOperation(kPublish), kPubSubService);
  EXPECT_EQ(ServiceForOperation(kSubscribe), kPubSubService);
  EXPECT_EQ(ServiceForOperation(kIotPublish), kMqttProxyService);
  EXPECT_EQ(ServiceForOperation("aws.greengrass#SubscribeToIoTCore"), kMqttProxyService);
  EXPECT_EQ(ServiceForOperation("aws.greengrass#GetSecretValue"), kSecretManagerService);
  EXPECT_EQ(ServiceForOperation("aws.greengrass#GetThingShadow"), kShadowManagerService);
  EXPECT_EQ(ServiceForOperation("aws.greengrass#PauseComponent"), kLifecycleService);
  EXPECT_EQ(ServiceForOperation("aws.greengrass#ResumeComponent"), kLifecycleService);
  for (auto op : {"GetComponentDetails", "ListComponents", "RestartComponent", "StopComponent",
                  "CreateLocalDeployment", "GetLocalDeploymentStatus", "ListLocalDeployments"}) {
    EXPECT_EQ(ServiceForOperation(std::string("aws.greengrass#") + op), kCliService) << op;
  }
  EXPECT_EQ(ServiceForOperation("aws.greengrass#GetConfiguration"), std::nullopt);
  EXPECT_EQ(ServiceForOperation("PublishToTopic"), std::nullopt);  // short names are not ops
  EXPECT_EQ(ServiceForOperation("aws.greengrass#Nope"), std::nullopt);
}

TEST(OperationTableTest, OnlyTheConfigurationOperationsNeedNoPolicy) {
  for (auto op : {"GetConfiguration", "SubscribeToConfigurationUpdate", "UpdateConfiguration",
                  "UpdateState"}) {
    EXPECT_FALSE(RequiresAuthorization(std::string("aws.greengrass#") + op)) << op;
  }
  EXPECT_TRUE(RequiresAuthorization(kPublish));
  EXPECT_TRUE(RequiresAuthorization("aws.greengrass#ListComponents"));
  EXPECT_TRUE(RequiresAuthorization("aws.greengrass#SomethingNew"));  // unknown: deny
  EXPECT_TRUE(RequiresAuthorization("GetConfiguration"));
}

Json Policies(std::string_view text) { return Json::parse(text); }

TEST(AuthorizerTest, AllowsWhatAPolicyNamesAndNothingElse) {
  Authorizer authz;
  auto problems = authz.SetPolicies("com.example.Pub", Policies(R"({
    "aws.greengrass.ipc.pubsub": {
      "com.example.Pub:pubsub:1": {
        "policyDescription": "publish to sensors",
        "operations": ["aws.greengrass#PublishToTopic"],
        "resources": ["sensors/*", "status"]
      }
    }
  })"));
  EXPECT_TRUE(problems.empty());
  EXPECT_EQ(authz.policy_count("com.example.Pub"), 1u);
  EXPECT_TRUE(authz.Allowed("com.example.Pub", kPubSubService, kPublish, "sensors/temp"));
  EXPECT_TRUE(authz.Allowed("com.example.Pub", kPubSubService, kPublish, "sensors/"));
  EXPECT_TRUE(authz.Allowed("com.example.Pub", kPubSubService, kPublish, "status"));
  EXPECT_FALSE(authz.Allowed("com.example.Pub", kPubSubService, kPublish, "status/x"));
  EXPECT_FALSE(authz.Allowed("com.example.Pub", kPubSubService, kSubscribe, "status"));
  EXPECT_FALSE(authz.Allowed("com.example.Other", kPubSubService, kPublish, "status"));
  EXPECT_FALSE(authz.Allowed("com.example.Pub", kPubSubService, kPublish, ""));
  // The operation must belong to the service asked about.
  EXPECT_FALSE(authz.Allowed("com.example.Pub", kMqttProxyService, kPublish, "status"));
  EXPECT_FALSE(authz.Allowed("com.example.Pub", kPubSubService, "*", "status"));
  // A check without a resource asks about the operation alone.
  EXPECT_TRUE(authz.Allowed("com.example.Pub", kPubSubService, kPublish, std::nullopt));
  EXPECT_FALSE(authz.Allowed("com.example.Pub", kPubSubService, kSubscribe, std::nullopt));
}

TEST(AuthorizerTest, StarOperationCoversTheServiceOnly) {
  Authorizer authz;
  ASSERT_TRUE(authz
                  .SetPolicies("c", Policies(R"({"aws.greengrass.ipc.pubsub": {"p": {
                      "operations": ["*"], "resources": ["*"]}}})"))
                  .empty());
  EXPECT_TRUE(authz.Allowed("c", kPubSubService, kPublish, "x/y"));
  EXPECT_TRUE(authz.Allowed("c", kPubSubService, kSubscribe, "#"));
  EXPECT_FALSE(authz.Allowed("c", kMqttProxyService, kIotPublish, "x/y"));
}

TEST(AuthorizerTest, MqttProxyResourcesUseMqttWildcardsAndPubSubOnesDoNot) {
  Authorizer authz;
  ASSERT_TRUE(authz
                  .SetPolicies("c", Policies(R"({
    "aws.greengrass.ipc.pubsub": {"p": {"operations": ["*"], "resources": ["a/+/c", "b/#"]}},
    "aws.greengrass.ipc.mqttproxy": {"m": {"operations": ["*"], "resources": ["a/+/c", "b/#"]}}
  })"))
                  .empty());
  EXPECT_TRUE(authz.Allowed("c", kMqttProxyService, kIotPublish, "a/x/c"));
  EXPECT_TRUE(authz.Allowed("c", kMqttProxyService, kIotPublish, "b"));
  EXPECT_TRUE(authz.Allowed("c", kMqttProxyService, kIotPublish, "b/x/y"));
  EXPECT_FALSE(authz.Allowed("c", kPubSubService, kPublish, "a/x/c"));
  EXPECT_FALSE(authz.Allowed("c", kPubSubService, kPublish, "b/x"));
  // A subscription filter is a resource like any other: the policy text matches itself.
  EXPECT_TRUE(authz.Allowed("c", kPubSubService, kSubscribe, "a/+/c"));
  EXPECT_TRUE(authz.Allowed("c", kPubSubService, kSubscribe, "b/#"));
}

TEST(AuthorizerTest, InterpolatesTheThingName) {
  Authorizer authz("MyThing");
  auto access = Policies(R"({"aws.greengrass.ipc.mqttproxy": {"p": {
    "operations": ["aws.greengrass#PublishToIoTCore"],
    "resources": ["things/{iot:thingName}/shadow/#", "{iot:thingName}"]}}})");
  ASSERT_TRUE(authz.SetPolicies("c", access).empty());
  EXPECT_TRUE(authz.Allowed("c", kMqttProxyService, kIotPublish, "things/MyThing/shadow/get"));
  EXPECT_TRUE(authz.Allowed("c", kMqttProxyService, kIotPublish, "MyThing"));
  EXPECT_FALSE(authz.Allowed("c", kMqttProxyService, kIotPublish, "things/Other/shadow/get"));
  EXPECT_FALSE(
      authz.Allowed("c", kMqttProxyService, kIotPublish, "things/{iot:thingName}/shadow/get"));

  authz.SetThingName("Renamed");
  EXPECT_EQ(authz.thing_name(), "Renamed");
  EXPECT_TRUE(authz.Allowed("c", kMqttProxyService, kIotPublish, "things/Renamed/shadow/get"));
  EXPECT_FALSE(authz.Allowed("c", kMqttProxyService, kIotPublish, "things/MyThing/shadow/get"));
}

TEST(AuthorizerTest, FieldNamesAreCaseInsensitiveServiceIdsAreNot) {
  Authorizer authz;
  auto problems = authz.SetPolicies("c", Policies(R"({
    "aws.greengrass.ipc.pubsub": {"p": {"OPERATIONS": ["aws.greengrass#PublishToTopic"],
                                        "Resources": ["t"], "PolicyDescription": "x"}},
    "AWS.Greengrass.IPC.PubSub": {"q": {"operations": ["*"], "resources": ["*"]}}
  })"));
  EXPECT_TRUE(authz.Allowed("c", kPubSubService, kPublish, "t"));
  EXPECT_FALSE(authz.Allowed("c", kPubSubService, kPublish, "u"));  // "q" is not used
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].service, "AWS.Greengrass.IPC.PubSub");
  EXPECT_TRUE(problems[0].ignored);
  EXPECT_THAT(problems[0].message, HasSubstr("did you mean aws.greengrass.ipc.pubsub"));
  EXPECT_EQ(authz.problems("c").size(), 1u);
}

struct ProblemCase {
  std::string_view name;
  std::string_view policy_json;  // the value of one policy in aws.greengrass.ipc.pubsub
  std::string_view expected_message;
  bool policy_used;  // whether the policy still allows "aws.greengrass#PublishToTopic" on "t"
};

TEST(AuthorizerTest, ReportsAndSkipsMalformedPolicies) {
  const std::vector<ProblemCase> cases = {
      {"not an object", R"("x")", "must be an object", false},
      {"no operations", R"({"resources": ["t"]})", "operations is missing", false},
      {"empty operations", R"({"operations": [], "resources": ["t"]})", "operations is missing",
       false},
      {"operations not a list", R"({"operations": "aws.greengrass#PublishToTopic",
         "resources": ["t"]})",
       "operations must be a list", false},
      {"short operation name", R"({"operations": ["PublishToTopic"], "resources": ["t"]})",
       "write aws.greengrass#PublishToTopic", false},
      {"operation of another service",
       R"({"operations": ["aws.greengrass#PublishToIoTCore"], "resources": ["t"]})",
       "not an operation of aws.greengrass.ipc.pubsub", false},
      {"one bad operation among good ones",
       R"({"operations": [7, "aws.greengrass#PublishToTopic"], "resources": ["t"]})",
       "must be a string", true},
      {"resources not a list",
       R"({"operations": ["aws.greengrass#PublishToTopic"], "resources": "t"})",
       "resources must be a list", false},
      {"no resources", R"({"operations": ["aws.greengrass#PublishToTopic"]})", "no resources",
       false},
      {"only invalid resources",
       R"({"operations": ["aws.greengrass#PublishToTopic"], "resources": ["t?", ""]})",
       "no valid resource", false},
      {"one invalid resource",
       R"({"operations": ["aws.greengrass#PublishToTopic"], "resources": ["${x}", "t"]})",
       "invalid escape", true},
  };
  for (const auto& c : cases) {
    Authorizer authz;
    auto access =
        Policies(R"({"aws.greengrass.ipc.pubsub": {"p": )" + std::string(c.policy_json) + "}}");
    auto problems = authz.SetPolicies("c", access);
    ASSERT_FALSE(problems.empty()) << c.name;
    std::string all;
    for (const auto& p : problems) all += Describe(p) + "\n";
    EXPECT_THAT(all, HasSubstr(std::string(c.expected_message))) << c.name;
    EXPECT_THAT(all, HasSubstr("accessControl.aws.greengrass.ipc.pubsub.p: ")) << c.name;
    EXPECT_EQ(authz.Allowed("c", kPubSubService, kPublish, "t"), c.policy_used) << c.name;
  }
}

TEST(AuthorizerTest, PolicyWithoutResourcesAllowsOnlyResourceLessChecks) {
  Authorizer authz;
  auto problems = authz.SetPolicies("c", Policies(R"({"aws.greengrass.Cli": {"p": {
    "operations": ["aws.greengrass#ListComponents"]}}})"));
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_FALSE(problems[0].ignored);  // a warning: the policy is kept
  EXPECT_TRUE(authz.Allowed("c", kCliService, "aws.greengrass#ListComponents", std::nullopt));
  EXPECT_FALSE(authz.Allowed("c", kCliService, "aws.greengrass#ListComponents", "x"));
}

TEST(AuthorizerTest, AccessControlAsAWholeCanBeMissingAStringOrWrong) {
  Authorizer authz;
  EXPECT_TRUE(authz.SetPolicies("c", Json()).empty());
  EXPECT_EQ(authz.policy_count("c"), 0u);

  // A leaf holding JSON text, as the nucleus accepts.
  auto problems = authz.SetPolicies(
      "c",
      Json(R"({"aws.greengrass.ipc.pubsub": {"p": {"operations": ["*"], "resources": ["t"]}}})"));
  EXPECT_TRUE(problems.empty());
  EXPECT_TRUE(authz.Allowed("c", kPubSubService, kPublish, "t"));

  problems = authz.SetPolicies("c", Json("not json"));
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(Describe(problems[0]),
            "accessControl: is a string that is not JSON; no policy is used");
  EXPECT_FALSE(authz.Allowed("c", kPubSubService, kPublish, "t"));  // replaced, not merged

  problems = authz.SetPolicies("c", Json::array({1, 2}));
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_THAT(problems[0].message, HasSubstr("must be an object"));

  problems = authz.SetPolicies("c", Policies(R"({"aws.greengrass.ipc.pubsub": ["x"],
                                                 "com.example.Custom": {}})"));
  ASSERT_EQ(problems.size(), 2u);
  EXPECT_THAT(problems[0].message, HasSubstr("must be an object of policies"));
  EXPECT_THAT(problems[1].message, HasSubstr("unknown IPC service"));
}

TEST(AuthorizerTest, PoliciesAreReplacedPerComponentAndRemoved) {
  Authorizer authz;
  auto allow = [](std::string_view resource) {
    return Policies(R"({"aws.greengrass.ipc.pubsub": {"p": {"operations": ["*"], "resources": [")" +
                    std::string(resource) + R"("]}}})");
  };
  ASSERT_TRUE(authz.SetPolicies("a", allow("x")).empty());
  ASSERT_TRUE(authz.SetPolicies("b", allow("y")).empty());
  EXPECT_TRUE(authz.Allowed("a", kPubSubService, kPublish, "x"));
  EXPECT_FALSE(authz.Allowed("a", kPubSubService, kPublish, "y"));  // b's policy is b's
  ASSERT_TRUE(authz.SetPolicies("a", allow("z")).empty());
  EXPECT_FALSE(authz.Allowed("a", kPubSubService, kPublish, "x"));
  EXPECT_TRUE(authz.Allowed("a", kPubSubService, kPublish, "z"));
  authz.Remove("a");
  EXPECT_FALSE(authz.Allowed("a", kPubSubService, kPublish, "z"));
  EXPECT_TRUE(authz.Allowed("b", kPubSubService, kPublish, "y"));
  EXPECT_EQ(authz.policy_count("a"), 0u);
}

TEST(AuthorizerTest, AnyPolicyOfTheServiceMayAllow) {
  Authorizer authz;
  ASSERT_TRUE(authz
                  .SetPolicies("c", Policies(R"({"aws.greengrass.ipc.pubsub": {
    "sub": {"operations": ["aws.greengrass#SubscribeToTopic"], "resources": ["in/#"]},
    "pub": {"operations": ["aws.greengrass#PublishToTopic"], "resources": ["out/*"]}}})"))
                  .empty());
  EXPECT_TRUE(authz.Allowed("c", kPubSubService, kSubscribe, "in/#"));
  EXPECT_FALSE(authz.Allowed("c", kPubSubService, kSubscribe, "in/+"));
  EXPECT_TRUE(authz.Allowed("c", kPubSubService, kPublish, "out/1"));
  EXPECT_FALSE(authz.Allowed("c", kPubSubService, kPublish, "in/#"));
}

TEST(AuthorizerTest, DenialMessageNamesEverything) {
  EXPECT_EQ(Authorizer::DenialMessage("c", kPubSubService, kPublish, "t"),
            "Principal c is not authorized to perform "
            "aws.greengrass.ipc.pubsub:aws.greengrass#PublishToTopic on resource t");
}

}  // namespace
}  // namespace lichen::ipc
