// lichen: a Greengrass-compatible edge runtime. Entry point of the command line.
#include <cstdio>

#include "cli/commands.h"

#ifndef LICHEN_VERSION
#define LICHEN_VERSION "0.0.0"
#endif

int main(int argc, char** argv) {
  CLI::App app{"Lichen: a small Greengrass-compatible edge runtime", "lichen"};
  app.set_version_flag("--version", "lichen " LICHEN_VERSION);
  app.require_subcommand(1);
  app.fallthrough(false);

  lichen::cli::ExitCode exit_code;
  lichen::cli::AddRecipeCommands(app, exit_code);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);  // prints the message and a hint to stderr
    return lichen::cli::kExitUsage;
  }
  return exit_code.value;
}
