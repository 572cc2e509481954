#include "recipe/interpolate.h"

#include <gtest/gtest.h>

namespace lichen::recipe {
namespace {

class InterpolateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_ = Json::parse(
        R"({"topic": "t/1", "n": 5, "f": 1.5, "b": true, "z": null, "obj": {"b": 2, "a": [1, "x"]},
            "a~b": "tilde", "s/t": "slash"})");
    dep_config_ = Json::parse(R"({"port": 8080})");
    ctx_.root = "/gg";
    ctx_.thing_name = "thing-1";
    ctx_.self = VariableSource{"com.example.App", "1.2.3", &config_};
    ctx_.dependencies["com.example.Dep-1"] =
        VariableSource{"com.example.Dep-1", "2.0.0", &dep_config_};
  }
  std::string I(const std::string& text) {
    problems_.clear();
    return InterpolateText(text, ctx_, &problems_);
  }
  Json config_, dep_config_;
  InterpolationContext ctx_;
  std::vector<std::string> problems_;
};

TEST_F(InterpolateTest, SystemVariables) {
  EXPECT_EQ(I("{artifacts:path}/run.sh"), "/gg/packages/artifacts/com.example.App/1.2.3/run.sh");
  EXPECT_EQ(I("{artifacts:decompressedPath}"),
            "/gg/packages/artifacts-unarchived/com.example.App/1.2.3");
  EXPECT_EQ(I("cd {work:path}"), "cd /gg/work/com.example.App");
  EXPECT_EQ(I("{kernel:rootPath}"), "/gg");
  EXPECT_EQ(I("{iot:thingName}"), "thing-1");
  EXPECT_TRUE(problems_.empty());
}

TEST_F(InterpolateTest, ConfigurationPointers) {
  EXPECT_EQ(I("{configuration:/topic}"), "t/1");
  EXPECT_EQ(I("{configuration:/n}"), "5");
  EXPECT_EQ(I("{configuration:/f}"), "1.5");
  EXPECT_EQ(I("{configuration:/b}"), "true");
  EXPECT_EQ(I("{configuration:/z}"), "null");
  EXPECT_EQ(I("{configuration:/obj}"), R"({"a":[1,"x"],"b":2})");  // sorted keys, compact
  EXPECT_EQ(I("{configuration:/obj/a/1}"), "x");
  EXPECT_EQ(I("{configuration:/a~0b} {configuration:/s~1t}"), "tilde slash");
  EXPECT_TRUE(problems_.empty());
}

TEST_F(InterpolateTest, MissingValuesStayAndAreReported) {
  EXPECT_EQ(I("x {configuration:/missing} y"), "x {configuration:/missing} y");
  EXPECT_EQ(problems_.size(), 1u);
  EXPECT_EQ(I("{configuration:nopointer}"), "{configuration:nopointer}");
  EXPECT_EQ(problems_.size(), 1u);
  EXPECT_EQ(I("{nosuch:thing}"), "{nosuch:thing}");
  EXPECT_EQ(problems_.size(), 1u);
  EXPECT_EQ(I("{artifacts:nosuch}"), "{artifacts:nosuch}");
  EXPECT_EQ(problems_.size(), 1u);
}

TEST_F(InterpolateTest, CrossComponentOnlyForDirectDependencies) {
  EXPECT_EQ(I("{com.example.Dep-1:configuration:/port}"), "8080");
  EXPECT_EQ(I("{com.example.Dep-1:artifacts:path}"),
            "/gg/packages/artifacts/com.example.Dep-1/2.0.0");
  EXPECT_TRUE(problems_.empty());
  EXPECT_EQ(I("{com.example.Other:configuration:/port}"),
            "{com.example.Other:configuration:/port}");
  ASSERT_EQ(problems_.size(), 1u);
  EXPECT_NE(problems_[0].find("not a direct dependency"), std::string::npos);
}

TEST_F(InterpolateTest, ShellTextPassesThrough) {
  for (const char* text : {"echo ${#VAR} ${HOME} '{}' {a b} { } {:x} {x:} {x:y:} a{b", "{\"k\":1}",
                           "awk '{print $1}'", "{{configuration:/n}}"}) {
    std::string expected = text;
    if (expected == "{{configuration:/n}}") expected = "{5}";
    EXPECT_EQ(I(text), expected) << text;
  }
}

TEST_F(InterpolateTest, TreesInterpolateValuesNotKeys) {
  Json tree = Json::parse(R"({"{work:path}": {"Script": "{work:path}/x", "Timeout": 3}})");
  auto out = InterpolateTree(tree, ctx_, &problems_);
  EXPECT_EQ(out["{work:path}"]["Script"], "/gg/work/com.example.App/x");
  EXPECT_EQ(out["{work:path}"]["Timeout"], 3);
}

}  // namespace
}  // namespace lichen::recipe
