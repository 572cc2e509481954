// Which containers belong to which component, and removing them when the component
// stops: the per-component Docker API sockets (SocketProxy) and the cleanup behind them.
//
// A component whose user may use the Docker daemon gets its own socket,
// DOCKER_HOST=unix://<dir>/<component>.sock. Every container created through it carries
// the labels lichen.component=<name> and lichen.root=<root>, so cleanup asks the daemon
// for exactly those containers, stops them (SIGTERM, then SIGKILL after the grace period)
// and removes them. Containers created by talking to the daemon's own socket by path
// are not seen; docs/DOCKER.md says so.
//
// The output of detached containers (`docker run -d`, whose output no client shows) is
// followed through the Engine API and handed to the component's log.
//
// Threading: Open/Close/Clean are called on the event loop; Engine calls block, so they
// run on worker threads and callbacks are posted back to the loop. The destructor stops
// the log followers (within about a second) and waits for every worker.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/result.h"
#include "docker/engine.h"
#include "docker/socket_access.h"
#include "docker/socket_proxy.h"

namespace lichen::docker {

struct ContainerJanitorOptions {
  EngineOptions engine;    // the real daemon
  std::string root;        // the lichen.root label value
  std::string socket_dir;  // where component sockets are made
  // Called on the loop only.
  std::function<void(const std::string& component, const std::string& message)> log;
  // The output of a detached container (one no client attached to), line by line, on the
  // loop: it belongs in the component's log. Unset: not followed.
  std::function<void(const std::string& component, const std::string& container, LogStream,
                     const std::string& line)>
      on_output;
};

class ContainerJanitor {
 public:
  ContainerJanitor(boost::asio::io_context& io, ContainerJanitorOptions options);
  ~ContainerJanitor();
  ContainerJanitor(const ContainerJanitor&) = delete;
  ContainerJanitor& operator=(const ContainerJanitor&) = delete;

  // The component's socket (made on first use, owned by the component's user, 0600);
  // returns the DOCKER_HOST value. Keeps working when the daemon is down: connections
  // then fail as they would on the daemon's own socket.
  Result<std::string> Open(const std::string& component, std::optional<uid_t> owner,
                           std::optional<gid_t> group);
  // Closes the socket (the component is gone). Its containers are not touched: Clean.
  void Close(const std::string& component);

  // Stops and removes every container of `component`, then calls `done` on the loop. A
  // component that created no container since its last cleanup costs nothing (done runs
  // at once). Failures are logged, never fatal: a stop must not hang on Docker. With
  // `wait_for_daemon`, a daemon that does not answer is waited for that long (pinged
  // every 250 ms) and the cleanup tried again, before `done`.
  void Clean(const std::string& component, std::chrono::milliseconds grace,
             std::function<void()> done,
             std::chrono::milliseconds wait_for_daemon = std::chrono::milliseconds(0));
  // Ends every wait for the daemon at once (the runtime is shutting down).
  void StopWaiting() { stop_waiting_ = true; }
  // Blocking: every container labelled with this root, whatever the component (what a
  // crashed or finished run left). Returns how many were removed. Logs on the caller's
  // thread, which must be the loop's.
  int CleanAll(std::chrono::milliseconds grace);

 private:
  struct Entry {
    std::unique_ptr<SocketProxy> proxy;
    std::optional<uid_t> owner;
    std::optional<gid_t> group;
    uint64_t cleaned = 0;  // proxy->containers_created() at the last complete cleanup
  };
  std::string SocketPathFor(const std::string& component) const;
  using Messages = std::vector<std::pair<std::string, std::string>>;  // component, text
  // Blocking: stops and removes the containers carrying `labels`, in parallel. Returns
  // how many went, or -1 when some could not be listed or removed; what happened goes to
  // `messages` (logged on the loop by the caller).
  int RemoveLabelled(const std::map<std::string, std::string>& labels,
                     std::chrono::milliseconds grace, const std::string& who,
                     Messages& messages) const;
  void Log(const Messages& messages) const;
  void ReapWorkers();
  // Runs `work` on a worker thread the destructor waits for; false when no thread could
  // be made.
  bool Spawn(std::function<void()> work);
  static constexpr size_t kMaxFollowers = 256;
  // Follows a started container's output when no client shows it (docker run -d).
  void Follow(const std::string& component, const std::string& id);

  boost::asio::io_context& io_;
  ContainerJanitorOptions options_;
  std::map<std::string, Entry> entries_;
  std::set<std::string> followed_;  // container ids whose output a worker follows
  std::set<std::string> attached_;  // ids a client attached to (it shows their output)
  std::mutex workers_mutex_;
  std::list<std::pair<std::thread, std::shared_ptr<std::atomic<bool>>>> workers_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::atomic<bool> stopping_{false};  // ends the log followers
  std::atomic<bool> stop_waiting_{false};
};

}  // namespace lichen::docker
