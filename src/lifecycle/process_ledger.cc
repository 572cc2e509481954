#include "lifecycle/process_ledger.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <vector>

namespace lichen::lifecycle {
namespace {

// Compaction rewrites the file with only live groups once it has this many lines.
constexpr size_t kCompactAfterLines = 4096;

std::string BootId() {
  std::ifstream in("/proc/sys/kernel/random/boot_id");
  std::string id;
  std::getline(in, id);
  return id;
}

struct ProcStat {
  pid_t pgrp = 0;
  unsigned long long start_time = 0;
};

std::optional<ProcStat> ReadStat(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return std::nullopt;
  // The command name may hold spaces and parentheses: fields start after the last ')'.
  auto close = line.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream fields(line.substr(close + 1));
  std::vector<std::string> f;
  std::string token;
  while (fields >> token && f.size() < 20) f.push_back(token);
  if (f.size() < 20) return std::nullopt;
  ProcStat out;
  out.pgrp = static_cast<pid_t>(std::strtol(f[2].c_str(), nullptr, 10));
  out.start_time = std::strtoull(f[19].c_str(), nullptr, 10);
  return out;
}

// Recorded groups of this boot (the earliest start time per group).
std::map<pid_t, unsigned long long> ReadEntries(const std::string& path, const std::string& boot) {
  std::map<pid_t, unsigned long long> out;
  std::ifstream in(path);
  std::string b;
  long long pgid = 0;
  unsigned long long start = 0;
  while (in >> b >> pgid >> start) {
    if (b != boot || pgid <= 1) continue;
    auto [it, inserted] = out.emplace(static_cast<pid_t>(pgid), start);
    if (!inserted && start < it->second) it->second = start;
  }
  return out;
}

// Live processes that belong to a recorded group, by group.
std::map<pid_t, std::vector<pid_t>> LiveMembers(const std::map<pid_t, unsigned long long>& groups) {
  std::map<pid_t, std::vector<pid_t>> out;
  DIR* dir = ::opendir("/proc");
  if (!dir) return out;
  const pid_t self = ::getpid();
  while (dirent* e = ::readdir(dir)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (!end || *end != '\0' || pid <= 1 || pid == self) continue;
    auto stat = ReadStat(static_cast<pid_t>(pid));
    if (!stat) continue;
    auto g = groups.find(stat->pgrp);
    if (g != groups.end() && stat->start_time >= g->second) {
      out[stat->pgrp].push_back(static_cast<pid_t>(pid));
    }
  }
  ::closedir(dir);
  return out;
}

}  // namespace

ProcessLedger::ProcessLedger(std::string path) : path_(std::move(path)), boot_id_(BootId()) {}

ProcessLedger::~ProcessLedger() {
  if (fd_ >= 0) ::close(fd_);
}

int ProcessLedger::KillLeftovers() {
  int killed = 0;
  auto entries = ReadEntries(path_, boot_id_);
  if (entries.empty()) {  // the usual case after a clean stop: no /proc scan needed
    Clear();
    return 0;
  }
  auto members = LiveMembers(entries);
  for (const auto& [pgid, pids] : members) {
    for (pid_t pid : pids) {
      if (::kill(pid, SIGKILL) == 0) ++killed;
    }
  }
  Clear();
  return killed;
}

void ProcessLedger::Record(pid_t pgid) {
  auto stat = ReadStat(pgid);
  if (!stat) return;  // already gone: nothing to stop later
  if (fd_ < 0) {
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd_ < 0) return;
  }
  const std::string line =
      boot_id_ + " " + std::to_string(pgid) + " " + std::to_string(stat->start_time) + "\n";
  if (::write(fd_, line.data(), line.size()) == static_cast<ssize_t>(line.size())) ++lines_;
  if (lines_ >= kCompactAfterLines) Compact();
}

void ProcessLedger::Clear() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  ::unlink(path_.c_str());
  lines_ = 0;
}

void ProcessLedger::Compact() {
  auto entries = ReadEntries(path_, boot_id_);
  auto live = LiveMembers(entries);
  const std::string tmp = path_ + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    for (const auto& [pgid, pids] : live) {
      out << boot_id_ << " " << pgid << " " << entries[pgid] << "\n";
    }
  }
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  ::rename(tmp.c_str(), path_.c_str());
  lines_ = live.size();
}

}  // namespace lichen::lifecycle
