#include "cli/daemon.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "ipc/rpc_connection.h"

namespace lichen::cli {

namespace fs = std::filesystem;

void AddRootOption(CLI::App& cmd, Context& ctx) {
  cmd.add_option("--root", ctx.root_flag,
                 std::string("the nucleus's root folder (default: $") + kRootEnv + ", else " +
                     kDefaultRoot + ")");
}

std::string ResolveRoot(const Context& ctx) {
  if (!ctx.root_flag.empty()) return ctx.root_flag;
  const char* env = std::getenv(kRootEnv);
  if (env != nullptr && *env != '\0') return env;
  return kDefaultRoot;
}

std::string CliIpcInfoPath(const std::string& root) {
  return (fs::path(root) / "cli_ipc_info" / "lichen_cli").string();
}

Result<CliIpcInfo> ReadCliIpcInfo(const std::string& root) {
  const std::string path = CliIpcInfoPath(root);
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    const int err = errno;
    if (err == EACCES || err == EPERM) {
      return MakeError("cannot read " + path +
                       ": permission denied: run as root or as a member of the group the "
                       "nucleus gives CLI access to");
    }
    std::error_code ec;
    if (err == ENOENT && !fs::is_directory(root, ec)) {
      return MakeError("no nucleus root at " + root + ": give its root with --root or " + kRootEnv);
    }
    if (err == ENOENT) {
      return MakeError("cannot read " + path + ": no such file (is the nucleus running with root " +
                       root + "?)");
    }
    return MakeError("cannot read " + path + ": " + std::strerror(err));
  }
  std::string text;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof(buf), f)) > 0;) text.append(buf, n);
  const bool read_error = std::ferror(f) != 0;
  std::fclose(f);
  if (read_error) return MakeError("cannot read " + path);

  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  auto field = [&](const char* key) -> std::string {
    if (!j.is_object()) return "";
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : "";
  };
  CliIpcInfo info{field("socket_path"), field("cli_auth_token")};
  if (info.socket_path.empty() || info.auth_token.empty()) {
    return MakeError(path +
                     " is not the nucleus's CLI IPC info (a JSON object with socket_path and "
                     "cli_auth_token); restarting the nucleus writes it again");
  }
  return info;
}

void Report(Context& ctx, const std::string& message, int exit_code) {
  ctx.err << ctx.program << ": " << message << "\n";
  ctx.exit_code.value = exit_code;
}

std::optional<ipc::IpcClient> ConnectOrReport(Context& ctx) {
  auto info = ReadCliIpcInfo(ResolveRoot(ctx));
  if (!info) {
    Report(ctx, info.error().message);
    return std::nullopt;
  }
  ipc::IpcClient client;
  if (auto connected = client.Connect(info->socket_path, info->auth_token, kConnectTimeout);
      !connected) {
    Report(ctx, connected.error().message);
    return std::nullopt;
  }
  return client;
}

std::optional<Json> CallOrReport(Context& ctx, ipc::IpcClient& client, std::string_view operation,
                                 const Json& request, std::chrono::milliseconds timeout) {
  auto reply =
      client.Call(std::string(ipc::kShapePrefix) + std::string(operation), request, timeout);
  if (!reply) {
    Report(ctx, std::string(operation) + ": " + reply.error().message);
    return std::nullopt;
  }
  if (!reply->is_object()) {
    Report(ctx, std::string(operation) + ": the reply is not a JSON object");
    return std::nullopt;
  }
  return std::move(*reply);
}

std::string Text(const Json& object, std::string_view key) {
  if (!object.is_object()) return "";
  auto it = object.find(std::string(key));
  if (it == object.end() || it->is_null()) return "";
  return it->is_string() ? it->get<std::string>() : it->dump();
}

}  // namespace lichen::cli
