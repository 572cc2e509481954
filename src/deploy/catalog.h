// The catalog the resolver chooses from, built from recipes (a recipe folder now,
// the component store later).
#pragma once

#include <string>
#include <vector>

#include "deploy/resolver.h"
#include "recipe/diagnostic.h"
#include "recipe/recipe.h"

namespace lichen::deploy {

// One candidate per recipe; a second recipe with the same name and version is
// reported in `duplicates` and ignored.
Catalog CatalogFromRecipes(const std::vector<recipe::Recipe>& recipes,
                           std::vector<std::string>* duplicates);

struct RecipeFolder {
  std::vector<recipe::Recipe> recipes;
  // Files that could not be used, with why: "file:line:col: error: ...".
  std::vector<std::string> problems;
};

// Loads every recipe file below `dir` (sorted). Invalid files are reported, not fatal:
// a deployment fails later only if it needs one of them.
RecipeFolder LoadRecipeFolder(const std::string& dir);

}  // namespace lichen::deploy
