// One SIGCHLD handler per io_context: reaps every child that exits and hands the
// exit status to whoever registered that pid. Unknown pids (orphans re-parented to
// the runtime when it is a child subreaper) are reaped and ignored, so no zombie is
// left behind.
//
// Registration happens on the io_context's thread right after fork, before the
// loop can run a reap, so no exit is ever missed. Code in the same process that
// forks and waits on its own children would race with this reaper; Lichen does
// not do that.
#pragma once

#include <sys/types.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <functional>
#include <map>

namespace lichen::lifecycle {

class ChildReaper : public boost::asio::io_context::service {
 public:
  static boost::asio::io_context::id id;
  using Callback = std::function<void(int exit_code)>;  // exit code, or 128 + signal

  explicit ChildReaper(boost::asio::io_context& io);

  void Watch(pid_t pid, Callback callback);
  void Forget(pid_t pid);
  // Reaps whatever has exited by now and calls the callbacks.
  void ReapNow();

 private:
  void shutdown() override;
  void Arm();

  boost::asio::signal_set signals_;
  std::map<pid_t, Callback> watched_;
};

// The reaper of `io` (created on first use).
inline ChildReaper& ReaperFor(boost::asio::io_context& io) {
  return boost::asio::use_service<ChildReaper>(io);
}

}  // namespace lichen::lifecycle
