// Whether a user may connect to a Unix socket (the Docker daemon's): asked before a
// deployment pulls images for a component, and before a component gets its own Docker
// socket (which must not hand Docker to a user who could not use it anyway).
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

#include "common/result.h"

namespace lichen::docker {

// Judged from stat(), as the kernel would: search permission on every directory above the
// socket (through symlinks too) and read-write on the socket, by the owner / group /
// others rule, with the groups the component runner gives the user (getgrouplist; `gid`
// replaces the primary group when given). Root always may. Errors:
// DOCKER_SOCKET_PERMISSION_DENIED naming the user, the socket or directory, and the fix
// ("add the user to group X"); DOCKER_DAEMON_UNAVAILABLE when the socket is missing.
Result<void> UserMayUseSocket(const std::string& socket, uid_t uid,
                              std::optional<gid_t> gid = std::nullopt);

// "nobody", or "uid N" when there is no passwd entry.
std::string UserNameOf(uid_t uid);

}  // namespace lichen::docker
