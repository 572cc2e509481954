// `lichen recipe resolve`: the versions a local deployment would run.
#include <ostream>

#include "cli/commands.h"
#include "deploy/builtins.h"
#include "deploy/catalog.h"
#include "recipe/source_tree.h"
#include "semver/version.h"

namespace lichen::cli {
namespace {

struct ResolveOptions {
  std::string recipe_dir;
  std::vector<std::string> merge;   // NAME=VERSION, possibly comma-separated
  std::vector<std::string> remove;  // NAME, possibly comma-separated
  bool json = false;
};

std::vector<std::string> SplitCommas(const std::vector<std::string>& values) {
  std::vector<std::string> out;
  for (const auto& v : values) {
    size_t start = 0;
    while (start <= v.size()) {
      size_t comma = v.find(',', start);
      std::string item =
          v.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      if (!item.empty()) out.push_back(item);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  return out;
}

int RunResolve(Context& ctx, const ResolveOptions& o) {
  std::map<std::string, std::string> roots;
  for (const auto& m : SplitCommas(o.merge)) {
    auto eq = m.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == m.size()) {
      ctx.err << ctx.program << ": --merge '" << m
              << "' is not NAME=VERSION (e.g. com.example.App=1.0.0)\n";
      return kExitUsage;
    }
    const std::string name = m.substr(0, eq), version = m.substr(eq + 1);
    if (auto v = semver::Version::ParseStrict(version); !v) {
      ctx.err << ctx.program << ": --merge " << m << ": " << v.error().message << "\n";
      return kExitUsage;
    }
    if (!roots.emplace(name, "=" + version).second) {
      ctx.err << ctx.program << ": --merge names " << name << " twice\n";
      return kExitUsage;
    }
  }
  for (const auto& name : SplitCommas(o.remove)) {
    if (roots.count(name) != 0) {
      ctx.err << ctx.program << ": " << name << " is both merged and removed\n";
      return kExitUsage;
    }
    // Without a running daemon there are no current roots to remove from; the name is
    // still checked so a typo in a script does not pass silently.
  }
  if (roots.empty()) {
    ctx.err << ctx.program << ": nothing to resolve: give at least one --merge NAME=VERSION\n";
    return kExitUsage;
  }

  auto folder = deploy::LoadRecipeFolder(o.recipe_dir);
  for (const auto& p : folder.problems) ctx.err << "warning: skipped " << p << "\n";
  std::vector<std::string> duplicates;
  auto catalog = deploy::CatalogFromRecipes(folder.recipes, &duplicates);
  for (const auto& d : duplicates)
    ctx.err << "warning: " << d << " is defined twice; the first is used\n";

  auto resolved = deploy::ResolveWithBuiltins(roots, catalog);
  if (!resolved) {
    ctx.err << ctx.program << ": cannot resolve: " << resolved.error().message << "\n";
    return kExitFailure;
  }
  if (o.json) {
    recipe::Json out = {{"components", recipe::Json::array()}};
    for (const auto& [name, version] : resolved->resolution.versions) {
      out["components"].push_back({{"name", name},
                                   {"version", version.ToStringWithBuild()},
                                   {"builtin", false},
                                   {"root", roots.count(name) != 0}});
    }
    for (const auto& name : resolved->builtins) {
      out["components"].push_back({{"name", name},
                                   {"version", nullptr},
                                   {"builtin", true},
                                   {"root", roots.count(name) != 0}});
    }
    ctx.out << out.dump(2) << "\n";
    return kExitOk;
  }
  for (const auto& [name, version] : resolved->resolution.versions) {
    ctx.out << name << " " << version.ToStringWithBuild() << "\n";
  }
  for (const auto& name : resolved->builtins) ctx.out << name << " (built-in)\n";
  return kExitOk;
}

}  // namespace

void AddResolveCommand(CLI::App& recipe, Context& ctx) {
  auto o = std::make_shared<ResolveOptions>();
  CLI::App* cmd = recipe.add_subcommand(
      "resolve", "Show the component versions a local deployment would run, or why it cannot");
  cmd->add_option("-r,--recipeDir", o->recipe_dir, "folder of recipe files")
      ->required()
      ->check(CLI::ExistingDirectory);
  cmd->add_option("-m,--merge", o->merge, "root component NAME=VERSION (repeat or comma-separate)")
      ->required();
  cmd->add_option("--remove", o->remove,
                  "root component NAME to remove (repeat or comma-separate)");
  cmd->add_flag("--json", o->json, "print JSON");
  cmd->callback([&ctx, o] { ctx.exit_code.value = RunResolve(ctx, *o); });
}

}  // namespace lichen::cli
