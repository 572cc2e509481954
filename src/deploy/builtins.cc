#include "deploy/builtins.h"

#include <array>

#include "semver/range.h"

namespace lichen::deploy {

bool IsBuiltin(std::string_view name) {
  static constexpr std::array<std::string_view, 4> kBuiltins = {kNucleus, kTokenExchangeService,
                                                                kDockerApplicationManager, kCli};
  for (auto b : kBuiltins) {
    if (b == name) return true;
  }
  return false;
}

Result<ResolutionWithBuiltins> ResolveWithBuiltins(
    const std::map<std::string, std::string>& root_requirements, const Catalog& catalog,
    size_t max_steps) {
  ResolutionWithBuiltins out;
  std::map<std::string, std::string> roots;
  for (const auto& [name, range] : root_requirements) {
    if (!IsBuiltin(name)) {
      roots.emplace(name, range);
      continue;
    }
    if (auto r = semver::Range::Parse(range); !r) {
      return MakeError("requirement '" + range + "' on " + name +
                       " is not a valid version range: " + r.error().message);
    }
    out.builtins.insert(name);
  }

  Catalog stripped;
  for (const auto& [name, candidates] : catalog) {
    if (IsBuiltin(name)) continue;
    auto& list = stripped[name];
    for (const auto& c : candidates) {
      Candidate copy{c.version, {}};
      for (const auto& [dep, req] : c.dependencies) {
        if (!IsBuiltin(dep)) {
          copy.dependencies.emplace(dep, req);
          continue;
        }
        if (auto r = semver::Range::Parse(req.range); !r) {
          return MakeError(name + "@" + c.version.ToStringWithBuild() + " requires " + dep +
                           " with '" + req.range +
                           "', which is not a valid version range: " + r.error().message);
        }
      }
      list.push_back(std::move(copy));
    }
  }

  auto resolved = Resolve(roots, stripped, max_steps);
  if (!resolved) return resolved.error();
  out.resolution = std::move(*resolved);

  // Put the built-in edges of each chosen version back.
  for (const auto& [name, version] : out.resolution.versions) {
    auto it = catalog.find(name);
    if (it == catalog.end()) continue;
    for (const auto& c : it->second) {
      if (!(c.version == version) || c.version.ToStringWithBuild() != version.ToStringWithBuild()) {
        continue;
      }
      for (const auto& [dep, req] : c.dependencies) {
        if (!IsBuiltin(dep)) continue;
        out.resolution.dependencies[name][dep] = req.type;
        out.builtins.insert(dep);
      }
      break;
    }
  }
  return out;
}

}  // namespace lichen::deploy
