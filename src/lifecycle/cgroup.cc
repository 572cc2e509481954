#include "lifecycle/cgroup.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

namespace lichen::lifecycle {
namespace {

namespace fs = std::filesystem;

bool WriteText(const std::string& path, const std::string& text) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  return ok;
}

std::vector<pid_t> Procs(const std::string& path) {
  std::vector<pid_t> out;
  std::ifstream in(path + "/cgroup.procs");
  long pid = 0;
  while (in >> pid) out.push_back(static_cast<pid_t>(pid));
  return out;
}

}  // namespace

std::optional<std::string> WritableCgroupRoot() {
  std::ifstream mounts("/proc/mounts");
  std::string device, mount_point, type, rest;
  while (mounts >> device >> mount_point >> type && std::getline(mounts, rest)) {
    if (type != "cgroup2") continue;
    if (::access(mount_point.c_str(), W_OK) == 0) return mount_point;
  }
  return std::nullopt;
}

bool MakeCgroup(const std::string& path) {
  std::error_code ec;
  fs::create_directories(path, ec);
  return !ec && fs::exists(path + "/cgroup.procs", ec);
}

bool CgroupPopulated(const std::string& path) {
  std::ifstream in(path + "/cgroup.events");
  std::string key;
  int value = 0;
  while (in >> key >> value) {
    if (key == "populated") return value != 0;
  }
  return !Procs(path).empty();
}

void SignalCgroup(const std::string& path, int signal) {
  for (pid_t pid : Procs(path)) ::kill(pid, signal);
}

void KillCgroup(const std::string& path) {
  if (WriteText(path + "/cgroup.kill", "1")) return;
  // Before cgroup.kill: one by one, children first, a few rounds for forks in flight.
  for (int round = 0; round < 5 && CgroupPopulated(path); ++round) {
    std::error_code ec;
    for (fs::recursive_directory_iterator it(path, ec), end; !ec && it != end; it.increment(ec)) {
      if (it->is_directory()) SignalCgroup(it->path().string(), SIGKILL);
    }
    SignalCgroup(path, SIGKILL);
  }
}

bool RemoveCgroup(const std::string& path) { return ::rmdir(path.c_str()) == 0 || errno == ENOENT; }

int KillAndRemoveCgroupTree(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return 0;
  int populated = 0;
  std::vector<std::string> dirs;
  for (fs::recursive_directory_iterator it(path, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_directory()) dirs.push_back(it->path().string());
  }
  dirs.push_back(path);
  for (const auto& d : dirs) {
    if (!Procs(d).empty()) ++populated;
  }
  KillCgroup(path);
  // Deepest first; a killed process leaves its cgroup a moment after SIGKILL.
  std::sort(dirs.begin(), dirs.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  for (const auto& d : dirs) {
    for (int i = 0; i < 100 && !RemoveCgroup(d); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  return populated;
}

}  // namespace lichen::lifecycle
