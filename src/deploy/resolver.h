// Dependency resolution for a deployment, as a pure function of the requested components and
// what versions exist. Self-contained input types keep it independent of recipe parsing, so
// it can be tested (and reasoned about) on its own.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "common/result.h"
#include "semver/version.h"

namespace lichen::deploy {

// HARD: the dependent starts only once the dependency runs; SOFT: deployed, never gating.
enum class DependencyType { kHard, kSoft };

struct Requirement {
  std::string range;  // npm range syntax, e.g. "^1.2" or ">=1.0.0 <2.0.0"
  DependencyType type = DependencyType::kHard;
};

// One available version of a component and what that version depends on.
struct Candidate {
  semver::Version version;
  std::map<std::string, Requirement> dependencies;
};

// name -> every version available (local store + recipe dir)
using Catalog = std::map<std::string, std::vector<Candidate>>;

struct Resolution {
  std::map<std::string, semver::Version> versions;
  // Each resolved component's dependencies, as its chosen version declares them, with the edge
  // type, so callers can gate starts on HARD edges. Every resolved component has an entry.
  std::map<std::string, std::map<std::string, DependencyType>> dependencies;
};

// Bounds the backtracking search so an adversarial catalog fails fast instead of hanging.
inline constexpr size_t kDefaultMaxResolveSteps = 100000;

// Picks, for the roots and the transitive closure of their dependencies (HARD and SOFT), the
// newest version of each component that satisfies every requirement placed on it by the roots
// and by the chosen versions of its requirers, backtracking over older versions when a choice
// leads to a conflict. Fails with an error naming what to fix: a missing component, conflicting
// requirers, an invalid range, a dependency cycle, or the step bound being exceeded.
Result<Resolution> Resolve(const std::map<std::string, std::string>& root_requirements,
                           const Catalog& catalog, size_t max_steps = kDefaultMaxResolveSteps);

}  // namespace lichen::deploy
