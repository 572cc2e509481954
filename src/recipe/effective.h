// A recipe specialised to one device: the chosen manifest, its lifecycle with
// variables resolved, its artifacts, and the configuration it runs with.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "recipe/interpolate.h"
#include "recipe/lifecycle.h"
#include "recipe/platform.h"
#include "recipe/recipe.h"

namespace lichen::recipe {

struct EffectiveRecipe {
  size_t manifest_index = 0;       // meaningless when the recipe has no manifests
  bool implicit_manifest = false;  // no Manifests at all: the recipe-wide Lifecycle applies
  Json lifecycle_json;             // selected and interpolated
  Lifecycle lifecycle;             // typed, from lifecycle_json
  std::vector<Artifact> artifacts;
  Json configuration;                 // DefaultConfiguration merged with the given overrides
  std::vector<std::string> problems;  // unresolved variables and similar, for warnings
};

struct SpecialiseOptions {
  Platform platform;
  std::string root = "/greengrass/v2";
  std::string thing_name;
  Json configuration_merge = Json::object();  // a MERGE document over DefaultConfiguration
  // The running configuration, when there is one (the nucleus): used as is instead of
  // DefaultConfiguration + configuration_merge.
  std::optional<Json> configuration;
  // Direct dependencies, for {Dep:configuration:/x} and the like.
  std::map<std::string, VariableSource> dependencies;
};

// Fails when no manifest matches (naming the component and the platform) or the
// selected lifecycle is invalid.
Result<EffectiveRecipe> Specialise(const Recipe& recipe, const SpecialiseOptions& options);

// Deep-merges `patch` into `target`: objects merge key by key, everything else
// (lists included) is replaced whole, as a deployment's MERGE does.
void MergeInto(Json& target, const Json& patch);

}  // namespace lichen::recipe
