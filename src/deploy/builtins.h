// Components the runtime provides itself. Recipes name them as dependencies
// (aws.greengrass.DockerApplicationManager ~2.0.0, TokenExchangeService ^2.0.0,
// Nucleus >=2.5.0); Lichen implements them inside the daemon, so any valid version
// requirement on them is satisfied and no recipe is needed for them.
#pragma once

#include <set>
#include <string>
#include <string_view>

#include "deploy/resolver.h"

namespace lichen::deploy {

inline constexpr std::string_view kNucleus = "aws.greengrass.Nucleus";
inline constexpr std::string_view kTokenExchangeService = "aws.greengrass.TokenExchangeService";
inline constexpr std::string_view kDockerApplicationManager =
    "aws.greengrass.DockerApplicationManager";
inline constexpr std::string_view kCli = "aws.greengrass.Cli";

bool IsBuiltin(std::string_view name);

struct ResolutionWithBuiltins {
  Resolution resolution;           // components that come from recipes
  std::set<std::string> builtins;  // built-in components the deployment uses
};

// Resolve() with built-in components taken out of the catalog's problem: their
// requirements are checked for syntax only, their edges stay in
// resolution.dependencies (so HARD gating still sees them), and recipes in the
// catalog under a built-in name are ignored.
Result<ResolutionWithBuiltins> ResolveWithBuiltins(
    const std::map<std::string, std::string>& root_requirements, const Catalog& catalog,
    size_t max_steps = kDefaultMaxResolveSteps);

}  // namespace lichen::deploy
