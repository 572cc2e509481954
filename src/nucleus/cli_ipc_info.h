// Where the daemon leaves what its CLI needs to reach it: the socket path and an auth
// token, in <root>/cli_ipc_info/lichen_cli (JSON {"socket_path": ..., "cli_auth_token":
// ...}), mode 0640 so only root and the configured group can read it. The Greengrass
// CLI keeps the same two keys in the same folder.
#pragma once
#include <string>

#include "common/result.h"

namespace lichen::nucleus {

struct CliIpcInfo {
  std::string socket_path;
  std::string auth_token;
};

std::string CliIpcInfoPath(const std::string& root);
Result<CliIpcInfo> ReadCliIpcInfo(const std::string& root);

}  // namespace lichen::nucleus

namespace lichen::nucleus {

// Written by the daemon at start (atomically; mode 0640, group `group` when given).
Result<void> WriteCliIpcInfo(const std::string& root, const CliIpcInfo& info,
                             const std::string& group);

}  // namespace lichen::nucleus
