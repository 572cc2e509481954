// The recipes shipped in examples/ are valid, and each JSON copy of a YAML recipe
// loads to the same model.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "recipe/effective.h"
#include "recipe/loader.h"

namespace lichen {
namespace {

namespace fs = std::filesystem;

fs::path Examples() {
  const char* dir = std::getenv("LICHEN_SOURCE_DIR");
  return (dir != nullptr ? fs::path(dir) : fs::current_path()) / "examples";
}

TEST(Examples, EveryRecipeIsValidAndSelectsOnLinux) {
  size_t count = 0;
  for (const auto& entry : fs::recursive_directory_iterator(Examples())) {
    if (!entry.is_regular_file() || !recipe::IsRecipeFileName(entry.path().filename().string())) {
      continue;
    }
    // Only files under a recipes folder are recipes (examples may ship other YAML).
    if (entry.path().parent_path().filename().string().rfind("recipes", 0) != 0) continue;
    ++count;
    auto r = recipe::LoadRecipeFile(entry.path().string());
    ASSERT_TRUE(r.recipe) << entry.path();
    for (const auto& d : r.diagnostics) ADD_FAILURE() << recipe::Format(d, entry.path().string());
    recipe::SpecialiseOptions o;
    o.platform = {{"os", "linux"}, {"architecture", "amd64"}};
    EXPECT_TRUE(recipe::Specialise(*r.recipe, o)) << entry.path();
  }
  EXPECT_GE(count, 8u);
}

TEST(Examples, JsonCopiesMatchYaml) {
  const fs::path docker = Examples() / "docker";
  size_t pairs = 0;
  for (const auto& entry : fs::directory_iterator(docker / "recipes")) {
    fs::path json = docker / "recipes-json" / entry.path().filename().replace_extension(".json");
    ASSERT_TRUE(fs::exists(json)) << json;
    auto y = recipe::LoadRecipeFile(entry.path().string());
    auto j = recipe::LoadRecipeFile(json.string());
    ASSERT_TRUE(y.recipe && j.recipe);
    EXPECT_EQ(y.recipe->name, j.recipe->name);
    EXPECT_EQ(y.recipe->default_configuration, j.recipe->default_configuration);
    ASSERT_EQ(y.recipe->manifests.size(), j.recipe->manifests.size());
    for (size_t i = 0; i < y.recipe->manifests.size(); ++i) {
      EXPECT_EQ(y.recipe->manifests[i].lifecycle, j.recipe->manifests[i].lifecycle);
      EXPECT_EQ(y.recipe->manifests[i].artifacts.size(), j.recipe->manifests[i].artifacts.size());
    }
    ++pairs;
  }
  EXPECT_EQ(pairs, 4u);
}

}  // namespace
}  // namespace lichen
