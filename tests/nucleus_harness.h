// A test fixture helper for driving the real daemon: a temporary root, a runtime
// configuration, `lichen nucleus` as a child process, the `lichen` CLI with bounded
// waits, signals, and a /proc scan for processes that belong to the root.
//
// Every wait here is bounded and polls a condition against a deadline; nothing sleeps
// to hide a race. Header-only: each test binary includes it once.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "ipc/client.h"
#include "lifecycle/cgroup.h"
#include "nucleus/cli_ipc_info.h"
#include "nucleus/nucleus.h"

#ifndef LICHEN_BINARY
#error "LICHEN_BINARY must name the built lichen executable"
#endif

namespace lichen::harness {

namespace fs = std::filesystem;
using Json = recipe::Json;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using namespace std::chrono_literals;

// ---------------------------------------------------------------------------------------
// Small utilities

inline std::string SourceDir() {
  const char* env = std::getenv("LICHEN_SOURCE_DIR");
  if (env != nullptr && *env != '\0') return env;
  return fs::path(__FILE__).parent_path().parent_path().string();
}

inline std::string LichenBinary() { return LICHEN_BINARY; }

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

inline void WriteFile(const std::string& path, const std::string& text, mode_t mode = 0644) {
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  ::chmod(path.c_str(), mode);
}

// Polls `condition` until it holds or `timeout` passes; returns whether it held.
inline bool WaitFor(const std::function<bool()>& condition, milliseconds timeout,
                    milliseconds poll = 20ms) {
  const auto deadline = Clock::now() + timeout;
  while (true) {
    if (condition()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(poll);
  }
}

inline size_t CountOccurrences(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

// Creates ggc_user:ggc_group when missing (the user examples/hello/config.yaml names).
inline void EnsureGgcUser() {
  if (::getgrnam("ggc_group") == nullptr) {
    (void)std::system("groupadd --system ggc_group >/dev/null 2>&1");
  }
  if (::getpwnam("ggc_user") == nullptr) {
    (void)std::system(
        "useradd --system -g ggc_group -M -s /usr/sbin/nologin ggc_user >/dev/null 2>&1");
  }
}

inline uid_t UidOf(const std::string& user) {
  const passwd* pw = ::getpwnam(user.c_str());
  return pw != nullptr ? pw->pw_uid : static_cast<uid_t>(-1);
}

// ---------------------------------------------------------------------------------------
// Child processes

struct CommandResult {
  int exit_code = -1;  // exit status, or 128 + signal
  std::string out;
  std::string err;
  bool timed_out = false;

  std::string Describe() const {
    return "exit " + std::to_string(exit_code) + (timed_out ? " (timed out)" : "") +
           "\n--- stdout ---\n" + out + "--- stderr ---\n" + err;
  }
};

inline int DecodeStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// A command started without waiting; Finish() collects it (bounded).
class RunningCommand {
 public:
  RunningCommand() = default;
  RunningCommand(const RunningCommand&) = delete;
  RunningCommand& operator=(const RunningCommand&) = delete;
  RunningCommand(RunningCommand&& o) noexcept { *this = std::move(o); }
  RunningCommand& operator=(RunningCommand&& o) noexcept {
    std::swap(pid_, o.pid_);
    std::swap(out_fd_, o.out_fd_);
    std::swap(err_fd_, o.err_fd_);
    return *this;
  }
  ~RunningCommand() {
    if (pid_ > 0) (void)Finish(0ms);
  }

  static RunningCommand Start(const std::vector<std::string>& argv) {
    RunningCommand c;
    int out[2], err[2];
    if (::pipe2(out, O_CLOEXEC) != 0) return c;
    if (::pipe2(err, O_CLOEXEC) != 0) {
      ::close(out[0]);
      ::close(out[1]);
      return c;
    }
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::setpgid(0, 0);
      ::dup2(out[1], STDOUT_FILENO);
      ::dup2(err[1], STDERR_FILENO);
      int devnull = ::open("/dev/null", O_RDONLY);
      if (devnull >= 0) ::dup2(devnull, STDIN_FILENO);
      ::execv(args[0], args.data());
      _exit(127);
    }
    ::close(out[1]);
    ::close(err[1]);
    if (pid < 0) {
      ::close(out[0]);
      ::close(err[0]);
      return c;
    }
    c.pid_ = pid;
    c.out_fd_ = out[0];
    c.err_fd_ = err[0];
    return c;
  }

  pid_t pid() const { return pid_; }

  // Reads its output until it exits or `timeout` passes (then it is killed).
  CommandResult Finish(milliseconds timeout) {
    CommandResult r;
    if (pid_ <= 0) {
      r.err = "could not start the command";
      return r;
    }
    const auto deadline = Clock::now() + timeout;
    while (out_fd_ >= 0 || err_fd_ >= 0) {
      const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) {
        r.timed_out = true;
        break;
      }
      pollfd fds[2];
      int n = 0;
      if (out_fd_ >= 0) fds[n++] = {out_fd_, POLLIN, 0};
      if (err_fd_ >= 0) fds[n++] = {err_fd_, POLLIN, 0};
      int ready = ::poll(fds, static_cast<nfds_t>(n), static_cast<int>(left));
      if (ready < 0 && errno != EINTR) break;
      for (int i = 0; i < n; ++i) {
        if (fds[i].revents == 0) continue;
        char buf[4096];
        ssize_t got = ::read(fds[i].fd, buf, sizeof buf);
        if (got > 0) {
          (fds[i].fd == out_fd_ ? r.out : r.err).append(buf, static_cast<size_t>(got));
        } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
          int& fd = fds[i].fd == out_fd_ ? out_fd_ : err_fd_;
          ::close(fd);
          fd = -1;
        }
      }
    }
    if (r.timed_out) ::kill(-pid_, SIGKILL);
    int status = 0;
    // The pipes closed: the command is exiting. Bound the reap anyway.
    bool reaped = WaitFor(
        [&] {
          pid_t w = ::waitpid(pid_, &status, WNOHANG);
          return w == pid_ || (w < 0 && errno == ECHILD);
        },
        r.timed_out ? 5000ms : std::max(timeout, 5000ms), 2ms);
    if (!reaped) {
      ::kill(-pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
      r.timed_out = true;
    }
    r.exit_code = r.timed_out ? -1 : DecodeStatus(status);
    for (int* fd : {&out_fd_, &err_fd_}) {
      if (*fd >= 0) ::close(*fd);
      *fd = -1;
    }
    pid_ = -1;
    return r;
  }

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  int err_fd_ = -1;
};

inline CommandResult RunCommand(const std::vector<std::string>& argv, milliseconds timeout = 30s) {
  return RunningCommand::Start(argv).Finish(timeout);
}

// ---------------------------------------------------------------------------------------
// /proc

struct ProcInfo {
  pid_t pid = 0;
  pid_t ppid = 0;
  pid_t pgid = 0;
  char state = '?';
  unsigned long long start_time = 0;  // clock ticks since boot
  uid_t uid = static_cast<uid_t>(-1);
  std::string cmdline;  // arguments joined by spaces
  std::string cwd;
  std::string environ;  // NUL-separated as in /proc
};

inline std::optional<ProcInfo> ReadProc(pid_t pid) {
  const std::string base = "/proc/" + std::to_string(pid);
  std::string stat = ReadFile(base + "/stat");
  auto close = stat.rfind(')');
  if (stat.empty() || close == std::string::npos) return std::nullopt;
  std::istringstream fields(stat.substr(close + 2));
  std::vector<std::string> f;
  for (std::string t; fields >> t && f.size() < 20;) f.push_back(t);
  if (f.size() < 20) return std::nullopt;
  ProcInfo p;
  p.pid = pid;
  p.state = f[0].empty() ? '?' : f[0][0];
  p.ppid = static_cast<pid_t>(std::atol(f[1].c_str()));
  p.pgid = static_cast<pid_t>(std::atol(f[2].c_str()));
  p.start_time = std::strtoull(f[19].c_str(), nullptr, 10);
  struct stat st {};
  if (::stat(base.c_str(), &st) == 0) p.uid = st.st_uid;
  p.cmdline = ReadFile(base + "/cmdline");
  for (char& c : p.cmdline) {
    if (c == '\0') c = ' ';
  }
  while (!p.cmdline.empty() && p.cmdline.back() == ' ') p.cmdline.pop_back();
  std::error_code ec;
  p.cwd = fs::read_symlink(base + "/cwd", ec).string();
  p.environ = ReadFile(base + "/environ");
  return p;
}

inline std::vector<ProcInfo> AllProcesses() {
  std::vector<ProcInfo> out;
  DIR* dir = ::opendir("/proc");
  if (dir == nullptr) return out;
  while (dirent* e = ::readdir(dir)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (end == nullptr || *end != '\0' || pid <= 1) continue;
    if (auto p = ReadProc(static_cast<pid_t>(pid))) out.push_back(std::move(*p));
  }
  ::closedir(dir);
  return out;
}

// Whether a process with this pid and start time still runs (zombies do not count).
inline bool StillRunning(const ProcInfo& p) {
  auto now = ReadProc(p.pid);
  return now && now->start_time == p.start_time && now->state != 'Z' && now->state != 'X';
}

inline std::string DescribeProcesses(const std::vector<ProcInfo>& procs) {
  std::string out;
  for (const auto& p : procs) {
    out += "  pid " + std::to_string(p.pid) + " ppid " + std::to_string(p.ppid) + " pgid " +
           std::to_string(p.pgid) + " uid " + std::to_string(p.uid) + " state " + p.state +
           " cwd " + p.cwd + ": " + p.cmdline + "\n";
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// CLI output

struct ComponentRow {
  std::string name;
  std::string version;
  std::string state;
  Json configuration;
};

// Whether `line` holds `label`; the text after it goes to `value`.
inline bool Take(const std::string& line, const std::string& label, std::string* value) {
  auto at = line.find(label);
  if (at == std::string::npos) return false;
  *value = line.substr(at + label.size());
  return true;
}

// `component list` / `component details` output, by component name.
inline std::map<std::string, ComponentRow> ParseComponents(const std::string& out) {
  std::map<std::string, ComponentRow> rows;
  ComponentRow* current = nullptr;
  std::istringstream in(out);
  std::string v;
  for (std::string line; std::getline(in, line);) {
    if (Take(line, "Component Name: ", &v)) {
      current = &rows[v];
      current->name = v;
    } else if (current == nullptr) {
      continue;
    } else if (Take(line, "Version: ", &v)) {
      current->version = v;
    } else if (Take(line, "State: ", &v)) {
      current->state = v;
    } else if (Take(line, "Configuration: ", &v)) {
      current->configuration = Json::parse(v, nullptr, false);
    }
  }
  return rows;
}

struct DeploymentRow {
  std::string id;
  std::string status;
  std::string detailed;
  std::string error_stack;
  std::string error_types;
  std::string cause;
};

inline bool IsFinalStatus(const std::string& s) {
  return s == "SUCCEEDED" || s == "FAILED" || s == "CANCELED" || s == "REJECTED";
}

// `deployment list` / `deployment status` / `create --wait` output, in order.
inline std::vector<DeploymentRow> ParseDeployments(const std::string& out) {
  std::vector<DeploymentRow> rows;
  std::istringstream in(out);
  std::string v;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("Local deployment submitted!", 0) == 0) continue;
    if (!line.empty() && line[0] != ' ' && line.find("Detailed Status: ") != 0 &&
        line.find("Deployment Error") != 0 && line.find("Failure Cause: ") != 0) {
      auto colon = line.find(": ");
      if (colon == std::string::npos) continue;
      DeploymentRow r;
      r.id = line.substr(0, colon);
      r.status = line.substr(colon + 2);
      rows.push_back(r);
      continue;
    }
    if (rows.empty()) continue;
    if (Take(line, "Detailed Status: ", &v)) {
      rows.back().detailed = v;
    } else if (Take(line, "Deployment Error Stack: ", &v)) {
      rows.back().error_stack = v;
    } else if (Take(line, "Deployment Error Types: ", &v)) {
      rows.back().error_types = v;
    } else if (Take(line, "Failure Cause: ", &v)) {
      rows.back().cause = v;
    }
  }
  return rows;
}

inline std::string SubmittedId(const std::string& out) {
  const std::string label = "Deployment Id: ";
  auto at = out.find(label);
  if (at == std::string::npos) return "";
  auto end = out.find('\n', at);
  return out.substr(at + label.size(), end == std::string::npos ? end : end - at - label.size());
}

// ---------------------------------------------------------------------------------------
// The daemon

struct NucleusOptions {
  // Extra directory levels so that the root path is at least this long (0: short).
  size_t min_root_length = 0;
  std::string thing_name = "LichenTestThing";
  std::string region = "us-west-2";
  std::string posix_user = "ggc_user:ggc_group";
  int stop_grace_ms = 500;
  int deployment_timeout_s = 20;
};

class Nucleus {
 public:
  explicit Nucleus(NucleusOptions options = {}) : options_(std::move(options)) {
    EnsureGgcUser();
    char tmpl[] = "/tmp/lichen-test-XXXXXX";
    const char* made = ::mkdtemp(tmpl);
    if (made == nullptr) {
      ADD_FAILURE() << "mkdtemp: " << std::strerror(errno);
      return;
    }
    dir_ = made;
    ::chmod(dir_.c_str(), 0755);  // components (ggc_user) reach their work folders through it
    std::string root = dir_;
    while (root.size() + 5 < options_.min_root_length) {
      root += "/" + std::string(std::min<size_t>(60, options_.min_root_length - root.size()), 'd');
    }
    root_ = root + "/root";
    std::error_code ec;
    fs::create_directories(root_, ec);
    for (fs::path p = root_; p.string().size() > dir_.size(); p = p.parent_path()) {
      ::chmod(p.c_str(), 0755);
    }
    config_path_ = dir_ + "/config.yaml";
    log_path_ = dir_ + "/daemon.out";
    WriteConfig(DefaultConfig());
  }

  ~Nucleus() {
    if (pid_ > 0) Kill9();
    KillLeftovers();
    // A killed daemon could not remove its component cgroups; they are this test's.
    if (const std::string base = nucleus::CgroupBaseFor(root_); !base.empty()) {
      lifecycle::KillAndRemoveCgroupTree(base);
    }
    // A sanitizer report from the daemon fails the test that ran it.
    const std::string output = ReadFile(log_path_);
    for (const char* marker : {"AddressSanitizer", "LeakSanitizer", "runtime error:"}) {
      if (output.find(marker) != std::string::npos) {
        ADD_FAILURE() << "the daemon reported " << marker << ":\n" << output;
        break;
      }
    }
    std::error_code ec;
    if (!link_.empty() && fs::is_symlink(link_, ec)) fs::remove(link_, ec);
    if (!dir_.empty() && std::getenv("LICHEN_KEEP_TEST_ROOT") == nullptr) {
      WaitFor(
          [&] {
            fs::remove_all(dir_, ec);
            return !fs::exists(dir_, ec);
          },
          2000ms);
    }
  }

  Nucleus(const Nucleus&) = delete;
  Nucleus& operator=(const Nucleus&) = delete;

  const std::string& dir() const { return dir_; }    // scratch folder holding the root
  const std::string& root() const { return root_; }  // --root
  const std::string& config_path() const { return config_path_; }
  const std::string& daemon_output_path() const { return log_path_; }
  pid_t pid() const { return pid_; }
  const NucleusOptions& options() const { return options_; }

  std::string DefaultConfig() const {
    return "system:\n  thingName: \"" + options_.thing_name +
           "\"\n"
           "services:\n  aws.greengrass.Nucleus:\n    configuration:\n"
           "      awsRegion: \"" +
           options_.region +
           "\"\n"
           "      runWithDefault:\n        posixUser: \"" +
           options_.posix_user +
           "\"\n"
           "      logging:\n        level: \"INFO\"\n        format: \"TEXT\"\n"
           "      lichen:\n        stopGraceMs: " +
           std::to_string(options_.stop_grace_ms) +
           "\n        deploymentTimeoutSeconds: " + std::to_string(options_.deployment_timeout_s) +
           "\n";
  }
  void WriteConfig(const std::string& yaml) { WriteFile(config_path_, yaml); }

  // Starts the daemon and waits (bounded) until its socket accepts connections with a
  // freshly written CLI token. Returns an explanation on failure.
  ::testing::AssertionResult Start(milliseconds timeout = 5000ms) {
    auto spawned = Spawn();
    if (!spawned) return spawned;
    return WaitReady(timeout);
  }

  // Starts the daemon without waiting for it.
  ::testing::AssertionResult Spawn() {
    if (pid_ > 0) return ::testing::AssertionFailure() << "already running";
    old_info_ = ReadFile(nucleus::CliIpcInfoPath(root_));
    std::vector<std::string> argv = {LichenBinary(), "nucleus",  "--root",
                                     root_,          "--config", config_path_};
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    const int out = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid == 0) {
      // The daemon must not outlive a test process that dies.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) _exit(126);
      if (out >= 0) {
        ::dup2(out, STDOUT_FILENO);
        ::dup2(out, STDERR_FILENO);
      }
      int devnull = ::open("/dev/null", O_RDONLY);
      if (devnull >= 0) ::dup2(devnull, STDIN_FILENO);
      ::execv(args[0], args.data());
      _exit(127);
    }
    if (out >= 0) ::close(out);
    if (pid < 0) return ::testing::AssertionFailure() << "fork: " << std::strerror(errno);
    pid_ = pid;
    return ::testing::AssertionSuccess();
  }

  // Waits (bounded) until the spawned daemon accepts connections with a new CLI token.
  ::testing::AssertionResult WaitReady(milliseconds timeout = 5000ms) {
    const std::string info_path = nucleus::CliIpcInfoPath(root_);
    std::string socket;
    const bool ready = WaitFor(
        [&] {
          if (!Alive()) return true;
          std::string info = ReadFile(info_path);
          if (info.empty() || info == old_info_) return false;
          auto parsed = nucleus::ReadCliIpcInfo(root_);
          if (!parsed.ok()) return false;
          socket = parsed->socket_path;
          return CanConnect(socket);
        },
        timeout, 10ms);
    if (!Alive()) {
      return ::testing::AssertionFailure() << "the daemon exited during startup ("
                                           << exit_code_.value_or(-1) << "); its output:\n"
                                           << ReadFile(log_path_);
    }
    if (!ready) {
      return ::testing::AssertionFailure() << "the daemon did not accept connections within "
                                           << timeout.count() << " ms; its output:\n"
                                           << ReadFile(log_path_);
    }
    socket_ = socket;
    if (socket_.rfind(root_, 0) != 0) link_ = fs::path(socket_).parent_path().string();
    return ::testing::AssertionSuccess();
  }

  // Whether the daemon process still runs (reaps it if it exited).
  bool Alive() {
    if (pid_ <= 0) return false;
    int status = 0;
    pid_t w = ::waitpid(pid_, &status, WNOHANG);
    if (w == pid_) {
      exit_code_ = DecodeStatus(status);
      pid_ = -1;
      return false;
    }
    return true;
  }

  void Signal(int sig) {
    if (pid_ > 0) ::kill(pid_, sig);
  }

  // Waits (bounded) for the daemon to exit; its exit code (128 + signal if killed).
  std::optional<int> WaitExit(milliseconds timeout) {
    if (pid_ <= 0) return exit_code_;
    if (!WaitFor([&] { return !Alive(); }, timeout, 5ms)) return std::nullopt;
    return exit_code_;
  }

  // SIGTERM and a bounded wait for a clean exit.
  std::optional<int> Stop(milliseconds timeout = 30000ms) {
    Signal(SIGTERM);
    return WaitExit(timeout);
  }

  // kill -9 and reap: what a crash looks like. Component processes stay behind.
  void Kill9() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    exit_code_ = DecodeStatus(status);
    pid_ = -1;
  }

  // The socket path the daemon listens on (from the CLI connection file).
  const std::string& socket_path() const { return socket_; }

  static bool CanConnect(const std::string& path) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path) {
      ::close(fd);
      return false;
    }
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    return ok;
  }

  // `lichen --root ROOT <args>`.
  CommandResult Cli(const std::vector<std::string>& args, milliseconds timeout = 30000ms) const {
    std::vector<std::string> argv = {LichenBinary(), "--root", root_};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, timeout);
  }
  RunningCommand CliAsync(const std::vector<std::string>& args) const {
    std::vector<std::string> argv = {LichenBinary(), "--root", root_};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunningCommand::Start(argv);
  }

  // One IPC call with the CLI's token, in process (fast polling).
  Result<Json> Ipc(const std::string& operation, const Json& request,
                   milliseconds timeout = 10000ms) const {
    auto info = nucleus::ReadCliIpcInfo(root_);
    if (!info.ok()) return info.error();
    ipc::IpcClient client;
    if (auto c = client.Connect(info->socket_path, info->auth_token, timeout); !c.ok()) {
      return c.error();
    }
    return client.Call("aws.greengrass#" + operation, request, timeout);
  }

  std::map<std::string, ComponentRow> Components() const {
    return ParseComponents(Cli({"component", "list"}).out);
  }
  std::optional<ComponentRow> Component(const std::string& name) const {
    auto rows = ParseComponents(Cli({"component", "details", "-n", name}).out);
    auto it = rows.find(name);
    if (it == rows.end()) return std::nullopt;
    return it->second;
  }
  std::string ComponentState(const std::string& name) const {
    auto reply = Ipc("GetComponentDetails", {{"componentName", name}});
    if (!reply.ok()) return "";
    return reply->value("componentDetails", Json::object()).value("state", "");
  }
  // Waits (bounded) until the component is in `state`.
  bool WaitState(const std::string& name, const std::string& state,
                 milliseconds timeout = 15000ms) const {
    return WaitFor([&] { return ComponentState(name) == state; }, timeout, 25ms);
  }

  // The deployment's status record (GetLocalDeploymentStatus), or null.
  Json DeploymentStatus(const std::string& id) const {
    auto reply = Ipc("GetLocalDeploymentStatus", {{"deploymentId", id}});
    if (!reply.ok()) return Json();
    return reply->value("deployment", Json());
  }
  // Waits (bounded) until the deployment is final; its `deployment status` CLI output.
  std::optional<DeploymentRow> WaitDeployment(const std::string& id,
                                              milliseconds timeout = 40000ms) const {
    bool final = WaitFor([&] { return IsFinalStatus(DeploymentStatus(id).value("status", "")); },
                         timeout, 25ms);
    if (!final) return std::nullopt;
    auto rows = ParseDeployments(Cli({"deployment", "status", "-i", id}).out);
    if (rows.empty()) return std::nullopt;
    return rows.front();
  }
  // Every deployment the daemon knows (ListLocalDeployments), oldest first.
  std::vector<Json> Deployments() const {
    std::vector<Json> out;
    auto reply = Ipc("ListLocalDeployments", Json::object());
    if (!reply.ok()) return out;
    for (const auto& d : reply->value("localDeployments", Json::array())) out.push_back(d);
    return out;
  }

  std::string LogPath(const std::string& component = "") const {
    return root_ + "/logs/" + (component.empty() ? "greengrass" : component) + ".log";
  }
  std::string Log(const std::string& component = "") const { return ReadFile(LogPath(component)); }
  // Waits (bounded; logs are flushed every 100 ms) until the log holds `text`.
  bool WaitLog(const std::string& component, const std::string& text,
               milliseconds timeout = 10000ms) const {
    return WaitFor([&] { return Log(component).find(text) != std::string::npos; }, timeout, 25ms);
  }

  std::string WorkDir(const std::string& component) const { return root_ + "/work/" + component; }

  // Live processes (zombies aside) that belong to this root: its path (or the short
  // socket link) in their command line or environment, or a working folder under it.
  // The daemon itself is left out.
  std::vector<ProcInfo> Processes() const {
    std::vector<std::string> needles = {root_};
    if (!link_.empty()) needles.push_back(link_ + "/");
    std::vector<ProcInfo> out;
    const pid_t self = ::getpid();
    for (auto& p : AllProcesses()) {
      if (p.pid == self || p.pid == pid_ || p.state == 'Z' || p.state == 'X') continue;
      bool mine = false;
      for (const auto& n : needles) {
        mine = mine || p.cwd.rfind(n, 0) == 0 || p.cmdline.find(n) != std::string::npos ||
               p.environ.find(n) != std::string::npos;
      }
      if (mine) out.push_back(std::move(p));
    }
    return out;
  }
  // Processes whose working folder is the component's work folder.
  std::vector<ProcInfo> ProcessesOf(const std::string& component) const {
    std::vector<ProcInfo> out;
    for (auto& p : Processes()) {
      if (p.cwd == WorkDir(component)) out.push_back(std::move(p));
    }
    return out;
  }
  // The component's process whose command line contains `needle` (exactly one), or none.
  std::optional<ProcInfo> ProcessOf(const std::string& component, const std::string& needle) const {
    std::optional<ProcInfo> found;
    for (auto& p : ProcessesOf(component)) {
      if (p.cmdline.find(needle) == std::string::npos) continue;
      if (found) return std::nullopt;
      found = std::move(p);
    }
    return found;
  }

  // SIGKILLs every process of this root (bounded); used after a test and on teardown.
  void KillLeftovers() {
    WaitFor(
        [&] {
          auto procs = Processes();
          for (const auto& p : procs) ::kill(p.pid, SIGKILL);
          return procs.empty();
        },
        5000ms, 20ms);
  }

 private:
  NucleusOptions options_;
  std::string dir_;
  std::string root_;
  std::string config_path_;
  std::string log_path_;
  std::string socket_;
  std::string old_info_;
  std::string link_;  // the short /tmp symlink the daemon made for a long root
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
};

}  // namespace lichen::harness
