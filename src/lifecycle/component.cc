#include "lifecycle/component.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <utility>

namespace lichen::lifecycle {
namespace {

using namespace std::chrono_literals;
using recipe::StepKind;

constexpr int kMaxErrorsInARow = 3;  // the reference's MAXIMUM_CONTINUAL_ERROR
// How often a stop checks that the process groups are gone, and how long after the
// SIGKILL escalation it keeps checking before giving up on stragglers (zombies).
constexpr auto kStopPoll = 20ms;
constexpr auto kStopSlack = 2000ms;

std::string EnvValue(const std::vector<std::pair<std::string, std::string>>& env,
                     const std::string& key) {
  for (const auto& [k, v] : env) {
    if (k == key) return v;
  }
  return "";
}

void SetEnv(std::vector<std::pair<std::string, std::string>>& env, const std::string& key,
            const std::string& value) {
  for (auto& [k, v] : env) {
    if (k == key) {
      v = value;
      return;
    }
  }
  env.emplace_back(key, value);
}

}  // namespace

const char* ToString(State state) {
  switch (state) {
    case State::kNew:
      return "NEW";
    case State::kInstalled:
      return "INSTALLED";
    case State::kStarting:
      return "STARTING";
    case State::kRunning:
      return "RUNNING";
    case State::kStopping:
      return "STOPPING";
    case State::kFinished:
      return "FINISHED";
    case State::kErrored:
      return "ERRORED";
    case State::kBroken:
      return "BROKEN";
  }
  return "?";
}

Component::Component(boost::asio::io_context& io, ComponentSpec spec, ComponentObserver& observer,
                     std::function<bool()> dependencies_ready)
    : io_(io),
      spec_(std::move(spec)),
      observer_(observer),
      dependencies_ready_(std::move(dependencies_ready)),
      step_timer_(io),
      main_timer_(io),
      retry_timer_(io),
      kill_timer_(io) {
  bootstrap_pending_ = spec_.bootstrap;
}

Component::~Component() {
  *alive_ = false;
  // Process destructors SIGKILL whatever is left of their groups.
}

void Component::SetState(State to, const std::string& reason) {
  const State from = state_;
  if (from == to) return;
  // A success out of a state clears that state's error streak (as the reference does).
  if (to != State::kErrored && to != State::kBroken) errors_.erase(from);
  const auto now = std::chrono::steady_clock::now();
  if (to == State::kRunning) running_since_ = now;
  if (from == State::kRunning && to == State::kErrored) {
    if (failed_runs_.size() == static_cast<size_t>(kMaxErrorsInARow)) {
      failed_runs_.erase(failed_runs_.begin());
    }
    failed_runs_.push_back(
        {std::chrono::duration_cast<std::chrono::milliseconds>(now - running_since_), now});
  }
  state_ = to;
  observer_.OnStateChange(*this, from, to, reason);
}

int Component::ErrorCount(State state) const {
  auto it = errors_.find(state);
  return it == errors_.end() ? 0 : static_cast<int>(it->second.size());
}

bool Component::Settled() const {
  if (busy_) return false;
  switch (desired_) {
    case Desired::kRunning:
      return state_ == State::kRunning || state_ == State::kFinished || state_ == State::kBroken;
    case Desired::kFinished:
      return state_ == State::kFinished || state_ == State::kBroken;
    case Desired::kNew:
      return false;
    case Desired::kNone:
      return true;
  }
  return true;
}

void Component::Start() {
  desired_ = Desired::kRunning;
  Advance();
}

void Component::Stop() {
  desired_ = Desired::kFinished;
  restart_after_stop_ = false;
  Advance();
}

void Component::Restart() {
  desired_ = Desired::kRunning;
  if (state_ == State::kRunning || state_ == State::kStarting) {
    restart_after_stop_ = true;
  } else if (state_ == State::kBroken) {
    return;  // only a redeploy (Reinstall) leaves BROKEN
  }
  Advance();
}

void Component::Reinstall() {
  if (state_ == State::kBroken) {
    errors_.clear();
    SetState(State::kNew, "reinstall requested");
    desired_ = Desired::kRunning;
    Advance();
    return;
  }
  desired_ = Desired::kNew;
  Advance();
}

void Component::UpdateSpec(ComponentSpec spec) {
  spec.name = spec_.name;
  spec_ = std::move(spec);
  if (spec_.bootstrap) bootstrap_pending_ = true;
}

void Component::DependenciesChanged() {
  if (state_ == State::kInstalled) Advance();
}

bool Component::ReportState(State reported) {
  if (reported == State::kRunning && state_ == State::kStarting) {
    SetState(State::kRunning, "reported by the component");
    return true;
  }
  if (reported == State::kErrored && (state_ == State::kStarting || state_ == State::kRunning)) {
    EnterErrored("reported by the component");
    return true;
  }
  return false;
}

void Component::Advance() {
  if (busy_) return;
  switch (state_) {
    case State::kNew:
      if (desired_ == Desired::kFinished) {
        SetState(State::kFinished, "stop requested before install");
        return;
      }
      if (desired_ == Desired::kNone) return;
      if (desired_ == Desired::kNew) desired_ = Desired::kRunning;
      busy_ = true;
      if (bootstrap_pending_) {
        RunStep(StepKind::kBootstrap, [this](StepOutcome outcome, int code) {
          busy_ = false;
          // 100 and 101 ask the Java nucleus to restart itself or the device so that a
          // new JVM or kernel module takes effect; Lichen needs neither and goes on.
          if (outcome == StepOutcome::kFailed && (code == 100 || code == 101)) {
            observer_.OnEvent(*this, std::string("Bootstrap asked for a restart of the ") +
                                         (code == 100 ? "runtime" : "device") + " (exit code " +
                                         std::to_string(code) +
                                         "); Lichen needs none and carries on");
            outcome = StepOutcome::kOk;
          }
          switch (outcome) {
            case StepOutcome::kOk:
            case StepOutcome::kSkipped:
            case StepOutcome::kAbsent:
              bootstrap_pending_ = false;
              Advance();
              return;
            case StepOutcome::kTimedOut:
              EnterErrored("Bootstrap timed out");
              return;
            default:
              EnterErrored("Bootstrap failed (exit code " + std::to_string(code) + ")");
              return;
          }
        });
        return;
      }
      RunStep(StepKind::kInstall, [this](StepOutcome outcome, int code) {
        busy_ = false;
        switch (outcome) {
          case StepOutcome::kOk:
          case StepOutcome::kSkipped:
          case StepOutcome::kAbsent:
            SetState(State::kInstalled, "install done");
            Advance();
            return;
          case StepOutcome::kTimedOut:
            EnterErrored("Install timed out");
            return;
          default:
            EnterErrored("Install failed (exit code " + std::to_string(code) + ")");
            return;
        }
      });
      return;
    case State::kInstalled:
      if (desired_ == Desired::kFinished) {
        released_for_start_ = false;
        SetState(State::kFinished, "stop requested");
      } else if (desired_ == Desired::kNew) {
        released_for_start_ = false;
        SetState(State::kNew, "reinstall requested");
        Advance();
      } else if (desired_ == Desired::kRunning && (!dependencies_ready_ || dependencies_ready_())) {
        if (!released_for_start_) {
          busy_ = true;
          std::weak_ptr<bool> alive = alive_;
          observer_.ReleaseExternal(*this, ComponentObserver::Release::kBeforeStart, [this, alive] {
            if (!alive.lock()) return;
            busy_ = false;
            released_for_start_ = true;
            Advance();  // the wish may have changed meanwhile
          });
          return;
        }
        released_for_start_ = false;
        SetState(State::kStarting, "dependencies ready");
        StartStarting();
      }
      return;
    case State::kStarting:
    case State::kRunning:
      if (desired_ != Desired::kRunning || restart_after_stop_) StartStopping();
      return;
    case State::kFinished:
      if (desired_ == Desired::kRunning) {
        SetState(State::kInstalled, "start requested");
        Advance();
      } else if (desired_ == Desired::kNew) {
        SetState(State::kNew, "reinstall requested");
        Advance();
      }
      return;
    case State::kStopping:
    case State::kErrored:
    case State::kBroken:
      return;
  }
}

ProcessSpec Component::MakeProcessSpec(const recipe::Step& step) const {
  ProcessSpec p;
  p.shell = spec_.shell;
  p.script = step.script;
  p.working_dir = spec_.work_dir;
  p.env = spec_.env;
  for (const auto& [k, v] : spec_.lifecycle.setenv) SetEnv(p.env, k, v);
  for (const auto& [k, v] : step.setenv) SetEnv(p.env, k, v);
  p.run_as = step.requires_privilege ? spec_.privileged : spec_.run_as;
  p.cgroup_parent = spec_.cgroup;
  return p;
}

bool Component::ShouldSkip(const recipe::Step& step, std::string* why) const {
  if (!step.skipif) return false;
  const auto& s = *step.skipif;
  bool holds = false;
  if (s.kind == recipe::Skipif::Kind::kOnPath) {
    std::string path = EnvValue(spec_.env, "PATH");
    for (const auto& [k, v] : step.setenv) {
      if (k == "PATH") path = v;
    }
    holds = SearchPath(s.argument, path).has_value();
  } else {
    std::string target = s.argument;
    if (target == "~" || target.rfind("~/", 0) == 0) {
      std::string home = spec_.run_as ? spec_.run_as->home : EnvValue(spec_.env, "HOME");
      target = home + target.substr(1);
    }
    struct stat st {};
    holds = ::stat(target.c_str(), &st) == 0;
  }
  const bool skip = holds != s.negate;
  if (skip) {
    *why = std::string(s.negate ? "!" : "") +
           (s.kind == recipe::Skipif::Kind::kOnPath ? "onpath " : "exists ") + s.argument;
  }
  return skip;
}

void Component::RunStep(StepKind kind, StepDone done) {
  const recipe::Step* step = spec_.lifecycle.Find(kind);
  if (step == nullptr) {
    done(StepOutcome::kAbsent, 0);
    return;
  }
  std::string why;
  if (ShouldSkip(*step, &why)) {
    observer_.OnEvent(*this, std::string(recipe::ToString(kind)) + " skipped (Skipif " + why + ")");
    done(StepOutcome::kSkipped, 0);
    return;
  }
  const uint64_t gen = generation_;
  std::weak_ptr<bool> alive = alive_;
  auto timed_out = std::make_shared<bool>(false);
  auto started = Spawn(kind, *step, [this, done, timed_out](int code) {
    step_timer_.cancel();
    done(
        *timed_out ? StepOutcome::kTimedOut : (code == 0 ? StepOutcome::kOk : StepOutcome::kFailed),
        code);
  });
  if (!started) {
    observer_.OnEvent(*this, std::string(recipe::ToString(kind)) +
                                 " could not start: " + started.error().message);
    done(StepOutcome::kCannotStart, 127);
    return;
  }
  step_ = std::move(*started);
  if (auto timeout = spec_.lifecycle.EffectiveTimeout(kind)) {
    step_timer_.expires_after(std::chrono::seconds(*timeout));
    step_timer_.async_wait(
        [this, alive, gen, kind, timed_out](const boost::system::error_code& ec) {
          if (ec || !alive.lock() || gen != generation_ || !step_) return;
          *timed_out = true;
          observer_.OnEvent(*this, std::string(recipe::ToString(kind)) + " timed out; stopping it");
          step_->Stop(spec_.stop_grace);
        });
  }
}

Result<std::unique_ptr<Process>> Component::Spawn(StepKind kind, const recipe::Step& step,
                                                  std::function<void(int)> on_exit) {
  std::weak_ptr<bool> alive = alive_;
  ProcessSpec process = MakeProcessSpec(step);
  process.on_forked = [this](pid_t pgid) { observer_.OnProcessStarted(*this, pgid); };
  auto started = Process::Start(
      io_, process,
      [this, alive](OutputStream s, std::string_view line) {
        if (alive.lock()) observer_.OnOutput(*this, s, line);
      },
      [this, alive, kind, on_exit = std::move(on_exit)](int code) {
        if (!alive.lock()) return;
        observer_.OnEvent(*this, std::string(recipe::ToString(kind)) + " script exited with code " +
                                     std::to_string(code));
        on_exit(code);
      });
  return started;
}

void Component::StartStarting() {
  const uint64_t gen = ++generation_;
  const recipe::Step* startup = spec_.lifecycle.Find(StepKind::kStartup);
  std::string why;
  if (startup == nullptr || ShouldSkip(*startup, &why)) {
    if (startup != nullptr) observer_.OnEvent(*this, "Startup skipped (Skipif " + why + ")");
    StartRun();
    return;
  }
  std::weak_ptr<bool> alive = alive_;
  auto started = Spawn(StepKind::kStartup, *startup, [this, gen](int code) {
    if (gen != generation_) return;
    main_timer_.cancel();
    if (code == 0) {
      if (state_ == State::kStarting) SetState(State::kRunning, "Startup succeeded");
    } else if (state_ == State::kStarting || state_ == State::kRunning) {
      EnterErrored("Startup failed (exit code " + std::to_string(code) + ")");
    }
  });
  if (!started) {
    EnterErrored("Startup could not start: " + started.error().message);
    return;
  }
  main_ = std::move(*started);
  const int timeout = spec_.lifecycle.EffectiveTimeout(StepKind::kStartup).value_or(120);
  main_timer_.expires_after(std::chrono::seconds(timeout));
  main_timer_.async_wait([this, alive, gen](const boost::system::error_code& ec) {
    if (ec || !alive.lock() || gen != generation_) return;
    if (state_ == State::kStarting) EnterErrored("Startup timed out");
  });
}

void Component::StartRun() {
  const uint64_t gen = generation_;
  const recipe::Step* run = spec_.lifecycle.Find(StepKind::kRun);
  std::string why;
  if (run == nullptr || ShouldSkip(*run, &why)) {
    // Nothing runs: the component is done, as the reference's "Nothing done".
    desired_ = Desired::kFinished;
    SetState(State::kFinished,
             run == nullptr ? "nothing to run" : "Run skipped (Skipif " + why + ")");
    return;
  }
  std::weak_ptr<bool> alive = alive_;
  auto started = Spawn(StepKind::kRun, *run, [this, gen](int code) {
    if (gen != generation_ || state_ != State::kRunning) return;
    main_timer_.cancel();
    if (code == 0) {
      desired_ = Desired::kFinished;
      keep_external_ = true;
      StartStopping();
    } else {
      EnterErrored("Run failed (exit code " + std::to_string(code) + ")");
    }
  });
  if (!started) {
    EnterErrored("Run could not start: " + started.error().message);
    return;
  }
  main_ = std::move(*started);
  SetState(State::kRunning, "Run started");
  if (auto timeout = spec_.lifecycle.EffectiveTimeout(StepKind::kRun)) {
    main_timer_.expires_after(std::chrono::seconds(*timeout));
    main_timer_.async_wait([this, alive, gen](const boost::system::error_code& ec) {
      if (ec || !alive.lock() || gen != generation_) return;
      if (state_ == State::kRunning) EnterErrored("Run timed out");
    });
  }
}

void Component::EnterErrored(const std::string& reason) {
  const State origin = state_;
  ++generation_;  // late exits and timers of the failed attempt are ignored from now on
  main_timer_.cancel();
  step_timer_.cancel();
  observer_.OnEvent(*this, reason);
  if (origin == State::kNew || origin == State::kStarting || origin == State::kRunning) {
    auto& times = errors_[origin];
    const auto now = std::chrono::steady_clock::now();
    if (!times.empty() && now - times.back() >= spec_.error_reset_time) times.clear();
    times.push_back(now);
    if (static_cast<int>(times.size()) >= kMaxErrorsInARow) {
      busy_ = true;
      SetState(State::kBroken, reason + "; " + std::to_string(times.size()) +
                                   " errors in a row from " + ToString(origin));
      KillAll([this] {
        busy_ = false;
        Advance();  // a Reinstall may have come while the processes and containers went
      });
      return;
    }
  }
  errored_from_ = origin;
  SetState(State::kErrored, reason);
  busy_ = true;
  RunStep(StepKind::kRecover, [this](StepOutcome, int) {
    busy_ = false;
    AfterRecover();
  });
}

std::chrono::milliseconds Component::NextBackoff() {
  int n = 0;
  for (const auto& [s, times] : errors_) n = std::max(n, static_cast<int>(times.size()));
  if (n <= 0 || spec_.backoff.base.count() == 0) return 0ms;
  std::chrono::milliseconds delay = spec_.backoff.base * (1LL << std::min(n - 1, 20));
  delay = std::min(delay, spec_.backoff.cap);
  std::uniform_real_distribution<double> jitter(0.8, 1.2);
  return std::chrono::milliseconds(
      static_cast<int64_t>(static_cast<double>(delay.count()) * jitter(rng_)));
}

void Component::AfterRecover() {
  switch (errored_from_) {
    case State::kStarting:
    case State::kRunning:
      if (desired_ == Desired::kNone) desired_ = Desired::kRunning;
      StartStopping();  // FinishStopping applies the backoff before the retry
      return;
    case State::kNew: {
      SetState(State::kNew, "retrying install");
      busy_ = true;
      std::weak_ptr<bool> alive = alive_;
      retry_timer_.expires_after(NextBackoff());
      retry_timer_.async_wait([this, alive](const boost::system::error_code& ec) {
        if (ec || !alive.lock()) return;
        busy_ = false;
        Advance();
      });
      return;
    }
    default:
      SetState(State::kFinished, "stopped after an error while stopping");
      return;
  }
}

void Component::StartStopping() {
  const State from = state_;
  ++generation_;
  main_timer_.cancel();
  restart_after_stop_ = restart_after_stop_ && desired_ == Desired::kRunning;
  SetState(State::kStopping,
           from == State::kErrored ? "stopping after an error" : "stop requested");
  busy_ = true;
  RunStep(StepKind::kShutdown, [this, from](StepOutcome outcome, int code) {
    if (outcome == StepOutcome::kFailed || outcome == StepOutcome::kTimedOut ||
        outcome == StepOutcome::kCannotStart) {
      observer_.OnEvent(*this, "Shutdown did not succeed (exit code " + std::to_string(code) +
                                   "); stopping the processes anyway");
    }
    const bool after_error = from == State::kErrored;
    KillAll([this, after_error] {
      busy_ = false;
      const bool retry = desired_ == Desired::kRunning;
      restart_after_stop_ = false;
      if (desired_ == Desired::kNew) {
        SetState(State::kNew, "reinstalling");
        Advance();
        return;
      }
      if (!retry) {
        SetState(State::kFinished, "stopped");
        return;
      }
      SetState(State::kInstalled, after_error ? "restarting after an error" : "restarting");
      if (!after_error) {
        Advance();
        return;
      }
      busy_ = true;
      std::weak_ptr<bool> alive = alive_;
      retry_timer_.expires_after(NextBackoff());
      retry_timer_.async_wait([this, alive](const boost::system::error_code& ec) {
        if (ec || !alive.lock()) return;
        busy_ = false;
        Advance();
      });
    });
  });
}

void Component::KillAll(std::function<void()> then) {
  for (auto* p : {main_.get(), step_.get()}) {
    if (p != nullptr) p->Stop(spec_.stop_grace);
  }
  kill_deadline_ = std::chrono::steady_clock::now() + spec_.stop_grace + kStopSlack;
  kill_then_ = std::move(then);
  PollKilled();
}

// Waits, bounded, until both process groups are gone, then drops the Process objects.
void Component::PollKilled() {
  const bool any = (main_ && main_->GroupAlive()) || (step_ && step_->GroupAlive());
  if (any && std::chrono::steady_clock::now() < kill_deadline_) {
    std::weak_ptr<bool> alive = alive_;
    kill_timer_.expires_after(kStopPoll);
    kill_timer_.async_wait([this, alive](const boost::system::error_code& ec) {
      if (!ec && alive.lock()) PollKilled();
    });
    return;
  }
  if (any) observer_.OnEvent(*this, "processes still present after SIGKILL; abandoning them");
  main_.reset();
  step_.reset();
  auto then = std::move(kill_then_);
  kill_then_ = nullptr;
  const bool keep = std::exchange(keep_external_, false);
  if (keep) {
    if (then) then();
    return;
  }
  std::weak_ptr<bool> alive = alive_;
  observer_.ReleaseExternal(*this, ComponentObserver::Release::kAfterProcesses,
                            [then = std::move(then), alive] {
    if (alive.lock() && then) then();
  });
}

}  // namespace lichen::lifecycle
