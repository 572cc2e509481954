#include "lifecycle/child_reaper.h"

#include <sys/wait.h>

#include <csignal>

namespace lichen::lifecycle {

boost::asio::io_context::id ChildReaper::id;

ChildReaper::ChildReaper(boost::asio::io_context& io)
    : boost::asio::io_context::service(io), signals_(io, SIGCHLD) {
  Arm();
}

void ChildReaper::shutdown() {
  boost::system::error_code ignored;
  signals_.cancel(ignored);
  watched_.clear();
}

void ChildReaper::Arm() {
  signals_.async_wait([this](const boost::system::error_code& ec, int) {
    if (ec) return;  // cancelled at shutdown
    ReapNow();
    Arm();
  });
}

void ChildReaper::Watch(pid_t pid, Callback callback) { watched_[pid] = std::move(callback); }

void ChildReaper::Forget(pid_t pid) { watched_.erase(pid); }

void ChildReaper::ReapNow() {
  // SIGCHLD coalesces: one signal may stand for many exits, so reap until none is left.
  for (int guard = 0; guard < 1 << 20; ++guard) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) return;
    int code = WIFEXITED(status) ? WEXITSTATUS(status)
                                 : (WIFSIGNALED(status) ? 128 + WTERMSIG(status) : 255);
    auto it = watched_.find(pid);
    if (it == watched_.end()) continue;
    Callback cb = std::move(it->second);
    watched_.erase(it);
    cb(code);
  }
}

}  // namespace lichen::lifecycle
