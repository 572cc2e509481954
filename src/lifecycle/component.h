// The lifecycle state machine of one component, as the Greengrass nucleus runs it:
// NEW -> INSTALLED -> STARTING -> RUNNING -> STOPPING -> FINISHED, with ERRORED
// (Recover, then retry) and BROKEN (three errors in a row from the same state).
//
// Event-driven on one io_context thread: steps are Processes, timeouts are timers,
// and every callback checks a generation number so a late exit or timer from an
// earlier attempt never moves the current one. The owner (the nucleus) decides
// dependency gating and restarts of dependents; this class only asks.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "lifecycle/process.h"
#include "recipe/lifecycle.h"

namespace lichen::lifecycle {

enum class State { kNew, kInstalled, kStarting, kRunning, kStopping, kFinished, kErrored, kBroken };
const char* ToString(State state);  // "NEW", "RUNNING", ... as Greengrass prints them

// Beyond the reference: a retry after an error waits base * 2^(n-1) (n = errors in a
// row), capped, with +-20% jitter, so a crashing component cannot spin the CPU.
struct Backoff {
  std::chrono::milliseconds base{1000};
  std::chrono::milliseconds cap{60000};
};

struct ComponentSpec {
  std::string name;
  recipe::Lifecycle lifecycle;  // already selected for the platform and interpolated
  // The environment every step starts from (runtime variables, SVCUID, runtime and
  // component Setenv); lifecycle-wide and step Setenv are applied on top, deeper wins.
  std::vector<std::pair<std::string, std::string>> env;
  std::string shell = "sh";
  std::string work_dir;
  std::string cgroup;               // cgroup v2 folder its processes go below; empty = groups only
  std::optional<RunAs> run_as;      // the component's user; unset = the runtime's own
  std::optional<RunAs> privileged;  // for RequiresPrivilege steps; unset = the runtime's own
  // Run the Bootstrap step before the next Install: the nucleus does so when a
  // component is new, or its version or Bootstrap step changed.
  bool bootstrap = false;
  std::chrono::seconds error_reset_time{3600};
  std::chrono::milliseconds stop_grace{5000};  // SIGTERM to SIGKILL
  Backoff backoff;
};

class Component;

class ComponentObserver {
 public:
  virtual ~ComponentObserver() = default;
  virtual void OnStateChange(Component& c, State from, State to, const std::string& reason) = 0;
  virtual void OnOutput(Component& c, OutputStream stream, std::string_view line) = 0;
  // Lifecycle events worth a log line ("Run script exited", "startup timed out").
  virtual void OnEvent(Component& c, const std::string& message) = 0;
  // A step's process started, leading its own process group `pgid`. The runtime records
  // it so that a restart after a crash can stop what the crashed runtime left running.
  virtual void OnProcessStarted(Component& c, pid_t pgid) {}
  // What the component started outside its process groups (containers, through the
  // Docker daemon) is released here: after its processes stopped, unless its Run ended
  // by itself (detached containers outlive it until the component is stopped), and
  // before each start (what a finished run left). The component waits for `done`,
  // which the observer calls exactly once, possibly before returning.
  enum class Release { kAfterProcesses, kBeforeStart };
  virtual void ReleaseExternal(Component& c, Release when, std::function<void()> done) {
    done();
  }
};

// A run that ended in an error (RUNNING to ERRORED): how long it had been up, and when.
struct FailedRun {
  std::chrono::milliseconds lasted;
  std::chrono::steady_clock::time_point at;
};

class Component {
 public:
  // `dependencies_ready` is asked before leaving INSTALLED; call DependenciesChanged()
  // when its answer may have changed.
  Component(boost::asio::io_context& io, ComponentSpec spec, ComponentObserver& observer,
            std::function<bool()> dependencies_ready);
  ~Component();
  Component(const Component&) = delete;
  Component& operator=(const Component&) = delete;

  const std::string& name() const { return spec_.name; }
  State state() const { return state_; }
  const ComponentSpec& spec() const { return spec_; }

  void Start();      // desired: RUNNING
  void Stop();       // desired: FINISHED (Shutdown runs, then the process group is stopped)
  void Restart();    // through STOPPING and INSTALLED back to RUNNING
  void Reinstall();  // back to NEW (the only way out of BROKEN)
  void DependenciesChanged();
  // UpdateState over IPC: RUNNING from STARTING, ERRORED from STARTING or RUNNING.
  // Returns false when the transition is not allowed now.
  bool ReportState(State reported);
  // Replaces what the next attempt runs (a deployment changed the recipe or config).
  void UpdateSpec(ComponentSpec spec);

  // Whether it sits in a state the desired state asks for (FINISHED or RUNNING as
  // requested, or BROKEN): deployments wait for this.
  bool Settled() const;
  // Consecutive errors counted against `state` (NEW, STARTING or RUNNING).
  int ErrorCount(State state) const;
  // When it last entered RUNNING (meaningful while RUNNING).
  std::chrono::steady_clock::time_point running_since() const { return running_since_; }
  // Its last runs that ended in an error, oldest first: as many as make it BROKEN.
  const std::vector<FailedRun>& failed_runs() const { return failed_runs_; }

 private:
  enum class Desired { kNone, kRunning, kFinished, kNew };
  enum class StepOutcome { kOk, kFailed, kTimedOut, kSkipped, kAbsent, kCannotStart };
  using StepDone = std::function<void(StepOutcome, int exit_code)>;

  void SetState(State to, const std::string& reason);
  void Advance();
  void EnterErrored(const std::string& reason);
  void AfterRecover();
  void RunStep(recipe::StepKind kind, StepDone done);
  // Starts a step's script with its output forwarded and its exit logged.
  Result<std::unique_ptr<Process>> Spawn(recipe::StepKind kind, const recipe::Step& step,
                                         std::function<void(int)> on_exit);
  void StartStarting();
  void StartRun();
  void StartStopping();
  void FinishStopping();
  void KillAll(std::function<void()> then);
  void PollKilled();
  bool ShouldSkip(const recipe::Step& step, std::string* why) const;
  ProcessSpec MakeProcessSpec(const recipe::Step& step) const;
  std::chrono::milliseconds NextBackoff();

  boost::asio::io_context& io_;
  ComponentSpec spec_;
  ComponentObserver& observer_;
  std::function<bool()> dependencies_ready_;

  State state_ = State::kNew;
  State errored_from_ = State::kNew;
  Desired desired_ = Desired::kNone;
  bool restart_after_stop_ = false;
  bool bootstrap_pending_ = false;
  uint64_t generation_ = 0;  // bumped whenever a new attempt begins
  bool busy_ = false;        // a step of the current state is in flight

  std::unique_ptr<Process> main_;  // the Startup or Run process
  std::unique_ptr<Process> step_;  // Install, Shutdown, Recover
  boost::asio::steady_timer step_timer_;
  boost::asio::steady_timer main_timer_;
  boost::asio::steady_timer retry_timer_;
  boost::asio::steady_timer kill_timer_;
  std::chrono::steady_clock::time_point kill_deadline_;
  std::function<void()> kill_then_;
  bool keep_external_ = false;       // the stop under way follows Run's own exit 0
  bool released_for_start_ = false;  // ReleaseExternal ran for the start under way
  std::map<State, std::vector<std::chrono::steady_clock::time_point>> errors_;
  std::chrono::steady_clock::time_point running_since_{};
  std::vector<FailedRun> failed_runs_;
  std::mt19937 rng_{std::random_device{}()};
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace lichen::lifecycle
