// Local deployments: a FIFO queue persisted in the StateStore, each deployment
// prepared off the loop (recipes, resolution, artifacts into the store), then applied
// in one transaction (configuration + a rollback snapshot), then awaited with a bound,
// then finished (SUCCEEDED) or failed (rolled back when asked).
//
// Crash safety: what the runtime runs is always the configuration tree as last
// committed. A deployment that crashed while preparing starts again from the queue; one
// that crashed after applying resumes its wait (or its rollback) from the persisted
// phase. No deployment stays IN_PROGRESS across a restart.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "config/state_store.h"
#include "config/tree.h"
#include "deploy/document.h"
#include "logs/log.h"
#include "nucleus/services.h"
#include "store/component_store.h"

namespace lichen::nucleus {

// Deployment error codes and the type each belongs to, as the Greengrass nucleus
// reports them (deploymentErrorStack / deploymentErrorTypes).
struct DeploymentFailure {
  std::string code;  // e.g. ARTIFACT_CHECKSUM_MISMATCH
  std::string message;
};
std::vector<std::string> ErrorStack(const std::string& code);
std::string ErrorType(const std::string& code);

// What preparing a deployment produced, ready to apply on the loop.
struct Plan {
  std::map<std::string, ServiceDefinition> services;  // the whole new running set
  std::set<std::string> touched;                      // components in this deployment
  std::map<std::string, std::map<std::string, std::string>>
      group_roots;  // group -> root -> version
};

class Deployer {
 public:
  Deployer(boost::asio::io_context& io, config::StateStore& state, config::Tree& tree,
           Services& services, store::ComponentStore& store, logs::Logs& logs,
           const ServiceEnvironment& env);
  ~Deployer();

  // At startup: runs the components of the committed configuration and resumes or
  // restarts an interrupted deployment.
  void Recover();

  // Queues a deployment; returns its id.
  Result<std::string> Submit(const deploy::LocalDeployment& deployment);
  // The GetLocalDeploymentStatus shape of one deployment; code ResourceNotFoundError.
  Result<Json> Status(const std::string& id);
  std::vector<Json> List();
  // Cancels a queued deployment, or one still preparing. Returns a message.
  Result<std::string> Cancel(const std::string& id);
  // Stops taking deployments off the queue (the runtime is shutting down).
  void Shutdown();
  // Where the preparing deployment's download of `item` (an artifact URI) stands; shown
  // as the status's "progress" (a Lichen extension) until the deployment moves on. Loop
  // thread only; ignored when no deployment is preparing.
  void NoteProgress(const std::string& item, const std::string& text);

  // Test and benchmark hook: called whenever a deployment reaches a final status.
  void OnFinished(std::function<void(const std::string& id, const std::string& status)> cb) {
    on_finished_ = std::move(cb);
  }

 private:
  enum class Phase { kIdle, kPreparing, kApplying, kRollingBack };
  struct Active {
    std::string id;
    int64_t seq = 0;
    deploy::LocalDeployment request;
    Phase phase = Phase::kIdle;
    bool cancel_requested = false;
    Json snapshot;  // the services tree before applying
    std::set<std::string> touched;
    std::chrono::steady_clock::time_point waiting_since{};  // components applied, or rolled back
    std::optional<DeploymentFailure> failure;  // why we are rolling back
    std::map<std::string, std::string> progress;  // artifact URI -> where its download stands
  };

  void Pump();
  void StartPrepare();
  void OnPrepared(Result<Plan> plan);
  void Apply(Plan plan);
  void BeginWait();
  void CheckSettled();
  // When a RUNNING component whose Run process started counts as up; none for others.
  std::optional<std::chrono::steady_clock::time_point> CountsAsUpAt(
      const Services::Info& info) const;
  void Succeed();
  void Fail(DeploymentFailure failure);
  void StartRollback();
  void FinishRollback(bool complete);
  void Finish(const std::string& status, const std::string& detailed,
              const std::optional<DeploymentFailure>& failure);

  // The running set as the committed configuration describes it.
  std::map<std::string, ServiceDefinition> DefinitionsFromTree(std::vector<std::string>* problems);
  Json Record(const std::string& id);
  void PutRecordField(const std::string& id, const std::string& status, const std::string& detailed,
                      const std::optional<DeploymentFailure>& f);
  void TrimHistory();

  boost::asio::io_context& io_;
  config::StateStore& state_;
  config::Tree& tree_;
  Services& services_;
  store::ComponentStore& store_;
  logs::Logs& logs_;
  ServiceEnvironment env_;
  boost::asio::thread_pool pool_{1};
  boost::asio::steady_timer deadline_;
  boost::asio::steady_timer recheck_;  // when a Run process will have been up long enough
  std::optional<Active> active_;
  bool shutting_down_ = false;
  std::function<void(const std::string&, const std::string&)> on_finished_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace lichen::nucleus
