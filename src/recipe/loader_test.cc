#include "recipe/loader.h"

#include <gtest/gtest.h>

#include "recipe/effective.h"

namespace lichen::recipe {
namespace {

LoadResult Yaml(const std::string& text) { return LoadRecipe(text, SourceFormat::kYaml); }

const Diagnostic* FindDiag(const LoadResult& r, Severity s, const std::string& words) {
  for (const auto& d : r.diagnostics) {
    if (d.severity == s && d.message.find(words) != std::string::npos) return &d;
  }
  return nullptr;
}

std::string All(const LoadResult& r) {
  std::string out;
  for (const auto& d : r.diagnostics) out += Format(d, "f") + "\n";
  return out;
}

const char* kGood = R"(---
RecipeFormatVersion: 2020-01-25
ComponentName: com.example.HelloWorld
ComponentVersion: '1.0.0'
ComponentDescription: My first component
ComponentPublisher: Amazon
ComponentConfiguration:
  DefaultConfiguration:
    Message: world
    Nested: {a: 1, list: [1, 2]}
ComponentDependencies:
  aws.greengrass.TokenExchangeService:
    VersionRequirement: ^2.0.0
    DependencyType: SOFT
  com.example.Lib: {}
Manifests:
  - Platform:
      os: linux
    Lifecycle:
      Run: "python3 -u {artifacts:path}/hello_world.py '{configuration:/Message}'"
    Artifacts:
      - URI: s3://DOC-EXAMPLE-BUCKET/artifacts/com.example.HelloWorld/1.0.0/hello_world.py
        Unarchive: none
        Permission:
          Read: ALL
          Execute: owner
      - Uri: docker:mysql:8.0
)";

TEST(Loader, ReadsAWellFormedRecipe) {
  auto r = Yaml(kGood);
  ASSERT_TRUE(r.recipe) << All(r);
  EXPECT_TRUE(r.diagnostics.empty()) << All(r);
  const Recipe& rc = *r.recipe;
  EXPECT_EQ(rc.format_version, "2020-01-25");
  EXPECT_EQ(rc.name, "com.example.HelloWorld");
  EXPECT_EQ(rc.version.ToString(), "1.0.0");
  EXPECT_EQ(rc.default_configuration["Nested"]["list"][1], 2);
  ASSERT_EQ(rc.dependencies.size(), 2u);
  EXPECT_EQ(rc.dependencies[0].type, DependencyType::kSoft);
  EXPECT_EQ(rc.dependencies[1].type, DependencyType::kHard);
  EXPECT_EQ(rc.dependencies[1].version_requirement, "");
  ASSERT_EQ(rc.manifests.size(), 1u);
  ASSERT_EQ(rc.manifests[0].artifacts.size(), 2u);
  const Artifact& a = rc.manifests[0].artifacts[0];
  EXPECT_EQ(a.scheme, "s3");
  EXPECT_EQ(a.permission.read, PermissionType::kAll);
  EXPECT_EQ(a.permission.execute, PermissionType::kOwner);
  EXPECT_EQ(rc.manifests[0].artifacts[1].scheme, "docker");
}

TEST(Loader, KeysIgnoreCase) {
  auto r = Yaml(R"(recipeformatversion: '2020-01-25'
componentname: a
COMPONENTVERSION: 1.0.0
manifests:
  - platform: {os: linux}
    lifecycle: {install: {script: x, requiresprivilege: TRUE, timeout: '10'}}
)");
  ASSERT_TRUE(r.recipe) << All(r);
  EXPECT_TRUE(r.diagnostics.empty()) << All(r);
}

TEST(Loader, JsonAndYamlGiveTheSameModel) {
  auto y = Yaml(kGood);
  auto j = LoadRecipe(R"({
    "RecipeFormatVersion": "2020-01-25", "ComponentName": "com.example.HelloWorld",
    "ComponentVersion": "1.0.0", "ComponentDescription": "My first component",
    "ComponentPublisher": "Amazon",
    "ComponentConfiguration": {"DefaultConfiguration": {"Message": "world",
        "Nested": {"a": 1, "list": [1, 2]}}},
    "ComponentDependencies": {"aws.greengrass.TokenExchangeService":
        {"VersionRequirement": "^2.0.0", "DependencyType": "SOFT"}, "com.example.Lib": {}},
    "Manifests": [{"Platform": {"os": "linux"},
        "Lifecycle": {"Run": "python3 -u {artifacts:path}/hello_world.py '{configuration:/Message}'"},
        "Artifacts": [{"URI": "s3://DOC-EXAMPLE-BUCKET/artifacts/com.example.HelloWorld/1.0.0/hello_world.py",
                       "Unarchive": "none", "Permission": {"Read": "ALL", "Execute": "owner"}},
                      {"Uri": "docker:mysql:8.0"}]}]})",
                      SourceFormat::kJson);
  ASSERT_TRUE(y.recipe && j.recipe) << All(j);
  EXPECT_EQ(y.recipe->default_configuration, j.recipe->default_configuration);
  EXPECT_EQ(y.recipe->manifests[0].lifecycle, j.recipe->manifests[0].lifecycle);
  EXPECT_EQ(y.recipe->manifests[0].platform, j.recipe->manifests[0].platform);
}

TEST(Loader, TemplatePlaceholdersAreNamed) {
  auto r = Yaml(
      "RecipeFormatVersion: '2020-01-25'\nComponentName: '{COMPONENT_NAME}'\n"
      "ComponentVersion: '{COMPONENT_VERSION}'\n");
  EXPECT_FALSE(r.recipe);
  EXPECT_NE(FindDiag(r, Severity::kError,
                     "ComponentName '{COMPONENT_NAME}' is not a legal name "
                     "(template placeholder?)"),
            nullptr)
      << All(r);
  EXPECT_NE(FindDiag(r, Severity::kError,
                     "ComponentVersion '{COMPONENT_VERSION}' is not semver "
                     "(template placeholder?)"),
            nullptr);
  for (const char* v : {"NEXT_PATCH", "COMPONENT_VERSION", "USER_SETTING"}) {
    auto t = Yaml(
        std::string("RecipeFormatVersion: '2020-01-25'\nComponentName: a\nComponentVersion: ") + v +
        "\n");
    EXPECT_NE(FindDiag(t, Severity::kError, "template placeholder"), nullptr) << v;
  }
  auto n = Yaml(
      "RecipeFormatVersion: '2020-01-25'\nComponentName: <component-name>\nComponentVersion: "
      "1.0.0\n");
  EXPECT_NE(FindDiag(n, Severity::kError, "template placeholder"), nullptr);
}

TEST(Loader, ErrorsCarryFieldPathAndLocation) {
  auto r = Yaml(R"(RecipeFormatVersion: '2020-01-25'
ComponentName: a
ComponentVersion: 1.0.0
Manifests:
  - Platform: {os: linux}
  - Platform: {os: linux}
    Artifacts:
      - URI: s3://b/k
      - URI: ftp://host/file
)");
  EXPECT_FALSE(r.recipe);
  const Diagnostic* d = FindDiag(r, Severity::kError, "has no supported scheme");
  ASSERT_NE(d, nullptr) << All(r);
  EXPECT_EQ(d->path, "Manifests[1].Artifacts[1].URI");
  EXPECT_EQ(d->location.line, 9);
  EXPECT_EQ(d->location.column, 9);
  EXPECT_EQ(Format(*d, "r.yaml").rfind("r.yaml:9:9: error: Manifests[1].Artifacts[1].URI: ", 0),
            0u);
}

TEST(Loader, JsonErrorsCarryLocationsToo) {
  auto r = LoadRecipe(R"({
  "RecipeFormatVersion": "2020-01-25",
  "ComponentName": "a",
  "ComponentVersion": "1.0.0",
  "Manifests": [{"Artifacts": [{"URI": "ftp://x/y"}]}]
})",
                      SourceFormat::kJson);
  ASSERT_FALSE(r.recipe);
  const Diagnostic* d = FindDiag(r, Severity::kError, "no supported scheme");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->location.line, 5);
  EXPECT_EQ(d->path, "Manifests[0].Artifacts[0].URI");
}

TEST(Loader, EveryBadFieldIsReported) {
  struct Case {
    std::string body;
    const char* words;
  } cases[] = {
      {"RecipeFormatVersion: '2021-01-01'\nComponentName: a\nComponentVersion: 1.0.0\n",
       "2020-01-25"},
      {"ComponentName: a\nComponentVersion: 1.0.0\n", "RecipeFormatVersion is missing"},
      {"RecipeFormatVersion: '2020-01-25'\nComponentVersion: 1.0.0\n", "ComponentName is missing"},
      {"RecipeFormatVersion: '2020-01-25'\nComponentName: a\n", "ComponentVersion is missing"},
      {"RecipeFormatVersion: '2020-01-25'\nComponentName: a b\nComponentVersion: 1.0.0\n",
       "legal name"},
      {"RecipeFormatVersion: '2020-01-25'\nComponentName: a\nComponentVersion: 1.0\n",
       "valid version"},
      {"RecipeFormatVersion: '2020-01-25'\nComponentName: a\nComponentVersion: "
       "1.0.0\nComponentType: foo\n",
       "ComponentType"},
      {"RecipeFormatVersion: '2020-01-25'\nComponentName: a\nComponentVersion: 1.0.0\n"
       "ComponentDependencies: {b: {VersionRequirement: '>>1'}}\n",
       "not a valid version range"},
      {"RecipeFormatVersion: '2020-01-25'\nComponentName: a\nComponentVersion: 1.0.0\n"
       "ComponentDependencies: {b: {DependencyType: MEDIUM}}\n",
       "HARD or SOFT"},
      {"RecipeFormatVersion: '2020-01-25'\nComponentName: a\nComponentVersion: 1.0.0\n"
       "Manifests: {Platform: {os: linux}}\n",
       "Manifests must be a list"},
      {"RecipeFormatVersion: '2020-01-25'\nComponentName: a\nComponentVersion: 1.0.0\n"
       "Manifests:\n  -\n",
       "null element in Manifests"},
      {"RecipeFormatVersion: '2020-01-25'\nComponentName: a\nComponentVersion: 1.0.0\n"
       "Manifests:\n  - Artifacts: [{URI: s3://b/k, Unarchive: TAR}]\n",
       "NONE or ZIP"},
      {"RecipeFormatVersion: '2020-01-25'\nComponentName: a\nComponentVersion: 1.0.0\n"
       "Manifests:\n  - Artifacts: [{URI: s3://b/k, Permission: {Read: EVERYONE}}]\n",
       "NONE, OWNER or ALL"},
      {"RecipeFormatVersion: '2020-01-25'\nComponentName: a\nComponentVersion: 1.0.0\n"
       "Manifests:\n  - Artifacts: [{Digest: abc}]\n",
       "no URI"},
      {"RecipeFormatVersion: '2020-01-25'\nComponentName: a\nComponentVersion: 1.0.0\n"
       "Manifests:\n  - Artifacts: [{URI: 'docker://docker-uri'}]\n",
       "docker-uri"},
      {"RecipeFormatVersion: '2020-01-25'\nComponentName: a\nComponentVersion: 1.0.0\n"
       "Manifests:\n  - Artifacts: [{URI: 's3//b/k'}]\n",
       "no supported scheme"},
      {"RecipeFormatVersion: '2020-01-25'\nComponentName: a\nComponentVersion: 1.0.0\n"
       "ComponentConfiguration: {DefaultConfiguration: [1]}\n",
       "DefaultConfiguration must be a mapping"},
      {"- a\n- b\n", "holds a list"},
      {"RecipeFormatVersion: '2020-01-25'\nComponentName: a\nComponentVersion: 1.0.0\n"
       "ComponentDependencies: {a: {}}\n",
       "cannot depend on itself"},
  };
  for (const auto& c : cases) {
    auto r = Yaml(c.body);
    EXPECT_FALSE(r.recipe) << c.body;
    EXPECT_NE(FindDiag(r, Severity::kError, c.words), nullptr) << c.body << "\n" << All(r);
  }
}

TEST(Loader, UnknownKeysWarnWithSuggestions) {
  auto r = Yaml(R"(RecipeFormatVersion: '2020-01-25'
ComponentName: a
ComponentVersion: 1.0.0
Lifecyle: {Run: x}
Manifests:
  - Platfrom: {os: linux}
    Artifacts: [{URI: s3://b/k, Permision: {Read: ALL}}]
)");
  ASSERT_TRUE(r.recipe) << All(r);
  EXPECT_NE(FindDiag(r, Severity::kWarning,
                     "'Lifecyle' in the recipe, ignored (did you mean 'Lifecycle'?)"),
            nullptr)
      << All(r);
  EXPECT_NE(FindDiag(r, Severity::kWarning, "did you mean 'Platform'"), nullptr);
  EXPECT_NE(FindDiag(r, Severity::kWarning, "did you mean 'Permission'"), nullptr);
}

TEST(Loader, SoftProblemsAreWarnings) {
  auto r = Yaml(R"(RecipeFormatVersion: '2020-01-25'
ComponentName: a
ComponentVersion: 1.0.0
Manifests:
  - Artifacts:
      - URI: s3://b/k
        Digest: d14a028c2a3a2bc9476102bb288234c415a2b01f828ea62ac5b3e42f
        Algorithm: SHA-256
      - URI: docker:redis
      - URI: s3://bucket-only.zip
      - URI: docker:<YOUR_IMAGE>
      - URI: s3://<Bucket name>/key
)");
  ASSERT_TRUE(r.recipe) << All(r);
  EXPECT_NE(FindDiag(r, Severity::kWarning, "Digest"), nullptr) << All(r);
  EXPECT_NE(FindDiag(r, Severity::kWarning, "no tag"), nullptr) << All(r);
  EXPECT_NE(FindDiag(r, Severity::kWarning, "no object key"), nullptr) << All(r);
  EXPECT_NE(FindDiag(r, Severity::kWarning, "placeholder to fill in"), nullptr) << All(r);
}

TEST(Loader, GlobalLifecycleWithSelections) {
  auto r = Yaml(R"(RecipeFormatVersion: 2020-01-25
ComponentName: FooService
ComponentVersion: '1.0.0'
Manifests:
  - Platform: {os: testOs}
    Selections: [testPlatform]
  - Platform: {}
Lifecycle:
  install:
    testPlatform: echo install
    all: echo "default install"
)");
  ASSERT_TRUE(r.recipe) << All(r);
  SpecialiseOptions o;
  o.platform = {{"os", "testOs"}};
  auto e = Specialise(*r.recipe, o);
  ASSERT_TRUE(e) << e.error().message;
  EXPECT_EQ(e->lifecycle.Find(StepKind::kInstall)->script, "echo install");
  o.platform = {{"os", "linux"}};
  e = Specialise(*r.recipe, o);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->manifest_index, 1u);
  EXPECT_EQ(e->lifecycle.Find(StepKind::kInstall)->script, "echo \"default install\"");
}

TEST(Loader, SpecialiseInterpolatesAndMergesConfiguration) {
  auto r = Yaml(kGood);
  ASSERT_TRUE(r.recipe);
  SpecialiseOptions o;
  o.platform = {{"os", "linux"}, {"architecture", "amd64"}};
  o.root = "/gg";
  o.configuration_merge = Json::parse(R"({"Message": "Lichen"})");
  auto e = Specialise(*r.recipe, o);
  ASSERT_TRUE(e) << e.error().message;
  EXPECT_EQ(
      e->lifecycle.Find(StepKind::kRun)->script,
      "python3 -u /gg/packages/artifacts/com.example.HelloWorld/1.0.0/hello_world.py 'Lichen'");
  EXPECT_EQ(e->configuration["Nested"]["a"], 1);

  o.platform = {{"os", "windows"}};
  auto none = Specialise(*r.recipe, o);
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().message.find("com.example.HelloWorld 1.0.0"), std::string::npos);
  EXPECT_NE(none.error().message.find("os=windows"), std::string::npos);
}

TEST(Loader, RecipeFileNames) {
  EXPECT_TRUE(IsRecipeFileName("a.yaml"));
  EXPECT_TRUE(IsRecipeFileName("a.YML"));
  EXPECT_TRUE(IsRecipeFileName("a.json"));
  EXPECT_FALSE(IsRecipeFileName("EXPECT.tsv"));
  EXPECT_FALSE(IsRecipeFileName("yaml"));
}

TEST(Loader, MissingFileIsAnError) {
  auto r = LoadRecipeFile("/nonexistent/recipe.yaml");
  EXPECT_FALSE(r.recipe);
  ASSERT_EQ(r.diagnostics.size(), 1u);
  EXPECT_NE(r.diagnostics[0].message.find("cannot read"), std::string::npos);
}

}  // namespace
}  // namespace lichen::recipe
