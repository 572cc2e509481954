#include "lifecycle/process.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <cerrno>
#include <csignal>
#include <cstring>

#include "lifecycle/cgroup.h"
#include "lifecycle/child_reaper.h"

namespace lichen::lifecycle {
namespace {

// After the shell exits, how long to keep reading output that is still in flight
// before reporting the exit (background children may hold the pipes open forever).
constexpr std::chrono::milliseconds kDrainAfterExit{200};

std::string ErrnoText(int err) { return std::strerror(err); }

Result<std::string> FindShell(const std::string& program, const std::string& path_env) {
  const std::string path = path_env.empty() ? "/usr/local/bin:/usr/bin:/bin" : path_env;
  if (auto found = SearchPath(program, path)) return *found;
  if (program.find('/') != std::string::npos) {
    return MakeError("shell '" + program + "' cannot be executed: " + ErrnoText(errno));
  }
  return MakeError("shell '" + program + "' was not found on PATH (" + path + ")");
}

bool ParseId(const std::string& s, unsigned long* out) {
  if (s.empty() || s.size() > 10) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  *out = std::stoul(s);
  return true;
}

}  // namespace

std::optional<std::string> SearchPath(const std::string& program, const std::string& path) {
  if (program.empty()) return std::nullopt;
  if (program.find('/') != std::string::npos) {
    return ::access(program.c_str(), X_OK) == 0 ? std::optional<std::string>(program)
                                                : std::nullopt;
  }
  size_t start = 0;
  while (start <= path.size()) {
    size_t colon = path.find(':', start);
    std::string dir =
        path.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
    if (dir.empty()) dir = ".";  // an empty PATH entry means the current directory
    std::string candidate = dir + "/" + program;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  return std::nullopt;
}

Result<RunAs> LookupRunAs(const std::string& posix_user) {
  const auto colon = posix_user.find(':');
  const std::string user = posix_user.substr(0, colon);
  const std::string group = colon == std::string::npos ? "" : posix_user.substr(colon + 1);
  if (user.empty()) return MakeError("posixUser '" + posix_user + "' names no user");

  RunAs out;
  std::vector<char> buf(16384);
  struct passwd pw {};
  struct passwd* found = nullptr;
  unsigned long id = 0;
  int rc = ParseId(user, &id)
               ? ::getpwuid_r(static_cast<uid_t>(id), &pw, buf.data(), buf.size(), &found)
               : ::getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &found);
  if (rc != 0 || found == nullptr) {
    if (ParseId(user, &id)) {
      // A numeric uid without a passwd entry is legal (containers do this).
      out.user = user;
      out.uid = static_cast<uid_t>(id);
      out.gid = static_cast<gid_t>(id);
    } else {
      return MakeError("user '" + user + "' does not exist on this device");
    }
  } else {
    out.user = pw.pw_name;
    out.uid = pw.pw_uid;
    out.gid = pw.pw_gid;
    out.home = pw.pw_dir;
  }
  if (!group.empty()) {
    struct group gr {};
    struct group* gfound = nullptr;
    rc = ParseId(group, &id)
             ? ::getgrgid_r(static_cast<gid_t>(id), &gr, buf.data(), buf.size(), &gfound)
             : ::getgrnam_r(group.c_str(), &gr, buf.data(), buf.size(), &gfound);
    if (rc == 0 && gfound != nullptr) {
      out.gid = gr.gr_gid;
    } else if (ParseId(group, &id)) {
      out.gid = static_cast<gid_t>(id);
    } else {
      return MakeError("group '" + group + "' does not exist on this device");
    }
  }
  // Supplementary groups: membership in e.g. `docker` is what lets a component use
  // the Docker socket.
  if (found != nullptr) {
    int n = 64;
    std::vector<gid_t> groups(static_cast<size_t>(n));
    if (::getgrouplist(out.user.c_str(), out.gid, groups.data(), &n) == -1 && n > 64) {
      groups.resize(static_cast<size_t>(n));
      ::getgrouplist(out.user.c_str(), out.gid, groups.data(), &n);
    }
    groups.resize(static_cast<size_t>(std::max(n, 0)));
    out.groups = std::move(groups);
  }
  if (out.groups.empty()) out.groups.push_back(out.gid);
  return out;
}

Process::Process(asio::io_context& io, LineHandler on_line, ExitHandler on_exit)
    : io_(io),
      on_line_(std::move(on_line)),
      on_exit_(std::move(on_exit)),
      out_(io),
      err_(io),
      kill_timer_(io) {}

Result<std::unique_ptr<Process>> Process::Start(asio::io_context& io, const ProcessSpec& spec,
                                                LineHandler on_line, ExitHandler on_exit) {
  struct stat st {};
  if (::stat(spec.working_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return MakeError("working directory '" + spec.working_dir + "' does not exist");
  }
  std::string path_env;
  for (const auto& [k, v] : spec.env) {
    if (k == "PATH") path_env = v;
  }
  auto shell = FindShell(spec.shell, path_env);
  if (!shell) return shell.error();

  // Everything the child needs is prepared now: after fork only async-signal-safe
  // calls are allowed.
  std::vector<std::string> env_storage;
  env_storage.reserve(spec.env.size());
  for (const auto& [k, v] : spec.env) env_storage.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& e : env_storage) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string arg0 = spec.shell, arg1 = "-c", arg2 = spec.script;
  std::vector<char*> argv = {arg0.data(), arg1.data(), arg2.data(), nullptr};

  int out_pipe[2], err_pipe[2], exec_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) return MakeError("pipe: " + ErrnoText(errno));
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    return MakeError("pipe: " + ErrnoText(errno));
  }
  if (::pipe2(exec_pipe, O_CLOEXEC) != 0) {
    for (int fd : {out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1]}) ::close(fd);
    return MakeError("pipe: " + ErrnoText(errno));
  }
  int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);

  // The child joins its own cgroup before exec (while it may still write there).
  std::string cgroup;
  std::string cgroup_procs;
  if (!spec.cgroup_parent.empty()) {
    static uint64_t counter = 0;
    cgroup =
        spec.cgroup_parent + "/p" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
    if (MakeCgroup(cgroup)) {
      cgroup_procs = cgroup + "/cgroup.procs";
    } else {
      cgroup.clear();
    }
  }

  // The SIGCHLD handler must exist before the child can exit, or that exit is missed.
  ChildReaper& reaper = ReaperFor(io);
  const pid_t pid = ::fork();
  if (pid == 0) {
    // Child.
    ::setpgid(0, 0);
    if (!cgroup_procs.empty()) {
      int cg = ::open(cgroup_procs.c_str(), O_WRONLY | O_CLOEXEC);
      if (cg >= 0) {
        ssize_t ignored_write = ::write(cg, "0", 1);
        (void)ignored_write;
        ::close(cg);
      }
    }
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int sig = 1; sig < NSIG; ++sig) ::signal(sig, SIG_DFL);
    int err = 0;
    if (devnull >= 0) ::dup2(devnull, STDIN_FILENO);
    if (::dup2(out_pipe[1], STDOUT_FILENO) < 0 || ::dup2(err_pipe[1], STDERR_FILENO) < 0)
      err = errno;
    if (err == 0 && ::chdir(spec.working_dir.c_str()) != 0) err = errno;
    if (err == 0 && spec.run_as) {
      const RunAs& u = *spec.run_as;
      if (::setgroups(u.groups.size(), u.groups.data()) != 0 || ::setgid(u.gid) != 0 ||
          ::setuid(u.uid) != 0) {
        err = errno;
      }
    }
    if (err == 0) {
      // No runtime descriptor leaks into scripts: mark them all close-on-exec (the
      // error pipe must stay usable until exec succeeds).
      constexpr unsigned kCloseRangeCloexec = 1U << 2;
      ::syscall(SYS_close_range, 3U, ~0U, kCloseRangeCloexec);
      ::execve(shell->c_str(), argv.data(), envp.data());
      err = errno;
    }
    ssize_t ignored = ::write(exec_pipe[1], &err, sizeof(err));
    (void)ignored;
    ::_exit(127);
  }
  const int fork_errno = errno;
  if (devnull >= 0) ::close(devnull);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  ::close(exec_pipe[1]);
  if (pid < 0) {
    for (int fd : {out_pipe[0], err_pipe[0], exec_pipe[0]}) ::close(fd);
    if (!cgroup.empty()) RemoveCgroup(cgroup);
    return MakeError("fork: " + ErrnoText(fork_errno));
  }
  ::setpgid(pid, pid);  // also from the parent, so the group exists before we signal it
  if (spec.on_forked) spec.on_forked(pid);

  int child_err = 0;
  ssize_t n;
  do {
    n = ::read(exec_pipe[0], &child_err, sizeof(child_err));
  } while (n < 0 && errno == EINTR);
  ::close(exec_pipe[0]);

  std::unique_ptr<Process> p(new Process(io, std::move(on_line), std::move(on_exit)));
  p->pid_ = pid;
  p->cgroup_ = cgroup;
  if (n == static_cast<ssize_t>(sizeof(child_err))) {
    // The child failed before exec and exits with 127; the reaper collects it.
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    p->exit_code_ = 127;
    std::string what = spec.run_as ? " as " + spec.run_as->user : "";
    return MakeError("cannot start '" + spec.shell + "'" + what + ": " + ErrnoText(child_err));
  }
  p->out_.assign(out_pipe[0]);
  p->err_.assign(err_pipe[0]);
  std::weak_ptr<bool> alive = p->alive_;
  Process* raw = p.get();
  reaper.Watch(pid, [alive, raw](int code) {
    if (alive.lock()) raw->OnExit(code);
  });
  // Belt and braces: collect an exit that happened before the handler was armed.
  asio::post(io, [&reaper] { reaper.ReapNow(); });
  p->ReadLoop(OutputStream::kStdout);
  p->ReadLoop(OutputStream::kStderr);
  return p;
}

Process::~Process() {
  *alive_ = false;
  if (pid_ > 0) {
    if (GroupAlive()) ::kill(-pid_, SIGKILL);
    if (!exit_code_) ReaperFor(io_).Forget(pid_);  // the reaper still reaps it
  }
  if (!cgroup_.empty()) {
    KillCgroup(cgroup_);
    // The cgroup can be removed once the kernel has taken the killed processes out.
    auto retry = std::make_shared<asio::steady_timer>(io_);
    auto attempts = std::make_shared<int>(0);
    auto remove = std::make_shared<std::function<void()>>();
    *remove = [retry, attempts, remove, path = cgroup_] {
      if (RemoveCgroup(path) || ++*attempts > 200) {
        *remove = nullptr;  // breaks the self-reference
        return;
      }
      retry->expires_after(std::chrono::milliseconds(10));
      retry->async_wait([remove](const boost::system::error_code&) {
        if (*remove) (*remove)();
      });
    };
    (*remove)();
  }
  boost::system::error_code ignored;
  out_.close(ignored);
  err_.close(ignored);
  kill_timer_.cancel();
}

void Process::ReadLoop(OutputStream which) {
  auto& stream = which == OutputStream::kStdout ? out_ : err_;
  auto& buf = which == OutputStream::kStdout ? out_buf_ : err_buf_;
  std::weak_ptr<bool> alive = alive_;
  stream.async_read_some(asio::buffer(buf),
                         [this, alive, which](const boost::system::error_code& ec, size_t n) {
                           if (!alive.lock()) return;
                           auto& s = which == OutputStream::kStdout ? out_ : err_;
                           auto& b = which == OutputStream::kStdout ? out_buf_ : err_buf_;
                           if (ec) {
                             Deliver(which, {}, true);
                             boost::system::error_code ignored;
                             s.close(ignored);
                             if (exit_code_ && !out_.is_open() && !err_.is_open() && on_exit_) {
                               // Output is complete: report the exit now instead of waiting for the
                               // drain timer.
                               kill_timer_.cancel();
                             }
                             return;
                           }
                           Deliver(which, std::string_view(b.data(), n), false);
                           ReadLoop(which);
                         });
}

void Process::Deliver(OutputStream which, std::string_view data, bool eof) {
  std::string& partial = which == OutputStream::kStdout ? out_partial_ : err_partial_;
  partial.append(data);
  size_t start = 0;
  while (true) {
    const size_t nl = partial.find('\n', start);
    const size_t end = nl == std::string::npos ? partial.size() : nl;
    if (end - start >= kMaxLineBytes) {
      // An overlong line is cut into pieces rather than buffered without bound.
      if (on_line_) on_line_(which, std::string_view(partial).substr(start, kMaxLineBytes));
      start += kMaxLineBytes;
      continue;
    }
    if (nl == std::string::npos) break;
    std::string_view line(partial.data() + start, nl - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (on_line_) on_line_(which, line);
    start = nl + 1;
  }
  partial.erase(0, start);
  if (eof && !partial.empty()) {
    if (on_line_) on_line_(which, partial);
    partial.clear();
  }
}

void Process::OnExit(int exit_code) {
  exit_code_ = exit_code;
  auto report = [this] {
    ExitHandler cb = std::move(on_exit_);
    on_exit_ = nullptr;
    if (cb) cb(*exit_code_);
  };
  if (!out_.is_open() && !err_.is_open()) {
    report();
    return;
  }
  // Let in-flight output arrive first, but never wait on background children that
  // keep the pipes open.
  std::weak_ptr<bool> alive = alive_;
  kill_timer_.expires_after(kDrainAfterExit);
  kill_timer_.async_wait([alive, report](const boost::system::error_code&) {
    if (alive.lock()) report();
  });
}

void Process::Stop(std::chrono::milliseconds grace) {
  if (pid_ <= 0 || !GroupAlive()) return;
  ::kill(-pid_, SIGTERM);
  ::kill(-pid_, SIGCONT);  // a stopped process cannot act on SIGTERM
  if (!cgroup_.empty()) {
    SignalCgroup(cgroup_, SIGTERM);  // also those that left the group
    SignalCgroup(cgroup_, SIGCONT);
  }
  auto escalate = std::make_shared<asio::steady_timer>(io_, grace);
  const pid_t group = pid_;
  escalate->async_wait([escalate, group, cgroup = cgroup_](const boost::system::error_code&) {
    // Runs even if the Process is gone: nothing of the group may outlive a stop.
    if (::kill(-group, 0) == 0) ::kill(-group, SIGKILL);
    if (!cgroup.empty()) KillCgroup(cgroup);
  });
}

bool Process::GroupAlive() const {
  if (pid_ <= 0) return false;
  if (::kill(-pid_, 0) == 0 || errno == EPERM) return true;
  return !cgroup_.empty() && CgroupPopulated(cgroup_);
}

}  // namespace lichen::lifecycle
