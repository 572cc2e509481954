#include "recipe/effective.h"

namespace lichen::recipe {

void MergeInto(Json& target, const Json& patch) {
  if (!patch.is_object() || !target.is_object()) {
    target = patch;
    return;
  }
  for (const auto& [k, v] : patch.items()) {
    auto it = target.find(k);
    if (it != target.end() && it->is_object() && v.is_object()) {
      MergeInto(*it, v);
    } else {
      target[k] = v;
    }
  }
}

Result<EffectiveRecipe> Specialise(const Recipe& recipe, const SpecialiseOptions& options) {
  EffectiveRecipe out;
  Manifest implicit;
  const Manifest* manifest = &implicit;
  if (recipe.manifests.empty()) {
    out.implicit_manifest = true;
  } else {
    auto index = SelectManifest(recipe, options.platform);
    if (!index) {
      return MakeError("no manifest of " + recipe.name + " " + recipe.version.ToStringWithBuild() +
                       " matches this platform (" + Describe(options.platform) + ")");
    }
    out.manifest_index = *index;
    manifest = &recipe.manifests[*index];
  }
  out.artifacts = manifest->artifacts;
  if (options.configuration) {
    out.configuration = *options.configuration;
  } else {
    out.configuration = recipe.default_configuration;
    MergeInto(out.configuration, options.configuration_merge);
  }

  InterpolationContext ctx;
  ctx.root = options.root;
  ctx.thing_name = options.thing_name;
  ctx.self = VariableSource{recipe.name, recipe.version.ToStringWithBuild(), &out.configuration};
  // Offline there are no resolved dependencies to read from; their variables are
  // reported as unresolved rather than guessed.
  ctx.dependencies = options.dependencies;
  out.lifecycle_json =
      InterpolateTree(EffectiveLifecycleJson(recipe, *manifest), ctx, &out.problems);

  std::vector<Diagnostic> diags;
  Reporter reporter(nullptr, &diags);
  auto lifecycle = BuildLifecycle(out.lifecycle_json, "Lifecycle", reporter);
  for (const auto& d : diags) {
    if (d.severity == Severity::kWarning) out.problems.push_back(d.path + ": " + d.message);
  }
  if (!lifecycle) {
    for (const auto& d : diags) {
      if (d.severity == Severity::kError) return MakeError(d.path + ": " + d.message);
    }
    return MakeError("the lifecycle is not valid");
  }
  out.lifecycle = std::move(*lifecycle);
  return out;
}

}  // namespace lichen::recipe
