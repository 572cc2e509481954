#include "deploy/catalog.h"

#include <algorithm>
#include <filesystem>

#include "recipe/loader.h"

namespace lichen::deploy {

Catalog CatalogFromRecipes(const std::vector<recipe::Recipe>& recipes,
                           std::vector<std::string>* duplicates) {
  Catalog catalog;
  for (const auto& r : recipes) {
    auto& list = catalog[r.name];
    const std::string v = r.version.ToStringWithBuild();
    bool seen = std::any_of(list.begin(), list.end(), [&v](const Candidate& c) {
      return c.version.ToStringWithBuild() == v;
    });
    if (seen) {
      if (duplicates != nullptr) duplicates->push_back(r.name + "@" + v);
      continue;
    }
    Candidate c{r.version, {}};
    for (const auto& d : r.dependencies) {
      c.dependencies[d.name] = Requirement{
          d.version_requirement,
          d.type == recipe::DependencyType::kSoft ? DependencyType::kSoft : DependencyType::kHard};
    }
    list.push_back(std::move(c));
  }
  return catalog;
}

RecipeFolder LoadRecipeFolder(const std::string& dir) {
  namespace fs = std::filesystem;
  RecipeFolder out;
  std::vector<std::string> files;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_regular_file() && recipe::IsRecipeFileName(it->path().filename().string())) {
      files.push_back(it->path().string());
    }
  }
  if (ec) out.problems.push_back(dir + ": " + ec.message());
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    auto loaded = recipe::LoadRecipeFile(f);
    if (loaded.recipe) {
      out.recipes.push_back(std::move(*loaded.recipe));
      continue;
    }
    for (const auto& d : loaded.diagnostics) {
      if (d.severity == recipe::Severity::kError) out.problems.push_back(recipe::Format(d, f));
    }
  }
  return out;
}

}  // namespace lichen::deploy
