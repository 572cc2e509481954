// The `lichen` command line: one function per verb group registers its
// subcommands, so adding a verb is adding a row (see cli.cc).
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <ostream>
#include <string>

namespace lichen::cli {

// Set by a subcommand's callback; RunCli returns it.
struct ExitCode {
  int value = 0;
};

// Exit codes shared by every verb.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // the input is bad or the operation failed
inline constexpr int kExitUsage = 2;    // the command line is wrong

// What every verb shares for one run of the command line.
struct Context {
  std::ostream& out;
  std::ostream& err;
  std::string program;  // "lichen" or "greengrass-cli": the prefix of error lines
  ExitCode exit_code;
  // --root as given (on the verb or before it); empty means LICHEN_ROOT, else the
  // default root.
  std::string root_flag;
};

// Runs the command line; argv[0]'s basename picks the name ("greengrass-cli" is
// accepted as well as "lichen", with the same verbs). Returns the exit code.
int RunCli(int argc, const char* const* argv, std::ostream& out, std::ostream& err);

void AddRecipeCommands(CLI::App& app, Context& ctx);
// Registers `resolve` under the `recipe` subcommand.
void AddResolveCommand(CLI::App& recipe, Context& ctx);
// The Greengrass CLI verbs: `deployment`, `component` (through the nucleus's IPC
// socket) and `logs` (reads the files directly).
void AddDeploymentCommands(CLI::App& app, Context& ctx);
void AddComponentCommands(CLI::App& app, Context& ctx);
void AddLogsCommands(CLI::App& app, Context& ctx);
// `nucleus`: runs the daemon (only when built with the nucleus library).
void AddNucleusCommand(CLI::App& app, Context& ctx);

// Ends a running `logs get --follow` after its next read, as SIGINT/SIGTERM do.
void RequestFollowStop();

}  // namespace lichen::cli
