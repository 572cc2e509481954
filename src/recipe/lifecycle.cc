#include "recipe/lifecycle.h"

#include <algorithm>
#include <regex>

#include "recipe/keys.h"
#include "recipe/scalar.h"

namespace lichen::recipe {
namespace {

struct StepName {
  StepKind kind;
  std::string_view name;
};
constexpr std::array<StepName, 6> kStepNames = {{{StepKind::kBootstrap, "Bootstrap"},
                                                 {StepKind::kInstall, "Install"},
                                                 {StepKind::kStartup, "Startup"},
                                                 {StepKind::kRun, "Run"},
                                                 {StepKind::kShutdown, "Shutdown"},
                                                 {StepKind::kRecover, "Recover"}}};
constexpr std::array<std::string_view, 8> kLifecycleKeys = {
    "Bootstrap", "Install", "Startup", "Run", "Shutdown", "Recover", "Setenv", "Uninstall"};
constexpr std::array<std::string_view, 5> kStepKeys = {"Script", "RequiresPrivilege", "Skipif",
                                                       "Timeout", "Setenv"};

// A value such as "{configuration:/timeout}" is only known after interpolation,
// so its type cannot be checked yet.
bool IsDeferred(const Json& v) {
  if (!v.is_string()) return false;
  const auto& s = v.get_ref<const std::string&>();
  auto open = s.find('{');
  return open != std::string::npos && s.find(':', open) != std::string::npos &&
         s.find('}', open) != std::string::npos;
}

bool IsStepField(std::string_view key) {
  return std::any_of(kStepKeys.begin(), kStepKeys.end(),
                     [key](std::string_view n) { return EqualsIgnoreCase(key, n); });
}

std::optional<StepKind> StepKindOf(std::string_view key) {
  for (const auto& s : kStepNames) {
    if (EqualsIgnoreCase(key, s.name)) return s.kind;
  }
  return std::nullopt;
}

void UnknownKey(Reporter& reporter, const std::string& path, const std::string& key,
                std::span<const std::string_view> known, std::string_view where) {
  std::string msg = "unknown key '" + key + "' in " + std::string(where) + ", ignored";
  if (auto s = SuggestKey(key, known)) msg += " (did you mean '" + *s + "'?)";
  reporter.Warn(path, msg);
}

EnvList ReadSetenv(const Json& node, const std::string& path, Reporter& reporter) {
  EnvList env;
  if (node.is_null()) return env;
  if (!node.is_object()) {
    reporter.Error(path,
                   "Setenv must be a mapping of variable names to values, not " + TypeName(node));
    return env;
  }
  for (const auto& [k, v] : node.items()) {
    if (auto text = ScalarText(v)) {
      env.emplace_back(k, *text);
    } else if (v.is_null()) {
      env.emplace_back(k, "");
    } else {
      reporter.Error(ChildPath(path, k), "an environment value must be text, not " + TypeName(v));
    }
  }
  return env;
}

std::optional<Step> ReadStep(const Json& node, const std::string& path, Reporter& reporter) {
  Step step;
  const size_t errors_before = reporter.ErrorCount();
  if (node.is_string()) {
    step.script = node.get<std::string>();
    return step;
  }
  if (auto text = ScalarText(node)) {  // a bare number or boolean: still a command line
    step.script = *text;
    return step;
  }
  if (!node.is_object()) {
    reporter.Error(path,
                   "a lifecycle step is a script or a mapping with Script, not " + TypeName(node));
    return std::nullopt;
  }
  bool ok = true;
  bool has_script = false;
  for (const auto& [k, v] : node.items()) {
    const std::string p = ChildPath(path, k);
    if (EqualsIgnoreCase(k, "Script")) {
      auto text = ScalarText(v);
      if (!text) {
        reporter.Error(p, "Script must be text, not " + TypeName(v));
        ok = false;
      } else {
        step.script = *text;
        has_script = true;
      }
    } else if (EqualsIgnoreCase(k, "RequiresPrivilege")) {
      if (IsDeferred(v)) continue;
      auto b = ScalarBool(v);
      if (!b) {
        reporter.Error(p, "RequiresPrivilege must be true or false, not " + Quote(v));
        ok = false;
      } else {
        step.requires_privilege = *b;
      }
    } else if (EqualsIgnoreCase(k, "Skipif")) {
      auto text = ScalarText(v);
      std::optional<Skipif> skip = text ? ParseSkipif(*text) : std::nullopt;
      if (!skip && IsDeferred(v)) continue;
      if (!skip) {
        reporter.Error(p, "Skipif " + Quote(v) +
                              " is not understood: write 'onpath <command>' or 'exists <path>', "
                              "optionally negated with '!'");
        ok = false;
      } else {
        step.skipif = skip;
      }
    } else if (EqualsIgnoreCase(k, "Timeout")) {
      if (IsDeferred(v)) continue;
      auto n = ScalarInt(v);
      if (!n || *n <= 0 || *n > 24 * 3600 * 365) {
        reporter.Error(p, "Timeout must be a whole, positive number of seconds, not " + Quote(v));
        ok = false;
      } else {
        step.timeout_seconds = static_cast<int>(*n);
      }
    } else if (EqualsIgnoreCase(k, "Setenv")) {
      step.setenv = ReadSetenv(v, p, reporter);
    } else {
      UnknownKey(reporter, p, k, kStepKeys, "a lifecycle step");
    }
  }
  if (ok && reporter.ErrorCount() != errors_before) ok = false;
  if (!has_script && ok) {
    reporter.Error(path, "the step has no Script");
    ok = false;
  }
  if (!ok) return std::nullopt;
  return step;
}

}  // namespace

const char* ToString(StepKind kind) {
  for (const auto& s : kStepNames) {
    if (s.kind == kind) return s.name.data();
  }
  return "?";
}

std::optional<int> DefaultTimeoutSeconds(StepKind kind) {
  switch (kind) {
    case StepKind::kBootstrap:
      return 120;
    case StepKind::kInstall:
      return 120;
    case StepKind::kStartup:
      return 120;
    case StepKind::kRun:
      return std::nullopt;
    case StepKind::kShutdown:
      return 15;
    case StepKind::kRecover:
      return 60;
  }
  return std::nullopt;
}

const Step* Lifecycle::Find(StepKind kind) const {
  auto it = steps.find(kind);
  return it == steps.end() ? nullptr : &it->second;
}

std::optional<int> Lifecycle::EffectiveTimeout(StepKind kind) const {
  const Step* s = Find(kind);
  if (s != nullptr && s->timeout_seconds) return s->timeout_seconds;
  return DefaultTimeoutSeconds(kind);
}

std::optional<Skipif> ParseSkipif(const std::string& text) {
  // The reference trims, strips one leading '!', trims again, then matches
  // "(exists|onpath) +(.+)" against the whole rest.
  auto trim = [](std::string s) {
    const char* ws = " \t\r\n";
    auto b = s.find_first_not_of(ws);
    if (b == std::string::npos) return std::string();
    auto e = s.find_last_not_of(ws);
    return s.substr(b, e - b + 1);
  };
  std::string expr = trim(text);
  Skipif out;
  if (!expr.empty() && expr[0] == '!') {
    out.negate = true;
    expr = trim(expr.substr(1));
  }
  std::string_view rest;
  if (expr.rfind("onpath", 0) == 0) {
    out.kind = Skipif::Kind::kOnPath;
    rest = std::string_view(expr).substr(6);
  } else if (expr.rfind("exists", 0) == 0) {
    out.kind = Skipif::Kind::kExists;
    rest = std::string_view(expr).substr(6);
  } else {
    return std::nullopt;
  }
  size_t spaces = 0;
  while (spaces < rest.size() && rest[spaces] == ' ') ++spaces;
  if (spaces == 0 || spaces == rest.size()) return std::nullopt;
  out.argument = std::string(rest.substr(spaces));
  return out;
}

std::set<std::string> SelectorKeywords(const Recipe& recipe) {
  std::set<std::string> keywords = {"all"};
  for (const auto& m : recipe.manifests) keywords.insert(m.selections.begin(), m.selections.end());
  return keywords;
}

std::optional<Json> FilterSelectors(const Json& source, const std::set<std::string>& keywords,
                                    const std::vector<std::string>& selections) {
  if (!source.is_object()) {
    if (source.is_null()) return std::nullopt;  // null is "no value", as in the reference
    return source;
  }
  bool has_selector = std::any_of(source.items().begin(), source.items().end(),
                                  [&](const auto& kv) { return keywords.count(kv.key()) > 0; });
  if (has_selector) {
    const Json* chosen = nullptr;
    for (const auto& s : selections) {
      auto it = source.find(s);
      if (it != source.end() && !it->is_null()) {
        chosen = &*it;
        break;
      }
    }
    if (chosen == nullptr) {
      auto it = source.find("all");
      if (it != source.end() && !it->is_null()) chosen = &*it;
    }
    if (chosen == nullptr) return std::nullopt;
    return FilterSelectors(*chosen, keywords, selections);
  }
  Json out = Json::object();
  for (const auto& [k, v] : source.items()) {
    if (auto filtered = FilterSelectors(v, keywords, selections)) out[k] = std::move(*filtered);
  }
  return out;
}

Json EffectiveLifecycleJson(const Recipe& recipe, const Manifest& manifest) {
  if (manifest.lifecycle.is_object() && !manifest.lifecycle.empty()) return manifest.lifecycle;
  auto filtered =
      FilterSelectors(recipe.global_lifecycle, SelectorKeywords(recipe), manifest.selections);
  if (filtered && filtered->is_object()) return *filtered;
  return Json::object();
}

std::optional<Lifecycle> BuildLifecycle(const Json& lifecycle, const std::string& base_path,
                                        Reporter& reporter) {
  Lifecycle out;
  const size_t errors_before = reporter.ErrorCount();
  if (lifecycle.is_null()) return out;
  if (!lifecycle.is_object()) {
    reporter.Error(base_path, "Lifecycle must be a mapping of steps, not " + TypeName(lifecycle));
    return std::nullopt;
  }
  bool ok = true;
  for (const auto& [k, v] : lifecycle.items()) {
    const std::string p = ChildPath(base_path, k);
    if (auto kind = StepKindOf(k)) {
      if (v.is_null()) continue;  // an empty step is no step
      if (auto step = ReadStep(v, p, reporter)) {
        out.steps[*kind] = std::move(*step);
      } else {
        ok = false;
      }
    } else if (EqualsIgnoreCase(k, "Setenv")) {
      out.setenv = ReadSetenv(v, p, reporter);
    } else if (EqualsIgnoreCase(k, "Uninstall")) {
      reporter.Warn(p, "the Uninstall step is not run by Lichen (nor by most nucleus versions)");
    } else if (IsStepField(k)) {
      reporter.Warn(p, "'" + k +
                           "' directly under Lifecycle is ignored: it belongs inside a "
                           "step, e.g. Run: {Script: ..., " +
                           k + ": ...}");
    } else {
      UnknownKey(reporter, p, k, kLifecycleKeys, "Lifecycle");
    }
  }
  if (out.Find(StepKind::kStartup) != nullptr && out.Find(StepKind::kRun) != nullptr) {
    // The reference runs Startup and never looks at Run; say so rather than refuse.
    reporter.Warn(base_path,
                  "both Startup and Run are defined: Run is ignored, as the nucleus does (a "
                  "component has Startup for a command that starts a background service, or Run "
                  "for a foreground process)");
    out.steps.erase(StepKind::kRun);
  }
  if (!ok || reporter.ErrorCount() != errors_before) return std::nullopt;
  return out;
}

}  // namespace lichen::recipe
