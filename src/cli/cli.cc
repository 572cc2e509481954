// The command line as a function, so tests can run any verb in-process.
#include <filesystem>
#include <string_view>
#include <vector>

#include "cli/commands.h"

#ifndef LICHEN_VERSION
#define LICHEN_VERSION "0.0.0"
#endif

namespace lichen::cli {
namespace {

// The Greengrass CLI (picocli) has multi-letter short options such as `-ld`, which CLI11
// cannot declare, and `--follow true|false` takes a value. Rewrite them to the long forms.
std::vector<std::string> GreengrassAliases(int argc, const char* const* argv) {
  std::vector<std::string> out;
  for (int i = 0; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (i == 0) {
      out.emplace_back(arg);
      continue;
    }
    if (arg == "--") {  // everything after it is an argument, as written
      for (; i < argc; ++i) out.emplace_back(argv[i]);
      break;
    }
    if (arg == "-ld") {
      out.emplace_back("--log-dir");
    } else if (arg == "-lf") {
      out.emplace_back("--log-file");
    } else if (arg == "-fol" || arg == "--follow") {
      if (i + 1 < argc &&
          (std::string_view(argv[i + 1]) == "true" || std::string_view(argv[i + 1]) == "false")) {
        out.emplace_back(std::string("--follow=") + argv[++i]);
      } else {
        out.emplace_back("--follow");
      }
    } else {
      out.emplace_back(arg);
    }
  }
  return out;
}

}  // namespace

int RunCli(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
  std::string program = argc > 0 ? std::filesystem::path(argv[0]).filename().string() : "";
  if (program != "greengrass-cli") program = "lichen";
  CLI::App app{program == "lichen" ? "Lichen: a small Greengrass-compatible edge runtime"
                                   : "Lichen's Greengrass CLI: local deployments, components, logs",
               program};
  app.set_version_flag("--version", "lichen " LICHEN_VERSION);
  app.require_subcommand(1);
  app.fallthrough(false);

  Context ctx{out, err, program, {}, {}};
  // Before the verb, as the Greengrass CLI takes --ggcRootPath; each daemon verb takes
  // --root too.
  app.add_option("--root,--ggcRootPath", ctx.root_flag,
                 "the nucleus's root folder (default: $LICHEN_ROOT, else /greengrass/v2)");
  AddDeploymentCommands(app, ctx);
  AddComponentCommands(app, ctx);
  AddLogsCommands(app, ctx);
  AddNucleusCommand(app, ctx);
  AddRecipeCommands(app, ctx);

  const std::vector<std::string> args = GreengrassAliases(argc, argv);
  std::vector<const char*> cargs;
  cargs.reserve(args.size());
  for (const auto& a : args) cargs.push_back(a.c_str());
  try {
    app.parse(static_cast<int>(cargs.size()), cargs.data());
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e, out, err);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e, out, err);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e, out, err);
  } catch (const CLI::ParseError& e) {
    app.exit(e, out, err);  // prints the message and a hint
    return kExitUsage;
  }
  return ctx.exit_code.value;
}

}  // namespace lichen::cli
