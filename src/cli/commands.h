// The `lichen` command line: one function per verb group registers its
// subcommands, so adding a verb is adding a row (see main.cc).
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace lichen::cli {

// Set by a subcommand's callback; main returns it.
struct ExitCode {
  int value = 0;
};

// Exit codes shared by every verb.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // the input is bad or the operation failed
inline constexpr int kExitUsage = 2;    // the command line is wrong

void AddRecipeCommands(CLI::App& app, ExitCode& exit_code);
// Registers `resolve` under the `recipe` subcommand.
void AddResolveCommand(CLI::App& recipe, ExitCode& exit_code);

}  // namespace lichen::cli
