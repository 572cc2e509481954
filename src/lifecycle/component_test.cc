#include "lifecycle/component.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>

#include <filesystem>
#include <fstream>

#include "recipe/diagnostic.h"

namespace lichen::lifecycle {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

recipe::Lifecycle LifecycleFrom(const std::string& json) {
  std::vector<recipe::Diagnostic> diags;
  recipe::Reporter reporter(nullptr, &diags);
  auto lc = recipe::BuildLifecycle(recipe::Json::parse(json), "Lifecycle", reporter);
  EXPECT_TRUE(lc) << json;
  return lc ? *lc : recipe::Lifecycle{};
}

class Recorder : public ComponentObserver {
 public:
  void OnStateChange(Component&, State, State to, const std::string& reason) override {
    states.push_back(to);
    reasons.push_back(reason);
  }
  void OnOutput(Component&, OutputStream, std::string_view line) override {
    lines.emplace_back(line);
  }
  void OnEvent(Component&, const std::string& message) override { events.push_back(message); }
  void ReleaseExternal(Component& c, Release when, std::function<void()> done) override {
    release_states.push_back(c.state());
    release_whens.push_back(when);
    if (defer_releases > 0) {
      --defer_releases;
      deferred.push_back(std::move(done));  // the test calls it later, as a slow cleanup would
      return;
    }
    done();
  }
  int defer_releases = 0;
  std::vector<std::function<void()>> deferred;
  std::vector<State> release_states;  // the component's state at each ReleaseExternal
  std::vector<Release> release_whens;
  std::vector<State> states;
  std::vector<std::string> reasons, lines, events;
};

class ComponentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // As the runtime does: orphans come back to us and are reaped at once.
    ::prctl(PR_SET_CHILD_SUBREAPER, 1);
    dir_ = fs::temp_directory_path() /
           ("lichen-component-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override {
    component_.reset();
    fs::remove_all(dir_);
  }
  Component& Make(const std::string& lifecycle_json, std::function<bool()> deps = nullptr) {
    ComponentSpec spec;
    spec.name = "com.example.Test";
    spec.lifecycle = LifecycleFrom(lifecycle_json);
    spec.env = {{"PATH", "/usr/local/bin:/usr/bin:/bin"}, {"LEVEL", "base"}, {"KEEP", "base"}};
    spec.work_dir = dir_.string();
    spec.stop_grace = 500ms;
    spec.backoff.base = 0ms;
    spec_override_(spec);
    component_ = std::make_unique<Component>(io_, spec, rec_, std::move(deps));
    return *component_;
  }
  template <typename Pred>
  bool RunUntil(Pred done, std::chrono::milliseconds limit = 15s) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      io_.restart();
      io_.run_for(10ms);
    }
    return done();
  }
  bool Reaches(State s, std::chrono::milliseconds limit = 15s) {
    return RunUntil([&] { return component_->state() == s; }, limit);
  }
  // Transient states (ERRORED lasts only while Recover runs) are checked in the record.
  bool Passed(State s, const std::string& reason_words, std::chrono::milliseconds limit = 15s) {
    return RunUntil(
        [&] {
          for (size_t i = 0; i < rec_.states.size(); ++i) {
            if (rec_.states[i] == s && rec_.reasons[i].find(reason_words) != std::string::npos)
              return true;
          }
          return false;
        },
        limit);
  }
  std::string Read(const std::string& name) {
    std::ifstream in(dir_ / name);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  boost::asio::io_context io_;
  Recorder rec_;
  fs::path dir_;
  std::function<void(ComponentSpec&)> spec_override_ = [](ComponentSpec&) {};
  std::unique_ptr<Component> component_;
};

TEST_F(ComponentTest, RunComponentGoesThroughEveryStateToFinished) {
  auto& c = Make(R"({"Install": "echo installing", "Run": "echo running"})");
  c.Start();
  ASSERT_TRUE(Reaches(State::kFinished));
  EXPECT_EQ(rec_.states, (std::vector<State>{State::kInstalled, State::kStarting, State::kRunning,
                                             State::kStopping, State::kFinished}));
  EXPECT_EQ(rec_.lines, (std::vector<std::string>{"installing", "running"}));
}

TEST_F(ComponentTest, BootstrapRunsBeforeInstallOnlyWhenAsked) {
  spec_override_ = [](ComponentSpec& s) { s.bootstrap = true; };
  auto& c = Make(R"({"Bootstrap": "echo bootstrapping", "Install": "echo installing",
                     "Run": "echo running"})");
  c.Start();
  ASSERT_TRUE(Reaches(State::kFinished));
  EXPECT_EQ(rec_.lines, (std::vector<std::string>{"bootstrapping", "installing", "running"}));
  // A restart is not a new deployment: Bootstrap does not run again.
  rec_.lines.clear();
  c.Start();
  ASSERT_TRUE(RunUntil([&] { return rec_.lines.size() >= 1 && c.state() == State::kFinished; }));
  EXPECT_EQ(rec_.lines, (std::vector<std::string>{"running"}));
}

TEST_F(ComponentTest, BootstrapAskingForARestartCarriesOnAndAFailureErrors) {
  spec_override_ = [](ComponentSpec& s) { s.bootstrap = true; };
  auto& c = Make(R"({"Bootstrap": "exit 100", "Run": "echo running"})");
  c.Start();
  ASSERT_TRUE(Reaches(State::kFinished));
  EXPECT_EQ(rec_.lines, (std::vector<std::string>{"running"}));

  component_.reset();
  rec_ = Recorder{};
  auto& failing = Make(R"({"Bootstrap": "exit 7", "Run": "echo running"})");
  failing.Start();
  ASSERT_TRUE(Passed(State::kErrored, "Bootstrap failed (exit code 7)"));
  ASSERT_TRUE(Reaches(State::kBroken));
  EXPECT_TRUE(rec_.lines.empty());
}

TEST_F(ComponentTest, StartupComponentRunsUntilStoppedAndShutdownRuns) {
  auto& c = Make(R"({"Startup": "echo started > started.txt",
                     "Shutdown": "echo bye > shutdown.txt"})");
  c.Start();
  ASSERT_TRUE(Reaches(State::kRunning));
  EXPECT_EQ(Read("started.txt"), "started\n");
  c.Stop();
  ASSERT_TRUE(Reaches(State::kFinished));
  EXPECT_EQ(Read("shutdown.txt"), "bye\n");
  EXPECT_TRUE(c.Settled());
}

TEST_F(ComponentTest, NothingToRunIsFinished) {
  auto& c = Make(R"({"Install": "true"})");
  c.Start();
  ASSERT_TRUE(Reaches(State::kFinished));
  EXPECT_TRUE(c.Settled());
}

TEST_F(ComponentTest, CrashingRunEndsBrokenAfterThreeErrorsWithRecoverEachTime) {
  auto& c = Make(R"({"Run": "exit 7", "Recover": "echo x >> recovered.txt"})");
  c.Start();
  ASSERT_TRUE(Reaches(State::kBroken));
  EXPECT_EQ(Read("recovered.txt"), "x\nx\n");  // the third error goes straight to BROKEN
  EXPECT_EQ(std::count(rec_.states.begin(), rec_.states.end(), State::kErrored), 2);
  EXPECT_TRUE(c.Settled());
  // BROKEN stays BROKEN until a reinstall.
  c.Restart();
  io_.restart();
  io_.run_for(100ms);
  EXPECT_EQ(c.state(), State::kBroken);
}

TEST_F(ComponentTest, FailingInstallIsRetriedThenBroken) {
  auto& c = Make(R"({"Install": "echo try >> tries.txt; exit 1", "Run": "true"})");
  c.Start();
  ASSERT_TRUE(Reaches(State::kBroken));
  EXPECT_EQ(Read("tries.txt"), "try\ntry\ntry\n");
  EXPECT_EQ(c.ErrorCount(State::kNew), 3);
}

TEST_F(ComponentTest, ReinstallLeavesBroken) {
  auto& c = Make(R"({"Install": "test -f ok || { touch attempt; exit 1; }", "Run": "true"})");
  c.Start();
  ASSERT_TRUE(Reaches(State::kBroken));
  std::ofstream(dir_ / "ok") << "";
  c.Reinstall();
  ASSERT_TRUE(Reaches(State::kFinished));
  EXPECT_EQ(c.ErrorCount(State::kNew), 0);
}

// Containers a component started go after its processes stop and before it starts again,
// but not when its Run ends by itself (detached containers outlive it until a stop).
TEST_F(ComponentTest, ExternalResourcesAreReleasedAfterStopsAndBeforeStarts) {
  auto& finished = Make(R"({"Run": "true"})");
  finished.Start();
  ASSERT_TRUE(Reaches(State::kFinished));
  EXPECT_EQ(rec_.release_states, std::vector<State>{State::kInstalled});  // before the start

  rec_.release_states.clear();
  auto& running = Make(R"({"Run": "exec sleep 60"})");
  running.Start();
  ASSERT_TRUE(Reaches(State::kRunning));
  running.Stop();
  ASSERT_TRUE(Reaches(State::kFinished));
  EXPECT_EQ(rec_.release_states, (std::vector<State>{State::kInstalled, State::kStopping}));
  // The observer is told which is which: only a start may wait for the Docker daemon.
  using Release = ComponentObserver::Release;
  EXPECT_EQ(rec_.release_whens,
            (std::vector<Release>{Release::kBeforeStart, Release::kBeforeStart,
                                  Release::kAfterProcesses}));
}

// A Reinstall that arrives while a BROKEN component's containers are still being removed
// is carried out once they are gone.
TEST_F(ComponentTest, ReinstallDuringASlowReleaseOfABrokenComponentStillInstalls) {
  auto& c = Make(R"({"Install": "test -f ok || exit 1", "Run": "true"})");
  rec_.defer_releases = 1;
  c.Start();
  ASSERT_TRUE(Reaches(State::kBroken));
  ASSERT_TRUE(RunUntil([&] { return rec_.deferred.size() == 1; }));
  std::ofstream(dir_ / "ok") << "";
  c.Reinstall();
  RunUntil([] { return false; }, 50ms);
  EXPECT_EQ(c.state(), State::kNew);  // waiting for the release
  auto done = std::move(rec_.deferred.front());
  rec_.deferred.clear();
  done();
  ASSERT_TRUE(Reaches(State::kFinished));
  EXPECT_EQ(c.ErrorCount(State::kNew), 0);
}

TEST_F(ComponentTest, ErrorsFarApartDoNotAddUp) {
  spec_override_ = [](ComponentSpec& s) { s.error_reset_time = 0s; };
  auto& c = Make(R"({"Run": "echo r >> runs.txt; test $(wc -l < runs.txt) -ge 5 || exit 3"})");
  c.Start();
  ASSERT_TRUE(Reaches(State::kFinished));  // four errors, never three "in a row"
  EXPECT_EQ(Read("runs.txt"), "r\nr\nr\nr\nr\n");
}

// The deployer reads these to decide when a Run that failed counts as up again.
TEST_F(ComponentTest, FailedRunsRecordHowLongTheyLastedTheLastThreeKept) {
  spec_override_ = [](ComponentSpec& s) { s.error_reset_time = 0s; };
  auto& c = Make(R"({"Run": "echo r >> runs.txt; n=$(wc -l < runs.txt); )"
                 R"(if [ $n -eq 2 ]; then sleep 0.3; fi; test $n -ge 5 || exit 3"})");
  c.Start();
  ASSERT_TRUE(Reaches(State::kFinished));
  ASSERT_EQ(c.failed_runs().size(), 3u);  // runs 2, 3 and 4 of the four that failed
  EXPECT_GE(c.failed_runs()[0].lasted, 300ms);
  EXPECT_LT(c.failed_runs()[0].at, c.failed_runs()[1].at);
  EXPECT_LT(c.failed_runs()[1].at, c.failed_runs()[2].at);
  EXPECT_LE(c.failed_runs()[2].at, c.running_since());  // run 5 started after run 4 failed
}

TEST_F(ComponentTest, RunTimeoutIsAnError) {
  auto& c = Make(R"({"Run": {"Script": "sleep 30", "Timeout": 1}})");
  c.Start();
  ASSERT_TRUE(Passed(State::kErrored, "Run timed out", 5s));
  c.Stop();
  ASSERT_TRUE(Reaches(State::kFinished));
}

TEST_F(ComponentTest, StartupTimeoutIsAnError) {
  auto& c = Make(R"({"Startup": {"Script": "sleep 30", "Timeout": 1}})");
  c.Start();
  ASSERT_TRUE(Passed(State::kErrored, "Startup timed out", 5s));
}

TEST_F(ComponentTest, InstallTimeoutIsAnError) {
  auto& c = Make(R"({"Install": {"Script": "sleep 30", "Timeout": 1}, "Run": "true"})");
  c.Start();
  ASSERT_TRUE(Passed(State::kErrored, "Install timed out", 5s));
}

TEST_F(ComponentTest, SkipifSkipsSteps) {
  auto& c = Make(R"({"Install": {"Script": "touch installed", "Skipif": "onpath sh"},
                     "Run": {"Script": "touch ran", "Skipif": "exists ."}})");
  c.Start();
  ASSERT_TRUE(Reaches(State::kFinished));
  EXPECT_FALSE(fs::exists(dir_ / "installed"));
  EXPECT_FALSE(fs::exists(dir_ / "ran"));
  auto& d = Make(R"({"Run": {"Script": "touch ran", "Skipif": "!onpath no-such-tool-xyz"}})");
  d.Start();
  ASSERT_TRUE(Reaches(State::kFinished));
  EXPECT_FALSE(fs::exists(dir_ / "ran"));
}

TEST_F(ComponentTest, SetenvDeeperWins) {
  auto& c = Make(R"({"Setenv": {"LEVEL": "lifecycle", "LC": "1"},
                     "Run": {"Script": "echo $LEVEL $KEEP $LC $STEP", "Setenv": {"LEVEL": "step", "STEP": "2"}}})");
  c.Start();
  ASSERT_TRUE(Reaches(State::kFinished));
  EXPECT_EQ(rec_.lines, (std::vector<std::string>{"step base 1 2"}));
}

TEST_F(ComponentTest, WaitsForDependencies) {
  bool ready = false;
  auto& c = Make(R"({"Run": "sleep 30"})", [&ready] { return ready; });
  c.Start();
  ASSERT_TRUE(Reaches(State::kInstalled));
  io_.restart();
  io_.run_for(100ms);
  EXPECT_EQ(c.state(), State::kInstalled);
  ready = true;
  c.DependenciesChanged();
  ASSERT_TRUE(Reaches(State::kRunning));
}

TEST_F(ComponentTest, ComponentMayReportRunningItself) {
  auto& c = Make(R"({"Startup": "sleep 30"})");
  c.Start();
  ASSERT_TRUE(Reaches(State::kStarting));
  EXPECT_FALSE(c.ReportState(State::kFinished));
  EXPECT_TRUE(c.ReportState(State::kRunning));
  EXPECT_EQ(c.state(), State::kRunning);
  EXPECT_TRUE(c.ReportState(State::kErrored));
  ASSERT_TRUE(
      RunUntil([&] { return c.state() == State::kStarting || c.state() == State::kRunning; }));
}

TEST_F(ComponentTest, RestartGoesBackThroughInstalled) {
  auto& c = Make(R"({"Run": "echo up; sleep 30"})");
  c.Start();
  ASSERT_TRUE(RunUntil([&] { return rec_.lines.size() == 1; }));
  c.Restart();
  ASSERT_TRUE(RunUntil([&] { return rec_.lines.size() == 2 && c.state() == State::kRunning; }));
  std::vector<State> tail(rec_.states.end() - 4, rec_.states.end());
  EXPECT_EQ(tail, (std::vector<State>{State::kStopping, State::kInstalled, State::kStarting,
                                      State::kRunning}));
}

TEST_F(ComponentTest, StopLeavesNoProcessBehind) {
  auto& c = Make(R"({"Run": "sleep 300 & echo $!; trap '' TERM; while true; do sleep 1; done"})");
  c.Start();
  ASSERT_TRUE(RunUntil([&] { return !rec_.lines.empty(); }));
  const pid_t background = std::stoi(rec_.lines[0]);
  c.Stop();
  ASSERT_TRUE(Reaches(State::kFinished));
  EXPECT_NE(::kill(background, 0), 0);
}

}  // namespace
}  // namespace lichen::lifecycle
