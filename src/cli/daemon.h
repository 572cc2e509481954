// What the verbs that talk to a running nucleus share: finding the root, reading the
// CLI's IPC info the nucleus leaves there, connecting, and reporting errors.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "cli/commands.h"
#include "common/result.h"
#include "ipc/client.h"

namespace lichen::cli {

using Json = ipc::Json;

inline constexpr char kDefaultRoot[] = "/greengrass/v2";
inline constexpr char kRootEnv[] = "LICHEN_ROOT";
// Bounds on one connect and one call: a nucleus that hangs must not hang the CLI.
inline constexpr std::chrono::seconds kConnectTimeout{10};
inline constexpr std::chrono::seconds kCallTimeout{60};

// Adds `--root DIR` to a verb (the same value as the top-level --root).
void AddRootOption(CLI::App& cmd, Context& ctx);

// --root, else $LICHEN_ROOT, else /greengrass/v2.
std::string ResolveRoot(const Context& ctx);

struct CliIpcInfo {
  std::string socket_path;
  std::string auth_token;
};

// <root>/cli_ipc_info/lichen_cli
std::string CliIpcInfoPath(const std::string& root);
// Reads {"socket_path": ..., "cli_auth_token": ...}; errors name the file and what to do.
Result<CliIpcInfo> ReadCliIpcInfo(const std::string& root);

// Connects to the nucleus of the resolved root. On failure prints why and sets the exit
// code.
std::optional<ipc::IpcClient> ConnectOrReport(Context& ctx);

// Calls aws.greengrass#<operation>. On failure prints "<program>: <operation>: <message>"
// and sets the exit code.
std::optional<Json> CallOrReport(Context& ctx, ipc::IpcClient& client, std::string_view operation,
                                 const Json& request,
                                 std::chrono::milliseconds timeout = kCallTimeout);

// Prints "<program>: <message>" to stderr and sets the exit code.
void Report(Context& ctx, const std::string& message, int exit_code = kExitFailure);

// A field of a reply as text: strings as they are, other values as compact JSON,
// absent or null as "".
std::string Text(const Json& object, std::string_view key);

}  // namespace lichen::cli
