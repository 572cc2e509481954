// A file listing the process groups the runtime started, so that the runtime started
// again after a crash (kill -9, OOM kill) can stop what its predecessor left running:
// without it those components would run twice, and their old processes forever.
//
// Each line is "<boot id> <pgid> <start time>" (start time in clock ticks since boot,
// from /proc/<pid>/stat). A recorded group is killed only when the machine has not
// rebooted since and its processes started no earlier than the recorded leader, so a
// reused process id is never hit. Lines are appended without fsync: after a power
// loss every process is gone anyway, and after a crash of the runtime alone the page
// cache still holds them.
#pragma once

#include <sys/types.h>

#include <string>

namespace lichen::lifecycle {

class ProcessLedger {
 public:
  explicit ProcessLedger(std::string path);
  ~ProcessLedger();
  ProcessLedger(const ProcessLedger&) = delete;
  ProcessLedger& operator=(const ProcessLedger&) = delete;

  // Kills (SIGKILL) every process of every recorded group that still runs, then
  // empties the ledger. Returns the number of processes killed.
  int KillLeftovers();
  // Records a group leader that was just started.
  void Record(pid_t pgid);
  // Empties the ledger (after a clean stop, nothing is left).
  void Clear();

 private:
  void Compact();

  std::string path_;
  std::string boot_id_;
  int fd_ = -1;
  size_t lines_ = 0;
};

}  // namespace lichen::lifecycle
