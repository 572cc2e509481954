// cgroup v2 containment for component processes: every lifecycle process runs in a
// cgroup of its own under its component's, so stopping it reaches every descendant,
// also those that left the process group (setsid, double fork). Without a writable
// cgroup v2 hierarchy Lichen falls back to process groups alone.
#pragma once

#include <optional>
#include <string>

namespace lichen::lifecycle {

// Where cgroup2 is mounted (/sys/fs/cgroup or the hybrid /sys/fs/cgroup/unified), if
// this process may create cgroups there.
std::optional<std::string> WritableCgroupRoot();

// Creates `path` and its missing parents; false when cgroups cannot be used there.
bool MakeCgroup(const std::string& path);

// Whether any process is still in the cgroup or below it.
bool CgroupPopulated(const std::string& path);

// Sends `signal` to every process in the cgroup (not its children cgroups).
void SignalCgroup(const std::string& path, int signal);

// SIGKILLs everything in the cgroup and below (cgroup.kill, or one by one on kernels
// before 5.14).
void KillCgroup(const std::string& path);

// Kills everything below `path` and removes the empty cgroups, deepest first (what a
// crashed runtime left). Returns how many cgroups were not empty.
int KillAndRemoveCgroupTree(const std::string& path);

// Removes an empty cgroup; false while processes remain.
bool RemoveCgroup(const std::string& path);

}  // namespace lichen::lifecycle
