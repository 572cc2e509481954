// The running set of components: builds each one's ComponentSpec from its stored recipe
// and its configuration, gates starts on HARD dependencies, restarts dependents, and
// moves the set to what a deployment asks for (start new, reinstall or restart changed,
// stop and drop removed). Everything runs on the event loop.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "config/tree.h"
#include "deploy/resolver.h"
#include "docker/container_janitor.h"
#include "lifecycle/component.h"
#include "lifecycle/process_ledger.h"
#include "logs/log.h"
#include "nucleus/runtime_config.h"
#include "recipe/platform.h"
#include "recipe/recipe.h"

namespace lichen::nucleus {

// `length` characters of [A-Za-z0-9] from the kernel CSPRNG: SVCUIDs, the CLI token.
std::string RandomToken(size_t length);

// What the configuration says one component is.
struct ServiceDefinition {
  recipe::Recipe recipe;
  std::map<std::string, deploy::DependencyType> dependencies;  // direct, as resolved
  std::optional<std::string> run_with_user;                    // runWith.posixUser
};

// Runtime facts every component's environment and variables use.
struct ServiceEnvironment {
  std::string root;
  std::string socket_path;  // what components connect to (short enough to bind)
  std::string version;      // GGC_VERSION
  std::string cgroup_base;  // cgroup v2 folder for component cgroups; empty = none
  // The token exchange service's URL (AWS_CONTAINER_CREDENTIALS_FULL_URI); empty when
  // no credentials are configured.
  std::string credentials_uri;
  recipe::Platform platform;
  RuntimeConfig runtime;
};

class Services : public lifecycle::ComponentObserver {
 public:
  // `ledger` (may be null) records every process group started, for crash recovery.
  Services(boost::asio::io_context& io, ServiceEnvironment env, logs::Logs& logs,
           config::Tree& tree, lifecycle::ProcessLedger* ledger);
  ~Services() override;

  // Moves the running set to `desired` (name -> definition), reading each component's
  // configuration from the tree. `redeploy` names components a deployment touches: a
  // BROKEN one among them is reinstalled. Returns one problem per component that
  // cannot run (no usable user, no matching manifest); those are not started.
  std::map<std::string, std::string> Apply(const std::map<std::string, ServiceDefinition>& desired,
                                           const std::set<std::string>& redeploy);

  // Re-reads every component's configuration: a component whose interpolated lifecycle
  // changed (an UpdateConfiguration over IPC) restarts.
  void Refresh();

  struct Info {
    std::string name;
    std::string version;
    lifecycle::State state;
    bool settled;
    bool run_based = false;  // RUNNING means "its Run process started", not "it started"
    std::chrono::steady_clock::time_point running_since{};
    std::vector<lifecycle::FailedRun> failed_runs{};  // oldest first
  };
  std::vector<Info> List() const;
  std::optional<Info> Find(const std::string& name) const;
  // Components not yet gone after being removed.
  size_t removing() const { return removing_.size(); }
  // Whether a component waits at INSTALLED for a HARD dependency that is BROKEN.
  bool BlockedByBroken(const std::string& name) const;

  bool Restart(const std::string& name);
  bool Stop(const std::string& name);
  // UpdateState over IPC.
  bool ReportState(const std::string& name, lifecycle::State state);

  // Stops everything, dependents before their dependencies, then calls `done`.
  void StopAll(std::function<void()> done);

  // The component a client's token belongs to.
  std::optional<std::string> ComponentForToken(const std::string& token) const;

  // Gives components their own Docker sockets and removes the containers they made
  // when they stop (null: no Docker tracking). Set before the first Apply.
  void SetContainerJanitor(docker::ContainerJanitor* janitor) { janitor_ = janitor; }

  // A line a detached container of `component` printed: into the component's log, as
  // its processes' output is, with the container's name as the script.
  void ContainerOutput(const std::string& component, const std::string& container, bool is_stderr,
                       const std::string& line);

  // Called after any state change (deployments re-check their wait here).
  void OnAnyChange(std::function<void()> callback) { on_change_ = std::move(callback); }

  // lifecycle::ComponentObserver
  void OnStateChange(lifecycle::Component& c, lifecycle::State from, lifecycle::State to,
                     const std::string& reason) override;
  void OnOutput(lifecycle::Component& c, lifecycle::OutputStream stream,
                std::string_view line) override;
  void OnEvent(lifecycle::Component& c, const std::string& message) override;
  void OnProcessStarted(lifecycle::Component& c, pid_t pgid) override;
  void ReleaseExternal(lifecycle::Component& c, Release when,
                       std::function<void()> done) override;

 private:
  struct Managed {
    ServiceDefinition definition;
    std::string svcuid;
    std::string install_key;    // version, user and Install step: a change reinstalls
    std::string run_key;        // the rest of the spec: a change restarts
    std::string bootstrap_key;  // version and Bootstrap step: a change runs Bootstrap again
    std::unique_ptr<lifecycle::Component> component;
    bool stop_requested = false;
  };

  // Builds the spec; an error says why the component cannot run.
  Result<lifecycle::ComponentSpec> BuildSpec(const std::string& name, const ServiceDefinition& def,
                                             const std::string& svcuid,
                                             const std::map<std::string, ServiceDefinition>& all,
                                             std::string* install_key, std::string* run_key,
                                             std::string* bootstrap_key);
  bool DependenciesReady(const std::string& name) const;
  Info InfoOf(const std::string& name, const Managed& m) const;
  void Notify();
  void PumpStopAll();
  void ReapRemoved();

  boost::asio::io_context& io_;
  ServiceEnvironment env_;
  logs::Logs& logs_;
  config::Tree& tree_;
  lifecycle::ProcessLedger* ledger_;
  docker::ContainerJanitor* janitor_ = nullptr;
  std::map<std::string, lifecycle::RunAs> run_as_cache_;
  std::map<std::string, Managed> services_;
  std::map<std::string, Managed> removing_;
  std::function<void()> on_change_;
  bool stopping_all_ = false;
  std::function<void()> stop_all_done_;
  std::unique_ptr<boost::asio::steady_timer> stop_all_timer_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace lichen::nucleus
