#include "deploy/resolver.h"

#include <algorithm>
#include <optional>
#include <set>
#include <utility>

#include "semver/range.h"

namespace lichen::deploy {
namespace {

constexpr const char* kRootRequirer = "deployment";

// A requirement placed on a component, remembered with who placed it for error messages.
struct Constraint {
  std::string requirer;  // "deployment" or "Name@1.2.3"
  std::string source;    // the requiring component's name; empty for the deployment
  std::string text;      // the range as written
  const semver::Range* range = nullptr;
};

// Names of the decided components whose choices are to blame for a dead end.
using Culprits = std::set<std::string>;

std::string Quote(const std::string& s) { return "\"" + s + "\""; }

// Backtracking: components are decided one at a time (the first name, in order, that is
// required but undecided), trying its satisfying versions newest first. A choice adds its
// dependencies' requirements; a requirement an earlier choice cannot meet rejects the choice.
// A dead end carries the set of decisions that caused it, and the search jumps straight back
// to the latest of those (conflict-directed backjumping): re-deciding unrelated components
// cannot help, and without the jump one missing dependency would make the search try every
// combination of every other component's versions.
class Resolver {
 public:
  Resolver(const Catalog& catalog, size_t max_steps) : catalog_(catalog), max_steps_(max_steps) {}

  Result<Resolution> Run(const std::map<std::string, std::string>& roots) {
    for (const auto& [name, text] : roots) {
      const semver::Range* range = ParseRange(text);
      if (range == nullptr) {
        return InvalidRange(text, name, kRootRequirer);
      }
      constraints_[name].push_back({kRootRequirer, "", text, range});
    }
    Culprits culprits;
    switch (Search(culprits)) {
      case Outcome::kSolved:
        break;
      case Outcome::kAborted:
        return *hard_error_;
      case Outcome::kFailed:
        if (definite_error_) {
          return *definite_error_;
        }
        if (weak_error_) {
          return *weak_error_;
        }
        return MakeError("no combination of component versions satisfies the deployment");
    }
    Resolution resolution;
    for (const auto& [name, index] : selected_) {
      const Candidate& c = catalog_.at(name)[index];
      resolution.versions.emplace(name, c.version);
      auto& edges = resolution.dependencies[name];
      for (const auto& [dep, req] : c.dependencies) {
        edges.emplace(dep, req.type);
      }
    }
    return resolution;
  }

 private:
  enum class Outcome { kSolved, kFailed, kAborted };

  // Decides the next component. On kFailed, `culprits` holds the decisions to blame.
  Outcome Search(Culprits& culprits) {
    const std::string* next = nullptr;
    for (const auto& [name, cs] : constraints_) {
      if (!cs.empty() && !selected_.contains(name)) {
        next = &name;
        break;
      }
    }
    if (next == nullptr) {
      return Outcome::kSolved;
    }
    const std::string name = *next;
    const std::vector<Constraint> constraints = constraints_[name];
    // The requirers decide which versions are acceptable, and that the component is needed.
    Culprits blame;
    for (const auto& c : constraints) {
      if (!c.source.empty()) {
        blame.insert(c.source);
      }
    }
    const auto entry = catalog_.find(name);
    if (entry == catalog_.end() || entry->second.empty()) {
      std::string by;
      for (const auto& c : constraints) {
        by += (by.empty() ? "" : ", ") + c.requirer + " (range " + c.text + ")";
      }
      Record(true, "component " + name + " required by " + by + " is not available");
      culprits = std::move(blame);
      return Outcome::kFailed;
    }
    bool any_satisfies = false;
    for (size_t index : NewestFirst(name)) {
      const Candidate& candidate = entry->second[index];
      if (!SatisfiesAll(candidate.version, constraints)) {
        continue;
      }
      any_satisfies = true;
      if (++steps_ > max_steps_) {
        hard_error_ =
            MakeError("dependency resolution gave up after " + std::to_string(max_steps_) +
                      " steps: too many version combinations to try; pin the "
                      "deployment's components to exact versions");
        return Outcome::kAborted;
      }
      const std::string label = name + "@" + candidate.version.ToString();
      std::vector<std::pair<std::string, Constraint>> added;
      bool consistent = true;
      for (const auto& [dep, req] : candidate.dependencies) {
        const semver::Range* range = ParseRange(req.range);
        if (range == nullptr) {
          hard_error_ = InvalidRange(req.range, dep, label);
          return Outcome::kAborted;
        }
        Constraint constraint{label, name, req.range, range};
        if (!CheckAgainstChoices(name, dep, constraint, blame)) {
          consistent = false;
          break;
        }
        added.emplace_back(dep, std::move(constraint));
      }
      if (!consistent) {
        continue;
      }
      selected_[name] = index;
      for (const auto& [dep, constraint] : added) {
        constraints_[dep].push_back(constraint);
      }
      Culprits below;
      const Outcome outcome = Search(below);
      if (outcome != Outcome::kFailed) {
        return outcome;
      }
      // A failed subtree has undone its own additions, so ours are last in each list.
      for (const auto& [dep, constraint] : added) {
        constraints_[dep].pop_back();
      }
      selected_.erase(name);
      if (!below.contains(name)) {
        culprits = std::move(below);  // this choice is not to blame: jump further back
        return Outcome::kFailed;
      }
      below.erase(name);
      blame.insert(below.begin(), below.end());
    }
    if (!any_satisfies) {
      Record(true, Conflict(name, constraints));
    }
    blame.erase(name);
    culprits = std::move(blame);
    return Outcome::kFailed;
  }

  // Whether `name`'s candidate may depend on `dep` given the versions already chosen: the
  // chosen version of `dep` must meet the requirement, and the new edge must not close a cycle.
  // On rejection, adds the decisions involved to `blame`.
  bool CheckAgainstChoices(const std::string& name, const std::string& dep,
                           const Constraint& constraint, Culprits& blame) {
    if (dep == name) {
      Record(true, "dependency cycle: " + name + " -> " + name);
      return false;
    }
    const auto chosen = selected_.find(dep);
    if (chosen == selected_.end()) {
      return true;
    }
    const semver::Version& version = catalog_.at(dep)[chosen->second].version;
    if (!constraint.range->Satisfies(version)) {
      std::vector<Constraint> all = constraints_[dep];
      all.push_back(constraint);
      if (AnySatisfies(dep, all)) {
        // Another version of dep meets every requirement; revisiting earlier choices may
        // reach it, so this only explains a failure when nothing better was found.
        Record(false, "no consistent version of " + dep + ": " + Requirers(all) +
                          "; available: " + Available(dep));
      } else {
        Record(true, Conflict(dep, all));
      }
      blame.insert(dep);
      return false;
    }
    if (auto path = PathBetween(dep, name)) {
      blame.insert(path->begin(), path->end());
      path->insert(path->begin(), name);
      Record(true, "dependency cycle: " + Cycle(*path));
      return false;
    }
    return true;
  }

  // A path from `from` to `to` over the chosen versions' dependency edges, if any.
  std::optional<std::vector<std::string>> PathBetween(const std::string& from,
                                                      const std::string& to) const {
    std::vector<std::string> path;
    std::set<std::string> visited;
    if (Dfs(from, to, path, visited)) {
      return path;
    }
    return std::nullopt;
  }

  bool Dfs(const std::string& at, const std::string& to, std::vector<std::string>& path,
           std::set<std::string>& visited) const {
    path.push_back(at);
    if (at == to) {
      return true;
    }
    const auto chosen = selected_.find(at);
    if (visited.insert(at).second && chosen != selected_.end()) {
      for (const auto& [dep, req] : catalog_.at(at)[chosen->second].dependencies) {
        if (Dfs(dep, to, path, visited)) {
          return true;
        }
      }
    }
    path.pop_back();
    return false;
  }

  // "A -> B -> C -> A" for the cycle [C, A, B, C], rotated to start at its smallest name so
  // the message does not depend on where the search closed it.
  static std::string Cycle(std::vector<std::string> cycle) {
    cycle.pop_back();
    std::rotate(cycle.begin(), std::min_element(cycle.begin(), cycle.end()), cycle.end());
    std::string out;
    for (const auto& n : cycle) {
      out += n + " -> ";
    }
    return out + cycle.front();
  }

  const semver::Range* ParseRange(const std::string& text) {
    if (auto it = ranges_.find(text); it != ranges_.end()) {
      return &it->second;
    }
    auto parsed = semver::Range::Parse(text);
    if (!parsed) {
      return nullptr;
    }
    return &ranges_.emplace(text, std::move(*parsed)).first->second;
  }

  static Error InvalidRange(const std::string& text, const std::string& dep,
                            const std::string& requirer) {
    const auto parsed = semver::Range::Parse(text);
    return MakeError("invalid version requirement " + Quote(text) + " on " + dep + " in " +
                     requirer + ": " + (parsed ? "" : parsed.error().message));
  }

  const std::vector<size_t>& NewestFirst(const std::string& name) {
    auto [it, inserted] = order_.try_emplace(name);
    if (inserted) {
      const auto& candidates = catalog_.at(name);
      for (size_t i = 0; i < candidates.size(); ++i) {
        it->second.push_back(i);
      }
      std::stable_sort(it->second.begin(), it->second.end(), [&](size_t a, size_t b) {
        return candidates[a].version > candidates[b].version;
      });
    }
    return it->second;
  }

  static bool SatisfiesAll(const semver::Version& v, const std::vector<Constraint>& cs) {
    return std::all_of(cs.begin(), cs.end(),
                       [&](const Constraint& c) { return c.range->Satisfies(v); });
  }

  bool AnySatisfies(const std::string& name, const std::vector<Constraint>& cs) const {
    const auto& candidates = catalog_.at(name);
    return std::any_of(candidates.begin(), candidates.end(),
                       [&](const Candidate& c) { return SatisfiesAll(c.version, cs); });
  }

  static std::string Requirers(const std::vector<Constraint>& cs) {
    std::string out;
    for (const auto& c : cs) {
      out += (out.empty() ? "" : ", ") + c.requirer + " requires " + c.text;
    }
    return out;
  }

  std::string Available(const std::string& name) const {
    std::vector<semver::Version> versions;
    for (const auto& c : catalog_.at(name)) {
      versions.push_back(c.version);
    }
    std::sort(versions.begin(), versions.end());
    std::string out;
    for (const auto& v : versions) {
      const std::string text = v.ToStringWithBuild();
      out += (out.empty() ? "" : ", ") + text;
    }
    return out;
  }

  std::string Conflict(const std::string& name, const std::vector<Constraint>& cs) const {
    return "no version of " + name + " satisfies all requirers: " + Requirers(cs) +
           "; available: " + Available(name);
  }

  // Keeps the first error of each kind: the search tries newest versions first, so the first
  // failure is the one on the path the user most likely expected to succeed.
  void Record(bool definite, std::string message) {
    auto& slot = definite ? definite_error_ : weak_error_;
    if (!slot) {
      slot = Error{std::move(message)};
    }
  }

  const Catalog& catalog_;
  const size_t max_steps_;
  size_t steps_ = 0;
  std::map<std::string, semver::Range> ranges_;  // parsed once per distinct text
  std::map<std::string, std::vector<size_t>> order_;
  std::map<std::string, std::vector<Constraint>> constraints_;
  std::map<std::string, size_t> selected_;  // name -> index into its catalog entry
  std::optional<Error> definite_error_;
  std::optional<Error> weak_error_;
  std::optional<Error> hard_error_;
};

}  // namespace

Result<Resolution> Resolve(const std::map<std::string, std::string>& root_requirements,
                           const Catalog& catalog, size_t max_steps) {
  return Resolver(catalog, max_steps).Run(root_requirements);
}

}  // namespace lichen::deploy
