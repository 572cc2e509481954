#include "docker/container_janitor.h"

#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <future>
#include <system_error>

namespace lichen::docker {
namespace {

namespace fs = std::filesystem;

// sun_path holds 108 bytes with the terminating NUL.
constexpr size_t kMaxSocketPath = 107;

}  // namespace

ContainerJanitor::ContainerJanitor(boost::asio::io_context& io, ContainerJanitorOptions options)
    : io_(io), options_(std::move(options)) {}

ContainerJanitor::~ContainerJanitor() {
  *alive_ = false;
  stopping_ = true;
  for (auto& [name, entry] : entries_) entry.proxy->Stop();
  std::lock_guard lock(workers_mutex_);
  for (auto& [thread, finished] : workers_) thread.join();
}

std::string ContainerJanitor::SocketPathFor(const std::string& component) const {
  std::string path = options_.socket_dir + "/" + component + ".sock";
  if (path.size() <= kMaxSocketPath) return path;
  // A long component name: the name of the file does not matter, DOCKER_HOST says it.
  const std::string file =
      std::to_string(std::hash<std::string>{}(component) % 1000000000) + ".sock";
  path = options_.socket_dir + "/" + file;
  if (path.size() <= kMaxSocketPath) return path;
  // A deep root: a short folder of its own in /tmp.
  return "/tmp/lichen-docker-" +
         std::to_string(std::hash<std::string>{}(options_.socket_dir) % 100000000) + "/" + file;
}

Result<std::string> ContainerJanitor::Open(const std::string& component, std::optional<uid_t> owner,
                                           std::optional<gid_t> group) {
  auto found = entries_.find(component);
  if (found != entries_.end()) {
    if (found->second.owner == owner && found->second.group == group) {
      return "unix://" + found->second.proxy->path();
    }
    Close(component);  // its user changed: the socket must be the new user's alone
  }
  const std::string path = SocketPathFor(component);
  if (path.size() > kMaxSocketPath) {
    return MakeError("DOCKER_SOCKET_PATH_TOO_LONG",
                     "cannot make a Docker socket for " + component + ": " + path +
                         " is longer than a Unix socket path may be");
  }
  // Only the runtime may write the folder (0711: components reach their own socket, list
  // nothing), so nobody can swap a socket for a symlink before it is chowned. A folder
  // someone else made first (the /tmp fallback) is refused.
  const fs::path dir = fs::path(path).parent_path();
  std::error_code ec;
  fs::create_directories(dir.parent_path(), ec);
  if (::mkdir(dir.c_str(), 0711) != 0 && errno != EEXIST) {
    return MakeError("DOCKER_SOCKET_DIR",
                     "cannot make " + dir.string() + ": " + std::strerror(errno));
  }
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != ::geteuid() ||
      (st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    return MakeError("DOCKER_SOCKET_DIR",
                     "refusing to put Docker sockets in " + dir.string() +
                         ": it must be a folder owned by the runtime's user that only it may "
                         "write");
  }
  ::chmod(dir.c_str(), 0711);
  SocketProxyOptions proxy_options;
  proxy_options.upstream = options_.engine.socket_path;
  proxy_options.labels = {{std::string(kComponentLabel), component},
                          {std::string(kRootLabel), options_.root}};
  proxy_options.owner = owner;
  proxy_options.group = group;
  if (options_.on_output) {
    proxy_options.on_container_started = [this, component](const std::string& id) {
      Follow(component, id);
    };
    // Attached before it starts (docker-compose up, docker run): its client prints it.
    proxy_options.on_container_attached = [this](const std::string& id) {
      if (attached_.size() >= 4 * kMaxFollowers) attached_.clear();  // never started: bound
      attached_.insert(id);
    };
  }
  auto proxy = std::make_unique<SocketProxy>(io_, path, std::move(proxy_options));
  auto started = proxy->Start();
  if (!started.ok()) return started.error();
  Entry entry;
  entry.proxy = std::move(proxy);
  entry.owner = owner;
  entry.group = group;
  auto& placed = entries_[component] = std::move(entry);
  return "unix://" + placed.proxy->path();
}

void ContainerJanitor::Close(const std::string& component) {
  auto found = entries_.find(component);
  if (found == entries_.end()) return;
  found->second.proxy->Stop();
  entries_.erase(found);
}

void ContainerJanitor::Clean(const std::string& component, std::chrono::milliseconds grace,
                             std::function<void()> done,
                             std::chrono::milliseconds wait_for_daemon) {
  auto found = entries_.find(component);
  const uint64_t created = found == entries_.end() ? 0 : found->second.proxy->containers_created();
  const bool dirty = created != 0 && created != found->second.cleaned;
  // A component that never made a container needs nothing from Docker; one that did gets
  // the daemon's answer checked before it starts, so that its `docker run` does not fail
  // (and count towards BROKEN) while the daemon restarts.
  const bool wait = created != 0 && wait_for_daemon.count() > 0;
  if (!dirty && !wait) {
    if (done) done();
    return;
  }
  // Whatever is created from here on (nothing should be: the processes are gone) is
  // left for the next cleanup.
  if (dirty) found->second.cleaned = created;
  auto finish = std::make_shared<std::function<void()>>(std::move(done));
  std::weak_ptr<bool> alive = alive_;
  const bool spawned = Spawn([this, component, grace, finish, alive, dirty, wait_for_daemon] {
    auto messages = std::make_shared<Messages>();
    const std::map<std::string, std::string> labels = {
        {std::string(kComponentLabel), component}, {std::string(kRootLabel), options_.root}};
    bool complete = !dirty || RemoveLabelled(labels, grace, component, *messages) >= 0;
    const Engine engine(options_.engine);
    if ((!dirty || !complete) && wait_for_daemon.count() > 0 && !engine.Ping().ok()) {
      // Said now, not with the rest: the wait may last a while.
      boost::asio::post(io_, [this, alive, component, wait_for_daemon] {
        if (!alive.lock()) return;
        Log({{component, "the Docker daemon does not answer; the start waits up to " +
                             std::to_string(wait_for_daemon.count() / 1000) + " s for it"}});
      });
      const auto deadline = std::chrono::steady_clock::now() + wait_for_daemon;
      bool back = false;
      while (!back && !stopping_ && !stop_waiting_ &&
             std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
        back = engine.Ping().ok();
      }
      messages->emplace_back(component, back ? "the Docker daemon answers again"
                                             : "the Docker daemon did not answer within " +
                                                   std::to_string(wait_for_daemon.count() / 1000) +
                                                   " s; starting anyway");
      if (back && dirty) complete = RemoveLabelled(labels, grace, component, *messages) >= 0;
    }
    boost::asio::post(io_, [this, finish, alive, messages, complete, component] {
      if (!alive.lock()) return;
      Log(*messages);
      // Not all gone (the daemon was restarting, ...): the next cleanup tries again.
      if (auto e = entries_.find(component); !complete && e != entries_.end())
        e->second.cleaned = 0;
      if (*finish) (*finish)();
    });
  });
  if (!spawned) {
    if (dirty) found->second.cleaned = 0;  // out of threads: tried again next time
    if (*finish) (*finish)();
  }
}

bool ContainerJanitor::Spawn(std::function<void()> work) {
  ReapWorkers();
  auto finished = std::make_shared<std::atomic<bool>>(false);
  std::thread worker;
  try {
    worker = std::thread([work = std::move(work), finished] {
      work();
      finished->store(true);
    });
  } catch (const std::system_error&) {
    return false;  // out of threads: the caller degrades, the runtime stays up
  }
  std::lock_guard lock(workers_mutex_);
  workers_.emplace_back(std::move(worker), finished);
  return true;
}

void ContainerJanitor::Follow(const std::string& component, const std::string& id) {
  // One follower per container (a start of a running container comes through again),
  // and a bound on them all: each is a thread.
  if (followed_.count(id) != 0) return;
  if (attached_.erase(id) != 0) return;  // a client shows its output already
  if (followed_.size() >= kMaxFollowers) {
    Log({{component, "not following container " + id.substr(0, 12) + ": already following " +
                         std::to_string(kMaxFollowers) + " containers"}});
    return;
  }
  followed_.insert(id);
  std::weak_ptr<bool> alive = alive_;
  const bool spawned = Spawn([this, component, id, alive] {
    struct Unfollow {  // whatever way the follow ends
      ContainerJanitor* self;
      std::weak_ptr<bool> alive;
      std::string id;
      ~Unfollow() {
        boost::asio::post(self->io_, [s = self, a = alive, i = id] {
          if (a.lock()) s->followed_.erase(i);
        });
      }
    } unfollow{this, alive, id};
    Engine engine(options_.engine);
    auto details = engine.InspectContainer(id);
    // An attached client (`docker run` without -d, `docker-compose up`) prints the
    // output itself, into the component's log already.
    if (!details.ok() || details->attach_stdout) return;
    // The start request has gone through the proxy, but the daemon may not have started
    // the container yet; asking for a created container's logs would end at once.
    for (int i = 0; i < 200 && details.ok() && details->state == "created" && !stopping_; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
      details = engine.InspectContainer(id);
    }
    if (!details.ok()) return;
    const std::string name = details->name.empty() ? id.substr(0, 12) : details->name;
    auto followed = engine.FollowLogs(
        id, details->tty,
        [&](LogStream stream, std::string_view line) {
          boost::asio::post(io_, [this, alive, component, name, stream, text = std::string(line)] {
            if (alive.lock() && options_.on_output)
              options_.on_output(component, name, stream, text);
          });
        },
        &stopping_,
        [&engine, &id] {
          // Only while the container may still print: see FollowLogs.
          auto now = engine.InspectContainer(id);
          return now.ok() && (now->state == "running" || now->state == "created" ||
                              now->state == "restarting" || now->state == "paused");
        });
    if (!followed.ok() && followed.error().code != kDockerContainerNotFound) {
      boost::asio::post(io_, [this, alive, component, message = followed.error().message] {
        if (alive.lock()) Log({{component, "stopped following a container's output: " + message}});
      });
    }
  });
  if (!spawned) followed_.erase(id);
}

int ContainerJanitor::CleanAll(std::chrono::milliseconds grace) {
  for (auto& [name, entry] : entries_) entry.cleaned = entry.proxy->containers_created();
  Messages messages;
  const int removed =
      RemoveLabelled({{std::string(kRootLabel), options_.root}}, grace, "", messages);
  Log(messages);
  return std::max(removed, 0);
}

void ContainerJanitor::Log(const Messages& messages) const {
  if (!options_.log) return;
  for (const auto& [component, text] : messages) options_.log(component, text);
}

int ContainerJanitor::RemoveLabelled(const std::map<std::string, std::string>& labels,
                                     std::chrono::milliseconds grace, const std::string& who,
                                     Messages& messages) const {
  std::mutex mutex;  // the removals below run in parallel
  auto log = [&](const std::string& component, const std::string& message) {
    std::lock_guard lock(mutex);
    messages.emplace_back(component, message);
  };
  Engine engine(options_.engine);
  auto containers = engine.ListContainers(labels, /*all=*/true);
  if (!containers.ok()) {
    log(who, "cannot list its containers: " + containers.error().message);
    return -1;
  }
  const auto seconds = std::chrono::seconds(std::max<int64_t>(
      0, std::chrono::duration_cast<std::chrono::seconds>(grace + std::chrono::milliseconds(999))
             .count()));
  // In parallel: each stop may wait the whole grace period.
  std::vector<std::future<bool>> removals;
  for (const auto& c : *containers) {
    removals.push_back(std::async(std::launch::async, [this, c, seconds, &log]() {
      const std::string owner = c.labels.count(std::string(kComponentLabel))
                                    ? c.labels.at(std::string(kComponentLabel))
                                    : "";
      const std::string name = c.names.empty() ? c.id.substr(0, 12) : c.names.front();
      Engine own(options_.engine);  // one per thread
      if (c.state == "running" || c.state == "restarting" || c.state == "paused") {
        auto stopped = own.StopContainer(c.id, seconds);
        if (!stopped.ok() && stopped.error().code != kDockerContainerNotFound) {
          log(owner, "cannot stop container " + name + ": " + stopped.error().message);
        }
      }
      auto removed = own.RemoveContainer(c.id, /*force=*/true);
      if (!removed.ok() && removed.error().code != kDockerContainerNotFound) {
        log(owner, "cannot remove container " + name + ": " + removed.error().message);
        return false;
      }
      log(owner, "removed container " + name + " (" + c.image + ")");
      return true;
    }));
  }
  int removed = 0;
  bool all = true;
  for (auto& r : removals) {
    const bool ok = r.get();
    removed += ok ? 1 : 0;
    all = all && ok;
  }
  // Then the networks (docker-compose's), as `docker-compose down` removes them; volumes
  // hold data and stay, as they do after `down` without -v.
  auto networks = engine.ListNetworks(labels);
  if (!networks.ok()) {
    log(who, "cannot list its networks: " + networks.error().message);
    return -1;
  }
  for (const auto& [id, name] : *networks) {
    auto gone = engine.RemoveNetwork(id);
    if (!gone.ok()) {
      log(who, "cannot remove network " + name + ": " + gone.error().message);
      all = false;
      continue;
    }
    log(who, "removed network " + name);
  }
  return all ? removed : -1;
}

void ContainerJanitor::ReapWorkers() {
  std::lock_guard lock(workers_mutex_);
  for (auto it = workers_.begin(); it != workers_.end();) {
    if (it->second->load()) {
      it->first.join();
      it = workers_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace lichen::docker
