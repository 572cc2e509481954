// Running one lifecycle script: `shell -c script` in its own process group, as a
// given user, with a given environment and working directory, its stdout and
// stderr delivered line by line, and a way to stop the whole group.
//
// Everything happens on the io_context's thread; handlers are called there.
// Children are reaped centrally (see ChildReaper) so that orphans re-parented to
// the runtime (it is a child subreaper) are reaped too.
#pragma once

#include <sys/types.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

namespace lichen::lifecycle {

namespace asio = boost::asio;

// A resolved POSIX identity (looked up before fork: lookups are not safe after it).
struct RunAs {
  std::string user;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups
  std::string home;
};

// Resolves "user" or "user:group" (names or numeric ids). The group defaults to the
// user's primary group.
Result<RunAs> LookupRunAs(const std::string& posix_user);

// The executable `program` resolves to on `path` (a PATH value), as a shell would
// find it; a name with a '/' is checked as given.
std::optional<std::string> SearchPath(const std::string& program, const std::string& path);

struct ProcessSpec {
  std::string shell = "sh";
  std::string script;
  std::vector<std::pair<std::string, std::string>> env;  // the complete environment
  std::string working_dir;
  std::optional<RunAs> run_as;  // unset: the runtime's own identity
  // A cgroup v2 directory; when set, the process runs in a new cgroup below it, so a
  // stop reaches descendants that left the process group. Empty: process group only.
  std::string cgroup_parent;
  // Called in the parent right after fork, before the child has exec'd: the runtime
  // records the new group at once, so a crash in between leaves nothing unrecorded.
  std::function<void(pid_t)> on_forked;
};

enum class OutputStream { kStdout, kStderr };

// Longest line delivered whole; longer output is split at this size.
inline constexpr size_t kMaxLineBytes = 64 * 1024;

class Process {
 public:
  using LineHandler = std::function<void(OutputStream, std::string_view line)>;
  // Exit code of the shell, or 128 + signal number when a signal ended it.
  using ExitHandler = std::function<void(int exit_code)>;

  // Starts the process. Handlers must stay valid while the Process lives; none is
  // called after the Process is destroyed. Fails (without leaving a child behind)
  // when the working directory, user or shell cannot be used.
  static Result<std::unique_ptr<Process>> Start(asio::io_context& io, const ProcessSpec& spec,
                                                LineHandler on_line, ExitHandler on_exit);

  // Destroying a Process kills its whole group with SIGKILL if anything is left.
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  bool exited() const { return exit_code_.has_value(); }
  std::optional<int> exit_code() const { return exit_code_; }

  // Sends SIGTERM to every process in the group, then SIGKILL after `grace` to
  // whatever is left. Safe to call repeatedly and after the shell has exited (its
  // background children are still in the group).
  void Stop(std::chrono::milliseconds grace);

  // Whether any process of the group is still alive.
  bool GroupAlive() const;

 private:
  Process(asio::io_context& io, LineHandler on_line, ExitHandler on_exit);
  void ReadLoop(OutputStream which);
  void OnExit(int exit_code);
  void Deliver(OutputStream which, std::string_view data, bool eof);

  asio::io_context& io_;
  LineHandler on_line_;
  ExitHandler on_exit_;
  pid_t pid_ = -1;
  std::string cgroup_;  // this process's own cgroup, when it has one
  std::optional<int> exit_code_;
  asio::posix::stream_descriptor out_;
  asio::posix::stream_descriptor err_;
  asio::steady_timer kill_timer_;
  std::string out_partial_, err_partial_;
  // Small: longer output arrives in several reads and is joined in *_partial_; every
  // running process holds two of these.
  std::array<char, 4 * 1024> out_buf_, err_buf_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace lichen::lifecycle
