#include "docker/socket_access.h"

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <set>
#include <vector>

#include "docker/engine.h"

namespace lichen::docker {
namespace {

namespace fs = std::filesystem;

std::string Mode(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

struct User {
  std::string name;  // "nobody", or "uid N" without a passwd entry
  gid_t gid = 0;
  std::vector<gid_t> groups;  // as the component runner sets them: getgrouplist(name, gid)
};

std::string UserName(uid_t uid) {
  std::vector<char> buf(16384);
  struct passwd pw {};
  struct passwd* found = nullptr;
  if (::getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) == 0 && found != nullptr) {
    return pw.pw_name;
  }
  return "uid " + std::to_string(uid);
}

std::string GroupName(gid_t gid) {
  std::vector<char> buf(16384);
  struct group gr {};
  struct group* found = nullptr;
  if (::getgrgid_r(gid, &gr, buf.data(), buf.size(), &found) == 0 && found != nullptr) {
    return gr.gr_name;
  }
  return "gid " + std::to_string(gid);
}

User LookUpUser(uid_t uid, std::optional<gid_t> gid) {
  User u;
  std::vector<char> buf(16384);
  struct passwd pw {};
  struct passwd* found = nullptr;
  if (::getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) != 0 || found == nullptr) {
    // A uid without a passwd entry runs with its own number as gid and no supplementary
    // groups (as the component runner does).
    u.name = "uid " + std::to_string(uid);
    u.gid = gid.value_or(static_cast<gid_t>(uid));
    u.groups = {u.gid};
    return u;
  }
  u.name = pw.pw_name;
  u.gid = gid.value_or(pw.pw_gid);
  int n = 64;
  u.groups.resize(static_cast<size_t>(n));
  if (::getgrouplist(u.name.c_str(), u.gid, u.groups.data(), &n) == -1 && n > 64) {
    u.groups.resize(static_cast<size_t>(n));
    if (::getgrouplist(u.name.c_str(), u.gid, u.groups.data(), &n) == -1) n = 0;
  }
  u.groups.resize(static_cast<size_t>(std::max(n, 0)));
  if (std::find(u.groups.begin(), u.groups.end(), u.gid) == u.groups.end()) {
    u.groups.push_back(u.gid);
  }
  return u;
}

// The kernel's rule: the owner's bits if the user owns the file, else the group's if the
// user is in its group, else the others'. `want` is in the others' position (rw = 6).
bool Permits(const struct stat& st, uid_t uid, const User& user, unsigned want) {
  const auto mode = static_cast<unsigned>(st.st_mode);
  if (st.st_uid == uid) return ((mode >> 6) & want) == want;
  if (std::find(user.groups.begin(), user.groups.end(), st.st_gid) != user.groups.end()) {
    return ((mode >> 3) & want) == want;
  }
  return (mode & want) == want;
}

std::string Describe(const struct stat& st) {
  return "owner " + UserName(st.st_uid) + ", group " + GroupName(st.st_gid) + ", mode " +
         Mode(st.st_mode);
}

}  // namespace

Result<void> UserMayUseSocket(const std::string& socket, uid_t uid, std::optional<gid_t> gid) {
  if (uid == 0) return {};
  const User user = LookUpUser(uid, gid);
  const std::string who = "user " + user.name + " (uid " + std::to_string(uid) + ")";
  // Connecting needs search permission on every directory on the way, through symlinks
  // (/var/run -> /run) too.
  std::error_code ec;
  const fs::path given = fs::absolute(socket, ec);
  std::set<fs::path> dirs;
  for (const fs::path& p : {given, fs::weakly_canonical(given, ec)}) {
    for (fs::path d = p.parent_path(); !d.empty(); d = d.parent_path()) {
      dirs.insert(d);
      if (d == d.root_path()) break;
    }
  }
  for (const fs::path& d : dirs) {
    struct stat st {};
    if (::stat(d.c_str(), &st) != 0) continue;  // the socket's own stat() reports it
    if (!Permits(st, uid, user, 1)) {
      return MakeError(kDockerPermissionDenied,
                       who + " cannot reach the Docker socket " + socket + ": the directory " +
                           d.string() + " (" + Describe(st) +
                           ") is not searchable for the user; let the user search it or run "
                           "the component as another user");
    }
  }
  struct stat st {};
  if (::stat(socket.c_str(), &st) != 0) {
    return MakeError(
        kDockerDaemonUnavailable,
        "the Docker socket " + socket + " cannot be examined (" + std::strerror(errno) + ")");
  }
  if (!Permits(st, uid, user, 6)) {
    const std::string group = GroupName(st.st_gid);
    return MakeError(kDockerPermissionDenied,
                     who + " may not use the Docker socket " + socket + " (" + Describe(st) +
                         "): add the user to group " + group + " (usermod -aG " + group + " " +
                         user.name + "), or run the component as a member of " + group);
  }
  return {};
}

std::string UserNameOf(uid_t uid) { return UserName(uid); }

}  // namespace lichen::docker
