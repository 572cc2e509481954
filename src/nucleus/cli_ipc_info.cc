#include "nucleus/cli_ipc_info.h"

#include <fcntl.h>
#include <grp.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "recipe/source_tree.h"

namespace lichen::nucleus {

std::string CliIpcInfoPath(const std::string& root) { return root + "/cli_ipc_info/lichen_cli"; }

Result<CliIpcInfo> ReadCliIpcInfo(const std::string& root) {
  const std::string path = CliIpcInfoPath(root);
  std::ifstream in(path);
  if (!in) {
    return MakeError(path + ": " + std::strerror(errno) +
                     (errno == EACCES ? " (run as root or as a member of the CLI group)"
                                      : " (is the nucleus running with --root " + root + "?)"));
  }
  std::stringstream buf;
  buf << in.rdbuf();
  auto json = recipe::Json::parse(buf.str(), nullptr, false);
  if (json.is_discarded() || !json.is_object() || !json.contains("socket_path") ||
      !json.contains("cli_auth_token") || !json["socket_path"].is_string() ||
      !json["cli_auth_token"].is_string()) {
    return MakeError(path + ": not a CLI connection file");
  }
  return CliIpcInfo{json["socket_path"].get<std::string>(),
                    json["cli_auth_token"].get<std::string>()};
}

Result<void> WriteCliIpcInfo(const std::string& root, const CliIpcInfo& info,
                             const std::string& group) {
  const std::string path = CliIpcInfoPath(root);
  std::error_code ec;
  std::filesystem::create_directories(root + "/cli_ipc_info", ec);
  if (ec) return MakeError(root + "/cli_ipc_info: " + ec.message());
  const std::string tmp = path + ".tmp";
  ::unlink(tmp.c_str());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
  if (fd < 0) return MakeError(tmp + ": " + std::strerror(errno));
  if (!group.empty()) {
    struct group* g = ::getgrnam(group.c_str());
    if (!g || ::fchown(fd, static_cast<uid_t>(-1), g->gr_gid) != 0) {
      ::close(fd);
      ::unlink(tmp.c_str());
      return MakeError("lichen.cliGroup: cannot give " + path + " to group '" + group + "'");
    }
  }
  const std::string text =
      recipe::Json{{"socket_path", info.socket_path}, {"cli_auth_token", info.auth_token}}.dump();
  // No fsync: a new token is written at every start, so a lost file costs nothing.
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ok = ::close(fd) == 0 && ok;
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return MakeError(path + ": cannot write");
  }
  return {};
}

}  // namespace lichen::nucleus
