#include "lifecycle/process.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "lifecycle/cgroup.h"

namespace lichen::lifecycle {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// Every wait in these tests is bounded by running the loop until a condition holds
// or a deadline passes; the deadline is a failure, never a pass.
class ProcessTest : public ::testing::Test {
 protected:
  ProcessSpec Spec(const std::string& script) {
    ProcessSpec s;
    s.script = script;
    s.env = {{"PATH", "/usr/local/bin:/usr/bin:/bin"}, {"GREETING", "hello"}};
    s.working_dir = "/tmp";
    return s;
  }
  template <typename Pred>
  bool RunUntil(Pred done, std::chrono::milliseconds limit = 10s) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      io_.restart();
      io_.run_for(20ms);
    }
    return done();
  }
  std::unique_ptr<Process> Start(const ProcessSpec& spec) {
    auto p = Process::Start(
        io_, spec,
        [this](OutputStream s, std::string_view line) {
          (s == OutputStream::kStdout ? out_ : err_).emplace_back(line);
        },
        [this](int code) { code_ = code; });
    EXPECT_TRUE(p) << (p ? "" : p.error().message);
    return p ? std::move(*p) : nullptr;
  }
  static bool Alive(pid_t pid) { return ::kill(pid, 0) == 0; }

  asio::io_context io_;
  std::vector<std::string> out_, err_;
  std::optional<int> code_;
};

TEST_F(ProcessTest, DeliversLinesAndExitCode) {
  auto p = Start(Spec("echo one; echo two >&2; printf 'no newline'; exit 3"));
  ASSERT_TRUE(p);
  ASSERT_TRUE(RunUntil([&] { return code_.has_value(); }));
  EXPECT_EQ(*code_, 3);
  EXPECT_EQ(out_, (std::vector<std::string>{"one", "no newline"}));
  EXPECT_EQ(err_, (std::vector<std::string>{"two"}));
}

TEST_F(ProcessTest, UsesTheGivenEnvironmentAndDirectory) {
  auto spec = Spec("echo \"$GREETING\"; pwd; echo \"${HOME:-unset}\"");
  spec.working_dir = fs::temp_directory_path().string();
  auto p = Start(spec);
  ASSERT_TRUE(RunUntil([&] { return code_.has_value(); }));
  EXPECT_EQ(*code_, 0);
  ASSERT_EQ(out_.size(), 3u);
  EXPECT_EQ(out_[0], "hello");
  EXPECT_EQ(out_[1], fs::canonical(spec.working_dir).string());
  EXPECT_EQ(out_[2], "unset");  // nothing leaks from the runtime's own environment
}

TEST_F(ProcessTest, ReportsStartFailuresClearly) {
  auto spec = Spec("true");
  spec.working_dir = "/nonexistent/dir";
  auto p = Process::Start(io_, spec, nullptr, nullptr);
  ASSERT_FALSE(p);
  EXPECT_NE(p.error().message.find("/nonexistent/dir"), std::string::npos);

  spec = Spec("true");
  spec.shell = "no-such-shell";
  p = Process::Start(io_, spec, nullptr, nullptr);
  ASSERT_FALSE(p);
  EXPECT_NE(p.error().message.find("no-such-shell"), std::string::npos);
}

TEST_F(ProcessTest, LongLinesAreSplitNotBuffered) {
  auto p = Start(Spec("head -c 200000 /dev/zero | tr '\\0' a; echo"));
  ASSERT_TRUE(RunUntil([&] { return code_.has_value(); }));
  size_t total = 0;
  for (const auto& l : out_) {
    EXPECT_LE(l.size(), kMaxLineBytes);
    total += l.size();
  }
  EXPECT_EQ(total, 200000u);
}

TEST_F(ProcessTest, StopKillsTheWholeGroupIncludingBackgroundChildren) {
  // The shell starts a background sleeper, prints its pid, and ignores SIGTERM itself,
  // so only the SIGKILL escalation can end it.
  auto p = Start(Spec("trap '' TERM; sleep 300 & echo $!; while true; do sleep 1; done"));
  ASSERT_TRUE(RunUntil([&] { return !out_.empty(); }));
  const pid_t child = std::stoi(out_[0]);
  ASSERT_TRUE(Alive(child));
  p->Stop(300ms);
  ASSERT_TRUE(RunUntil([&] { return code_.has_value() && !p->GroupAlive(); }));
  EXPECT_EQ(*code_, 128 + SIGKILL);
  EXPECT_FALSE(Alive(child));
}

TEST_F(ProcessTest, WithACgroupStopReachesProcessesThatLeftTheGroup) {
  auto root = WritableCgroupRoot();
  if (!root) GTEST_SKIP() << "no writable cgroup v2 hierarchy here";
  const std::string parent = *root + "/lichen-test-" + std::to_string(::getpid());
  ASSERT_TRUE(MakeCgroup(parent));
  auto spec = Spec("setsid sh -c 'echo $$; exec sleep 300' & wait");
  spec.cgroup_parent = parent;
  auto p = Start(spec);
  ASSERT_TRUE(RunUntil([&] { return !out_.empty(); }));
  const pid_t escaped = std::stoi(out_[0]);
  ASSERT_TRUE(Alive(escaped));
  ASSERT_NE(::getpgid(escaped), p->pid());  // out of the group: only the cgroup holds it
  p->Stop(300ms);
  ASSERT_TRUE(RunUntil([&] { return code_.has_value() && !p->GroupAlive(); }));
  EXPECT_TRUE(RunUntil([&] { return !Alive(escaped); }));
  p.reset();
  EXPECT_TRUE(RunUntil(
      [&] { return KillAndRemoveCgroupTree(parent) == 0 && !std::filesystem::exists(parent); }));
}

TEST_F(ProcessTest, StopIsGracefulWhenTheScriptCooperates) {
  auto p = Start(Spec("trap 'echo bye; exit 0' TERM; echo ready; while true; do sleep 0.05; done"));
  ASSERT_TRUE(RunUntil([&] { return !out_.empty(); }));
  p->Stop(5s);
  ASSERT_TRUE(RunUntil([&] { return code_.has_value(); }));
  EXPECT_EQ(*code_, 0);
  EXPECT_EQ(out_.back(), "bye");
}

TEST_F(ProcessTest, BackgroundChildrenDoNotDelayTheExitReport) {
  // The shell exits at once but leaves a child holding stdout open.
  auto p = Start(Spec("sleep 300 & echo started"));
  ASSERT_TRUE(RunUntil([&] { return code_.has_value(); }, 5s));
  EXPECT_EQ(*code_, 0);
  EXPECT_TRUE(p->GroupAlive());  // the background child is still there...
  const pid_t pgid = p->pid();
  p.reset();  // ...until the Process goes away
  EXPECT_TRUE(RunUntil([&] { return ::kill(-pgid, 0) != 0; }, 5s));
}

TEST_F(ProcessTest, DestroyingAProcessLeavesNothingBehind) {
  auto p = Start(Spec("sleep 300 & sleep 300"));
  ASSERT_TRUE(p);
  const pid_t pgid = p->pid();
  p.reset();
  EXPECT_TRUE(RunUntil([&] { return ::kill(-pgid, 0) != 0; }, 5s));
}

TEST_F(ProcessTest, RunsAsAnotherUser) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to switch users";
  auto nobody = LookupRunAs("nobody");
  ASSERT_TRUE(nobody) << nobody.error().message;
  auto spec = Spec("id -u; id -g");
  spec.run_as = *nobody;
  auto p = Start(spec);
  ASSERT_TRUE(RunUntil([&] { return code_.has_value(); }));
  ASSERT_EQ(out_.size(), 2u);
  EXPECT_EQ(out_[0], std::to_string(nobody->uid));
  EXPECT_EQ(out_[1], std::to_string(nobody->gid));
}

TEST(LookupRunAs, NamesAndNumbers) {
  auto root = LookupRunAs("root:root");
  ASSERT_TRUE(root);
  EXPECT_EQ(root->uid, 0u);
  EXPECT_EQ(root->gid, 0u);
  auto numeric = LookupRunAs("12345:12346");
  ASSERT_TRUE(numeric);
  EXPECT_EQ(numeric->uid, 12345u);
  EXPECT_EQ(numeric->gid, 12346u);
  auto missing = LookupRunAs("no_such_user_xyz");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("no_such_user_xyz"), std::string::npos);
  EXPECT_FALSE(LookupRunAs("root:no_such_group_xyz"));
  EXPECT_FALSE(LookupRunAs(":root"));
}

}  // namespace
}  // namespace lichen::lifecycle
