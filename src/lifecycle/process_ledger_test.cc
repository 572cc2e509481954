#include "lifecycle/process_ledger.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

namespace lichen::lifecycle {
namespace {

// A child leading its own process group, with a grandchild in the same group; returns
// once both exist.
pid_t StartGroup() {
  int ready[2];
  if (pipe(ready) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    close(ready[0]);
    if (fork() == 0) {
      execlp("sleep", "sleep", "30", nullptr);
      _exit(127);
    }
    ssize_t ignored = write(ready[1], "x", 1);
    (void)ignored;
    close(ready[1]);
    execlp("sleep", "sleep", "30", nullptr);
    _exit(127);
  }
  setpgid(pid, pid);
  close(ready[1]);
  char byte;
  ssize_t ignored = read(ready[0], &byte, 1);
  (void)ignored;
  close(ready[0]);
  return pid;
}

bool GroupAlive(pid_t pgid) { return kill(-pgid, 0) == 0; }

// Waits for the leader to exit (it is our child); bounded.
bool Reaped(pid_t pid) {
  for (int i = 0; i < 200; ++i) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

class ProcessLedgerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("ledger-" + std::to_string(getpid()) + "-" + std::to_string(rand()));
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "processes").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
  std::string path_;
};

TEST_F(ProcessLedgerTest, ANewRuntimeKillsTheGroupsAnEarlierOneRecorded) {
  pid_t leader = StartGroup();
  {
    ProcessLedger crashed(path_);
    crashed.Record(leader);
  }  // the runtime "crashed": nothing stopped the group
  ASSERT_TRUE(GroupAlive(leader));
  ProcessLedger restarted(path_);
  EXPECT_GE(restarted.KillLeftovers(), 1);
  EXPECT_TRUE(Reaped(leader));
  // The grandchild was re-parented (to init or a subreaper); it must be gone or dying.
  for (int i = 0; i < 200 && GroupAlive(leader); ++i) {
    // When an earlier test made this process a subreaper the grandchild is ours to reap.
    while (waitpid(-1, nullptr, WNOHANG) > 0) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_FALSE(GroupAlive(leader));
  EXPECT_FALSE(std::filesystem::exists(path_));
}

TEST_F(ProcessLedgerTest, GroupsFromAnotherBootOrUnrecordedAreLeftAlone) {
  pid_t leader = StartGroup();
  {
    std::ofstream out(path_);
    out << "00000000-not-this-boot " << leader << " 0\n";
  }
  ProcessLedger ledger(path_);
  EXPECT_EQ(ledger.KillLeftovers(), 0);
  EXPECT_TRUE(GroupAlive(leader));
  kill(-leader, SIGKILL);
  EXPECT_TRUE(Reaped(leader));
}

TEST_F(ProcessLedgerTest, AGroupStartedAfterTheRecordedLeaderDiedIsNotKilled) {
  // A recorded start time later than the live process's means the id was reused.
  pid_t leader = StartGroup();
  std::string boot;
  {
    std::ifstream in("/proc/sys/kernel/random/boot_id");
    std::getline(in, boot);
  }
  {
    std::ofstream out(path_);
    out << boot << " " << leader << " 18446744073709551000\n";
  }
  ProcessLedger ledger(path_);
  EXPECT_EQ(ledger.KillLeftovers(), 0);
  EXPECT_TRUE(GroupAlive(leader));
  kill(-leader, SIGKILL);
  EXPECT_TRUE(Reaped(leader));
}

TEST_F(ProcessLedgerTest, ClearEmptiesTheLedger) {
  pid_t leader = StartGroup();
  ProcessLedger ledger(path_);
  ledger.Record(leader);
  ledger.Clear();
  ProcessLedger next(path_);
  EXPECT_EQ(next.KillLeftovers(), 0);
  EXPECT_TRUE(GroupAlive(leader));
  kill(-leader, SIGKILL);
  EXPECT_TRUE(Reaped(leader));
}

}  // namespace
}  // namespace lichen::lifecycle
