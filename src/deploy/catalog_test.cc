#include "deploy/catalog.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "deploy/builtins.h"

namespace lichen::deploy {
namespace {

namespace fs = std::filesystem;

class catalog : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("lichen-catalog-" + std::to_string(::getpid()));
    fs::create_directories(dir_ / "nested");
  }
  void TearDown() override { fs::remove_all(dir_); }
  void Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
  }
  fs::path dir_;
};

std::string Recipe(const std::string& name, const std::string& version, const std::string& deps) {
  return "RecipeFormatVersion: '2020-01-25'\nComponentName: " + name + "\nComponentVersion: '" +
         version + "'\n" + deps;
}

TEST_F(catalog, FolderToResolution) {
  Write("app-1.0.0.yaml",
        Recipe("app", "1.0.0",
               "ComponentDependencies:\n  lib: {VersionRequirement: '^1.0.0'}\n"
               "  aws.greengrass.DockerApplicationManager: {VersionRequirement: ~2.0.0}\n"));
  Write("nested/lib-1.0.0.yaml", Recipe("lib", "1.0.0", ""));
  Write(
      "nested/lib-1.4.0.json",
      R"({"RecipeFormatVersion": "2020-01-25", "ComponentName": "lib", "ComponentVersion": "1.4.0"})");
  Write("lib-2.0.0.yaml", Recipe("lib", "2.0.0", ""));
  Write("broken.yaml", "ComponentName: [\n");
  Write("notes.txt", "not a recipe");

  auto folder = LoadRecipeFolder(dir_.string());
  EXPECT_EQ(folder.recipes.size(), 4u);
  ASSERT_EQ(folder.problems.size(), 1u);
  EXPECT_NE(folder.problems[0].find("broken.yaml"), std::string::npos);

  std::vector<std::string> dups;
  auto cat = CatalogFromRecipes(folder.recipes, &dups);
  EXPECT_TRUE(dups.empty());
  auto r = ResolveWithBuiltins({{"app", "1.0.0"}}, cat);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->resolution.versions.at("lib").ToString(), "1.4.0");
  EXPECT_EQ(r->builtins.count("aws.greengrass.DockerApplicationManager"), 1u);
}

TEST_F(catalog, DuplicateVersionsAreReported) {
  Write("a.yaml", Recipe("lib", "1.0.0", ""));
  Write("b.yaml", Recipe("lib", "1.0.0", ""));
  auto folder = LoadRecipeFolder(dir_.string());
  std::vector<std::string> dups;
  auto cat = CatalogFromRecipes(folder.recipes, &dups);
  EXPECT_EQ(cat["lib"].size(), 1u);
  EXPECT_EQ(dups, std::vector<std::string>{"lib@1.0.0"});
}

}  // namespace
}  // namespace lichen::deploy
