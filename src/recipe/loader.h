// Turns recipe text into a validated Recipe, collecting every problem found.
//
// Loading never stops at the first problem: a person fixing a recipe wants the
// whole list. A recipe with any error is not returned.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "recipe/diagnostic.h"
#include "recipe/recipe.h"

namespace lichen::recipe {

struct LoadResult {
  std::optional<Recipe> recipe;  // set only when there are no errors
  std::vector<Diagnostic> diagnostics;
};

LoadResult LoadRecipe(std::string_view text, SourceFormat format);

// Reads and loads a file; the format comes from its extension.
LoadResult LoadRecipeFile(const std::string& path);

// ComponentName rules: letters, digits, '-', '_', '.', 1 to 128 characters.
bool IsLegalComponentName(std::string_view name);

// True for names Lichen would treat as recipe files in a folder.
bool IsRecipeFileName(std::string_view name);

}  // namespace lichen::recipe
