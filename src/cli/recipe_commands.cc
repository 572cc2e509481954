// `lichen recipe validate|show|resolve`: offline tools that need no daemon.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <sstream>

#include "cli/commands.h"
#include "recipe/effective.h"
#include "recipe/loader.h"
#include "recipe/scalar.h"

namespace lichen::cli {
namespace {

namespace fs = std::filesystem;
using recipe::Json;

// Files to validate under PATH: the file itself, or every recipe file below a folder
// (sorted, so output is stable). Returns false and prints why when PATH is unusable.
bool CollectRecipeFiles(Context& ctx, const std::string& path, std::vector<std::string>* out) {
  std::error_code ec;
  auto status = fs::status(path, ec);
  if (ec || !fs::exists(status)) {
    ctx.err << ctx.program << ": " << path << ": no such file or folder\n";
    return false;
  }
  if (!fs::is_directory(status)) {
    out->push_back(path);
    return true;
  }
  std::vector<std::string> found;
  fs::recursive_directory_iterator it(path, fs::directory_options::skip_permission_denied, ec);
  for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const auto name = it->path().filename().string();
    if (it->is_directory() && (name == "node_modules" || (!name.empty() && name[0] == '.'))) {
      it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file() && recipe::IsRecipeFileName(name))
      found.push_back(it->path().string());
  }
  std::sort(found.begin(), found.end());
  out->insert(out->end(), found.begin(), found.end());
  return true;
}

Json DiagnosticJson(const recipe::Diagnostic& d) {
  Json j = Json::object();
  j["severity"] = d.severity == recipe::Severity::kError ? "error" : "warning";
  j["path"] = d.path;
  if (d.location.line > 0) {
    j["line"] = d.location.line;
    j["column"] = d.location.column;
  }
  j["message"] = d.message;
  return j;
}

int RunValidate(Context& ctx, const std::vector<std::string>& paths, bool json) {
  std::vector<std::string> files;
  for (const auto& p : paths) {
    if (!CollectRecipeFiles(ctx, p, &files)) return kExitUsage;
  }
  size_t invalid = 0, warned = 0;
  Json report = Json::array();
  for (const auto& file : files) {
    auto result = recipe::LoadRecipeFile(file);
    auto& diags = result.diagnostics;
    // Errors first: the first line for a file carries its verdict.
    std::stable_sort(diags.begin(), diags.end(), [](const auto& a, const auto& b) {
      return a.severity == recipe::Severity::kError && b.severity != recipe::Severity::kError;
    });
    const bool valid = result.recipe.has_value();
    if (!valid) {
      ++invalid;
    } else if (!diags.empty()) {
      ++warned;
    }
    if (json) {
      Json entry = {{"file", file}, {"valid", valid}, {"diagnostics", Json::array()}};
      for (const auto& d : diags) entry["diagnostics"].push_back(DiagnosticJson(d));
      report.push_back(std::move(entry));
      continue;
    }
    if (diags.empty()) {
      ctx.out << file << ": ok\n";
      continue;
    }
    for (const auto& d : diags) ctx.out << recipe::Format(d, file) << "\n";
  }
  if (json) {
    ctx.out << report.dump(2) << "\n";
  } else if (files.size() > 1) {
    ctx.err << files.size() << " recipes: " << files.size() - invalid << " valid (" << warned
            << " with warnings), " << invalid << " invalid\n";
  }
  if (files.empty()) {
    ctx.err << ctx.program << ": no recipe files (.json, .yaml, .yml) found\n";
    return kExitUsage;
  }
  return invalid == 0 ? kExitOk : kExitFailure;
}

// --config takes JSON text, or the name of a file holding it.
Result<Json> ReadJsonArgument(const std::string& arg) {
  std::string text = arg;
  std::error_code ec;
  if (!arg.empty() && arg.front() != '{' && fs::is_regular_file(arg, ec)) {
    std::ifstream in(arg);
    std::ostringstream buf;
    buf << in.rdbuf();
    text = buf.str();
  }
  try {
    Json j = Json::parse(text);
    if (!j.is_object()) return MakeError("--config must be a JSON object, e.g. '{\"key\": 1}'");
    return j;
  } catch (const nlohmann::json::exception& e) {
    return MakeError("--config is neither a JSON object nor a readable file: " +
                     std::string(e.what()));
  }
}

Json StepJson(const recipe::Lifecycle& lc, recipe::StepKind kind) {
  const recipe::Step* s = lc.Find(kind);
  Json j = Json::object();
  j["script"] = s->script;
  if (auto t = lc.EffectiveTimeout(kind)) j["timeoutSeconds"] = *t;
  j["requiresPrivilege"] = s->requires_privilege;
  if (s->skipif) {
    j["skipif"] = std::string(s->skipif->negate ? "!" : "") +
                  (s->skipif->kind == recipe::Skipif::Kind::kOnPath ? "onpath " : "exists ") +
                  s->skipif->argument;
  }
  if (!s->setenv.empty()) {
    j["setenv"] = Json::object();
    for (const auto& [k, v] : s->setenv) j["setenv"][k] = v;
  }
  return j;
}

Json EffectiveJson(const recipe::Recipe& r, const recipe::EffectiveRecipe& e,
                   const recipe::Platform& platform) {
  Json j = Json::object();
  j["componentName"] = r.name;
  j["componentVersion"] = r.version.ToStringWithBuild();
  j["componentType"] = recipe::ToString(r.type);
  j["platform"] = Json::object();
  for (const auto& [k, v] : platform) j["platform"][k] = v;
  j["manifestIndex"] = e.implicit_manifest ? Json(nullptr) : Json(e.manifest_index);
  j["dependencies"] = Json::array();
  for (const auto& d : r.dependencies) {
    j["dependencies"].push_back({{"name", d.name},
                                 {"versionRequirement", d.version_requirement},
                                 {"dependencyType", recipe::ToString(d.type)}});
  }
  j["artifacts"] = Json::array();
  for (const auto& a : e.artifacts) {
    Json art = {{"uri", a.uri},
                {"unarchive", recipe::ToString(a.unarchive)},
                {"permission",
                 {{"read", recipe::ToString(a.permission.read)},
                  {"execute", recipe::ToString(a.permission.execute)}}}};
    if (!a.digest.empty()) {
      art["digest"] = a.digest;
      art["algorithm"] = a.algorithm;
    }
    j["artifacts"].push_back(std::move(art));
  }
  j["configuration"] = e.configuration;
  Json lc = Json::object();
  if (!e.lifecycle.setenv.empty()) {
    lc["setenv"] = Json::object();
    for (const auto& [k, v] : e.lifecycle.setenv) lc["setenv"][k] = v;
  }
  for (auto kind : recipe::kAllSteps) {
    if (e.lifecycle.Find(kind) != nullptr) lc[recipe::ToString(kind)] = StepJson(e.lifecycle, kind);
  }
  j["lifecycle"] = std::move(lc);
  j["problems"] = e.problems;
  return j;
}

void PrintEffective(Context& ctx, const recipe::Recipe& r, const recipe::EffectiveRecipe& e,
                    const recipe::Platform& platform) {
  ctx.out << "Component:    " << r.name << " " << r.version.ToStringWithBuild() << " ("
          << recipe::ToString(r.type) << ")\n";
  ctx.out << "Platform:     " << recipe::Describe(platform) << "\n";
  if (e.implicit_manifest) {
    ctx.out << "Manifest:     none in the recipe; the recipe-wide Lifecycle applies\n";
  } else {
    ctx.out << "Manifest:     Manifests[" << e.manifest_index << "] "
            << r.manifests[e.manifest_index].platform.dump() << "\n";
  }
  ctx.out << "Dependencies:" << (r.dependencies.empty() ? " none\n" : "\n");
  for (const auto& d : r.dependencies) {
    ctx.out << "  " << d.name << " "
            << (d.version_requirement.empty() ? "*" : d.version_requirement) << " "
            << recipe::ToString(d.type) << "\n";
  }
  ctx.out << "Artifacts:" << (e.artifacts.empty() ? " none\n" : "\n");
  for (const auto& a : e.artifacts) {
    ctx.out << "  " << a.uri;
    if (a.unarchive != recipe::Unarchive::kNone)
      ctx.out << " (unarchive " << recipe::ToString(a.unarchive) << ")";
    ctx.out << "\n";
  }
  ctx.out << "Configuration: " << e.configuration.dump(2) << "\n";
  ctx.out << "Lifecycle:" << (e.lifecycle.steps.empty() ? " nothing to run\n" : "\n");
  for (const auto& [k, v] : e.lifecycle.setenv) ctx.out << "  Setenv " << k << "=" << v << "\n";
  for (auto kind : recipe::kAllSteps) {
    const recipe::Step* s = e.lifecycle.Find(kind);
    if (s == nullptr) continue;
    ctx.out << "  " << recipe::ToString(kind) << " (";
    if (auto t = e.lifecycle.EffectiveTimeout(kind)) {
      ctx.out << "timeout " << *t << " s";
    } else {
      ctx.out << "no timeout";
    }
    if (s->requires_privilege) ctx.out << ", as root";
    if (s->skipif) {
      ctx.out << ", skip if " << (s->skipif->negate ? "not " : "")
              << (s->skipif->kind == recipe::Skipif::Kind::kOnPath ? "on PATH: " : "exists: ")
              << s->skipif->argument;
    }
    ctx.out << ")\n";
    for (const auto& [k, v] : s->setenv) ctx.out << "    Setenv " << k << "=" << v << "\n";
    std::istringstream lines(s->script);
    for (std::string line; std::getline(lines, line);) ctx.out << "    | " << line << "\n";
  }
  for (const auto& p : e.problems) ctx.err << "warning: " << p << "\n";
}

struct ShowOptions {
  std::string file;
  std::string platform;
  std::string root = "/greengrass/v2";
  std::string config;
  std::string thing_name;
  bool json = false;
};

int RunShow(Context& ctx, const ShowOptions& o) {
  auto loaded = recipe::LoadRecipeFile(o.file);
  for (const auto& d : loaded.diagnostics) ctx.err << recipe::Format(d, o.file) << "\n";
  if (!loaded.recipe) return kExitFailure;
  recipe::SpecialiseOptions opts;
  opts.platform = recipe::DetectPlatform();
  if (!o.platform.empty()) {
    auto p = recipe::ParsePlatformSpec(o.platform);
    if (!p) {
      ctx.err << ctx.program << ": --platform: " << p.error().message << "\n";
      return kExitUsage;
    }
    // Given attributes replace detected ones, like the runtime's platformOverride.
    for (const auto& [k, v] : *p) opts.platform[k] = v;
  }
  opts.root = fs::absolute(o.root).lexically_normal().string();
  while (opts.root.size() > 1 && opts.root.back() == '/') opts.root.pop_back();
  opts.thing_name = o.thing_name;
  if (!o.config.empty()) {
    auto merge = ReadJsonArgument(o.config);
    if (!merge) {
      ctx.err << ctx.program << ": " << merge.error().message << "\n";
      return kExitUsage;
    }
    opts.configuration_merge = *merge;
  }
  auto effective = recipe::Specialise(*loaded.recipe, opts);
  if (!effective) {
    ctx.err << o.file << ": error: " << effective.error().message << "\n";
    return kExitFailure;
  }
  if (o.json) {
    ctx.out << EffectiveJson(*loaded.recipe, *effective, opts.platform).dump(2) << "\n";
  } else {
    PrintEffective(ctx, *loaded.recipe, *effective, opts.platform);
  }
  return kExitOk;
}

}  // namespace

void AddRecipeCommands(CLI::App& app, Context& ctx) {
  CLI::App* recipe = app.add_subcommand("recipe", "Check and inspect component recipes offline");
  recipe->require_subcommand(1);

  {
    auto paths = std::make_shared<std::vector<std::string>>();
    auto json = std::make_shared<bool>(false);
    CLI::App* cmd = recipe->add_subcommand(
        "validate", "Check recipe files (or every recipe below folders); exit 1 if any is invalid");
    cmd->add_option("PATH", *paths, "recipe files or folders")->required();
    cmd->add_flag("--json", *json, "print a JSON report instead of lines");
    cmd->callback([&ctx, paths, json] { ctx.exit_code.value = RunValidate(ctx, *paths, *json); });
  }
  {
    auto o = std::make_shared<ShowOptions>();
    CLI::App* cmd = recipe->add_subcommand(
        "show", "Show what a recipe runs on a platform: manifest, lifecycle, artifacts, config");
    cmd->add_option("FILE", o->file, "recipe file")->required();
    cmd->add_option(
        "--platform", o->platform,
        "device attributes, e.g. os=linux,architecture=aarch64 (default: this machine)");
    cmd->add_option("--root", o->root, "runtime root used for path variables")
        ->capture_default_str();
    cmd->add_option("--config", o->config,
                    "JSON object (or file) merged over DefaultConfiguration");
    cmd->add_option("--thing-name", o->thing_name, "value of {iot:thingName}");
    cmd->add_flag("--json", o->json, "print JSON");
    cmd->callback([&ctx, o] { ctx.exit_code.value = RunShow(ctx, *o); });
  }
  AddResolveCommand(*recipe, ctx);
}

}  // namespace lichen::cli
