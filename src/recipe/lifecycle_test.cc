#include "recipe/lifecycle.h"

#include <gtest/gtest.h>

namespace lichen::recipe {
namespace {

std::optional<Lifecycle> Build(const char* json, std::vector<Diagnostic>* diags) {
  Reporter reporter(nullptr, diags);
  return BuildLifecycle(Json::parse(json), "Lifecycle", reporter);
}

TEST(Lifecycle, StringAndObjectSteps) {
  std::vector<Diagnostic> diags;
  auto lc = Build(R"({
    "install": "echo hi",
    "Run": {"Script": "run.sh", "RequiresPrivilege": "true", "Timeout": "900",
            "Setenv": {"A": 1, "B": "x"}, "Skipif": "! onpath docker"},
    "SETENV": {"G": "g"}})",
                  &diags);
  ASSERT_TRUE(lc) << (diags.empty() ? "" : diags[0].message);
  EXPECT_EQ(lc->Find(StepKind::kInstall)->script, "echo hi");
  const Step* run = lc->Find(StepKind::kRun);
  ASSERT_NE(run, nullptr);
  EXPECT_TRUE(run->requires_privilege);
  EXPECT_EQ(run->timeout_seconds, 900);
  ASSERT_TRUE(run->skipif);
  EXPECT_TRUE(run->skipif->negate);
  EXPECT_EQ(run->skipif->kind, Skipif::Kind::kOnPath);
  EXPECT_EQ(run->skipif->argument, "docker");
  EXPECT_EQ(run->setenv, (EnvList{{"A", "1"}, {"B", "x"}}));
  EXPECT_EQ(lc->setenv, (EnvList{{"G", "g"}}));
  EXPECT_TRUE(diags.empty());
}

TEST(Lifecycle, DefaultTimeouts) {
  std::vector<Diagnostic> diags;
  auto lc = Build(R"({"Install": "a", "Run": "b", "Shutdown": "c", "Recover": "d",
                     "Bootstrap": {"Script": "e", "Timeout": 5}})",
                  &diags);
  ASSERT_TRUE(lc);
  EXPECT_EQ(lc->EffectiveTimeout(StepKind::kInstall), 120);
  EXPECT_EQ(lc->EffectiveTimeout(StepKind::kRun), std::nullopt);
  EXPECT_EQ(lc->EffectiveTimeout(StepKind::kShutdown), 15);
  EXPECT_EQ(lc->EffectiveTimeout(StepKind::kRecover), 60);
  EXPECT_EQ(lc->EffectiveTimeout(StepKind::kBootstrap), 5);
  EXPECT_EQ(lc->EffectiveTimeout(StepKind::kStartup), 120);
}

TEST(Lifecycle, StartupWinsOverRunWithAWarning) {
  std::vector<Diagnostic> diags;
  auto lc = Build(R"({"Startup": "a", "run": "b"})", &diags);
  ASSERT_TRUE(lc);
  EXPECT_NE(lc->Find(StepKind::kStartup), nullptr);
  EXPECT_EQ(lc->Find(StepKind::kRun), nullptr);
  ASSERT_EQ(diags.size(), 1u);
  EXPECT_EQ(diags[0].severity, Severity::kWarning);
  EXPECT_NE(diags[0].message.find("Run is ignored"), std::string::npos);
}

TEST(Lifecycle, BadFieldsNameTheField) {
  struct Case {
    const char* json;
    const char* path;
    const char* words;
  } cases[] = {
      {R"({"Run": {"Script": "x", "Timeout": "ten"}})", "Lifecycle.Run.Timeout", "Timeout"},
      {R"({"Run": {"Script": "x", "Timeout": -1}})", "Lifecycle.Run.Timeout", "positive"},
      {R"({"Run": {"Script": "x", "RequiresPrivilege": "maybe"}})",
       "Lifecycle.Run.RequiresPrivilege", "true or false"},
      {R"({"Run": {"Script": "x", "Skipif": "sometimes x"}})", "Lifecycle.Run.Skipif", "onpath"},
      {R"({"Run": {"Script": "x", "Skipif": "onpath"}})", "Lifecycle.Run.Skipif", "onpath"},
      {R"({"Run": {"Timeout": 3}})", "Lifecycle.Run", "no Script"},
      {R"({"Run": ["a"]})", "Lifecycle.Run", "script or a mapping"},
      {R"({"Setenv": "A=1"})", "Lifecycle.Setenv", "mapping"},
  };
  for (const auto& c : cases) {
    std::vector<Diagnostic> diags;
    EXPECT_FALSE(Build(c.json, &diags)) << c.json;
    ASSERT_FALSE(diags.empty()) << c.json;
    EXPECT_EQ(diags[0].path, c.path) << c.json;
    EXPECT_NE(diags[0].message.find(c.words), std::string::npos) << diags[0].message;
  }
}

TEST(Lifecycle, DeferredValuesAreNotTypeChecked) {
  std::vector<Diagnostic> diags;
  EXPECT_TRUE(Build(R"({"Run": {"Script": "x", "Timeout": "{configuration:/t}"}})", &diags));
  EXPECT_TRUE(diags.empty());
}

TEST(Lifecycle, UnknownKeysWarnWithSuggestions) {
  std::vector<Diagnostic> diags;
  auto lc = Build(R"({"Instal": "x", "Run": {"Scrpt": "y", "Script": "z"}})", &diags);
  ASSERT_TRUE(lc);
  ASSERT_EQ(diags.size(), 2u);
  EXPECT_EQ(diags[0].severity, Severity::kWarning);
  EXPECT_NE(diags[0].message.find("did you mean 'Install'"), std::string::npos);
  EXPECT_NE(diags[1].message.find("did you mean 'Script'"), std::string::npos);
}

TEST(Lifecycle, SkipifForms) {
  EXPECT_TRUE(ParseSkipif("exists ~/x"));
  EXPECT_TRUE(ParseSkipif("  !exists /a b  "));
  EXPECT_FALSE(ParseSkipif("exists"));
  EXPECT_FALSE(ParseSkipif("existsx /a"));
  EXPECT_FALSE(ParseSkipif("Onpath x"));  // the reference matches case-sensitively
  EXPECT_EQ(ParseSkipif("exists   /a b")->argument, "/a b");
}

TEST(Lifecycle, SelectorFiltering) {
  std::set<std::string> keywords = {"all", "linux", "raspberrypi"};
  Json lc = Json::parse(R"({
      "install": {"linux": "apt-get x", "all": "echo generic"},
      "run": {"raspberrypi": {"Script": "pi"}, "linux": {"Script": "lin"}},
      "shutdown": {"windows2": "nothing"}})");
  auto f = FilterSelectors(lc, keywords, {"raspberrypi", "linux"});
  ASSERT_TRUE(f);
  EXPECT_EQ((*f)["install"], "apt-get x");
  EXPECT_EQ((*f)["run"]["Script"], "pi");
  EXPECT_EQ((*f)["shutdown"]["windows2"], "nothing");  // not a keyword: left alone

  auto g = FilterSelectors(lc, keywords, {});
  ASSERT_TRUE(g);
  EXPECT_EQ((*g)["install"], "echo generic");
  EXPECT_FALSE(g->contains("run"));  // no selector matched and no "all": dropped
}

TEST(Lifecycle, ManifestLifecycleWinsOverGlobal) {
  Recipe r;
  r.global_lifecycle = Json::parse(R"({"all": {"Run": "global"}})");
  Manifest own;
  own.lifecycle = Json::parse(R"({"Run": "own"})");
  Manifest empty;
  r.manifests = {own, empty};
  EXPECT_EQ(EffectiveLifecycleJson(r, r.manifests[0])["Run"], "own");
  EXPECT_EQ(EffectiveLifecycleJson(r, r.manifests[1])["Run"], "global");
}

}  // namespace
}  // namespace lichen::recipe
