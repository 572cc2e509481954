// The lifecycle of one component on one platform: which steps run, how, and
// with what environment. Built from the JSON that platform selection leaves.
#pragma once

#include <array>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "recipe/diagnostic.h"
#include "recipe/recipe.h"

namespace lichen::recipe {

enum class StepKind { kBootstrap, kInstall, kStartup, kRun, kShutdown, kRecover };
inline constexpr std::array<StepKind, 6> kAllSteps = {StepKind::kBootstrap, StepKind::kInstall,
                                                      StepKind::kStartup,   StepKind::kRun,
                                                      StepKind::kShutdown,  StepKind::kRecover};
const char* ToString(StepKind kind);  // "Install"
// Seconds; nullopt for Run, which has no timeout unless the recipe sets one.
std::optional<int> DefaultTimeoutSeconds(StepKind kind);

using EnvList = std::vector<std::pair<std::string, std::string>>;  // in file order

struct Skipif {
  enum class Kind { kOnPath, kExists };
  Kind kind = Kind::kOnPath;
  bool negate = false;  // "!onpath x": skip when x is NOT on PATH
  std::string argument;
};

struct Step {
  std::string script;
  bool requires_privilege = false;
  std::optional<Skipif> skipif;
  std::optional<int> timeout_seconds;  // as written; use EffectiveTimeout for the default
  EnvList setenv;
};

struct Lifecycle {
  std::map<StepKind, Step> steps;
  EnvList setenv;  // lifecycle-wide Setenv

  const Step* Find(StepKind kind) const;
  std::optional<int> EffectiveTimeout(StepKind kind) const;
};

// Parses "onpath X", "exists P", optionally "!"-negated, as the reference does.
std::optional<Skipif> ParseSkipif(const std::string& text);

// Selector keywords of a recipe: every name in any manifest's Selections, plus "all".
std::set<std::string> SelectorKeywords(const Recipe& recipe);

// Applies Greengrass's selection filtering to a lifecycle map: at any level where a
// key is a selector keyword, the first of `selections` present wins (then "all"), and
// the other keys are dropped. Returns nullopt when nothing was selected.
std::optional<Json> FilterSelectors(const Json& source, const std::set<std::string>& keywords,
                                    const std::vector<std::string>& selections);

// The lifecycle JSON that applies with a chosen manifest: its own Lifecycle when non-empty,
// else the recipe-wide Lifecycle filtered by the manifest's Selections.
Json EffectiveLifecycleJson(const Recipe& recipe, const Manifest& manifest);

// Builds the typed lifecycle; problems go to `reporter` under `base_path`
// ("Manifests[0].Lifecycle" or "Lifecycle"). Returns nullopt if any error was reported.
std::optional<Lifecycle> BuildLifecycle(const Json& lifecycle, const std::string& base_path,
                                        Reporter& reporter);

}  // namespace lichen::recipe
