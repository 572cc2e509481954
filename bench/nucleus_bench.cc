// End-to-end figures of the daemon, measured from outside as a separate process:
// cold start (fresh root, existing root, and a restart with 50 deployed components), local
// deployments of 10/50/200 trivial components, and the daemon's memory once idle.
//
//   build/bench/nucleus_bench [--lichen PATH] [--cold N] [--deploy N] [--idle MS]
//                             [--only cold,restart,deploy,memory] [--sizes 10,50,200]
//                             [--base DIR]
//
// Every daemon gets a fresh root under /tmp or --base (short, so the IPC socket path
// fits) and the configuration `runWithDefault.posixUser: ggc_user:ggc_group` when run as
// root. Each figure is repeated and reported as median, p90 (nearest rank) and max.
// Plain C++ rather than Google Benchmark: what is timed happens in another process.
// Results and how to read them: docs/BENCHMARKS.md, "Nucleus".
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "ipc/client.h"

#ifndef LICHEN_BINARY
#define LICHEN_BINARY "lichen"
#endif

extern char** environ;

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using lichen::ipc::IpcClient;
using lichen::ipc::Json;

constexpr auto kCallTimeout = std::chrono::milliseconds(10000);

double MsSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// Daemons still running and temporary folders, cleaned up by Die() so that no component
// or root outlives the bench.
std::set<pid_t> g_running;
std::set<std::string> g_temp_dirs;

// SIGTERM (the daemon stops its components), then SIGKILL after `grace`.
int StopProcess(pid_t pid, std::chrono::milliseconds grace) {
  const auto t0 = Clock::now();
  ::kill(pid, SIGTERM);
  int status = 0;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (Clock::now() - t0 > grace) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  g_running.erase(pid);
  return status;
}

[[noreturn]] void Die(const std::string& message) {
  std::cerr << "nucleus_bench: " << message << "\n";
  for (pid_t pid : std::set<pid_t>(g_running)) StopProcess(pid, std::chrono::seconds(30));
  for (const auto& dir : g_temp_dirs) {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  std::exit(1);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out) Die("cannot write " + path);
}

// Where daemon roots and recipes go (--base): /tmp by default; a tmpfs such as /dev/shm
// takes the disk (fsync, inode allocation) out of the figures.
std::string g_base = "/tmp";

class TempDir {
 public:
  explicit TempDir(const char* prefix) {
    std::string pattern = g_base + "/" + prefix + "XXXXXX";
    if (!::mkdtemp(pattern.data())) Die("mkdtemp failed in " + g_base);
    path_ = pattern;
    g_temp_dirs.insert(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
    g_temp_dirs.erase(path_);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// ---- statistics -------------------------------------------------------------------

struct Stats {
  size_t n = 0;
  double median = 0, p90 = 0, max = 0;
};

Stats Summarise(std::vector<double> v) {
  Stats s;
  s.n = v.size();
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  s.median = v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
  size_t rank = (v.size() * 90 + 99) / 100;  // nearest rank, 1-based
  s.p90 = v[std::max<size_t>(rank, 1) - 1];
  s.max = v.back();
  return s;
}

struct Row {
  std::string what;
  std::string unit;  // "ms" or "MB"
  Stats stats;
  std::string target;
};
std::vector<Row> g_rows;

std::string Fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

void Report(const std::string& what, const std::string& unit, const std::vector<double>& v,
            const std::string& target = "") {
  Row r{what, unit, Summarise(v), target};
  const int digits = unit == "MB" ? 2 : 1;
  std::printf("  %-52s n=%-3zu median %8s %s  p90 %8s  max %8s  %s\n", what.c_str(), r.stats.n,
              Fixed(r.stats.median, digits).c_str(), unit.c_str(),
              Fixed(r.stats.p90, digits).c_str(), Fixed(r.stats.max, digits).c_str(),
              target.c_str());
  std::fflush(stdout);
  g_rows.push_back(std::move(r));
}

// ---- the daemon -------------------------------------------------------------------

struct Options {
  std::string lichen = LICHEN_BINARY;
  int cold = 20;
  int deploy = 5;
  int idle_ms = 2000;
  std::set<std::string> only;
  std::vector<int> sizes = {10, 50, 200};
  bool Want(const std::string& part) const { return only.empty() || only.count(part) > 0; }
};

std::string WriteConfig(const std::string& dir) {
  std::string text =
      "system:\n"
      "  thingName: \"BenchThing\"\n"
      "services:\n"
      "  aws.greengrass.Nucleus:\n"
      "    configuration:\n"
      "      awsRegion: \"us-east-1\"\n";
  if (::geteuid() == 0) {
    text +=
        "      runWithDefault:\n"
        "        posixUser: \"ggc_user:ggc_group\"\n";
  }
  text +=
      "      logging:\n"
      "        level: \"INFO\"\n"
      "        format: \"TEXT\"\n";
  const std::string path = dir + "/config.yaml";
  WriteFile(path, text);
  return path;
}

class Daemon {
 public:
  Daemon(const Options& o, std::string root, std::string config)
      : lichen_(o.lichen), root_(std::move(root)), config_(std::move(config)) {
    // Longer roots get a socket behind a /tmp symlink, which WaitListening does not follow.
    if (root_.size() + sizeof("/ipc.socket") > 108) Die("--base is too long: " + root_);
  }
  ~Daemon() {
    if (pid_ > 0) StopProcess(pid_, std::chrono::seconds(30));
  }
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Starts the daemon; returns the time it was spawned from.
  Clock::time_point Start() {
    std::vector<std::string> args = {lichen_, "nucleus", "--root", root_, "--config", config_};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    const std::string out = root_ + ".out";
    posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    const auto t0 = Clock::now();
    int rc = ::posix_spawn(&pid_, lichen_.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) Die("cannot start " + lichen_ + ": " + std::strerror(rc));
    g_running.insert(pid_);
    return t0;
  }

  void CheckAlive() {
    int status = 0;
    if (pid_ > 0 && ::waitpid(pid_, &status, WNOHANG) == pid_) {
      g_running.erase(pid_);
      pid_ = -1;
      Die("the daemon exited early (status " + std::to_string(status) +
          "): " + ReadFile(root_ + ".out"));
    }
  }

  // Polls until a plain connect(2) on the socket succeeds.
  void WaitListening(Clock::time_point deadline) {
    const std::string path = root_ + "/ipc.socket";
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.data(), path.size());
    while (true) {
      int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
      ::close(fd);
      if (rc == 0) return;
      if (Clock::now() > deadline) Die("the daemon did not listen on " + path);
      CheckAlive();
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }

  // Reads cli_ipc_info and completes the CONNECT handshake.
  IpcClient Connect(Clock::time_point deadline) {
    const std::string info_path = root_ + "/cli_ipc_info/lichen_cli";
    while (true) {
      Json info = Json::parse(ReadFile(info_path), nullptr, false);
      if (info.is_object() && info.contains("socket_path") && info.contains("cli_auth_token")) {
        IpcClient client;
        auto connected = client.Connect(info["socket_path"].get<std::string>(),
                                        info["cli_auth_token"].get<std::string>(), kCallTimeout);
        if (connected.ok()) return client;
        if (Clock::now() > deadline) Die("cannot connect: " + connected.error().message);
      }
      if (Clock::now() > deadline) Die("no usable " + info_path);
      CheckAlive();
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }

  // SIGTERM and wait; returns the time the clean stop took.
  double Stop() {
    if (pid_ <= 0) return 0;
    const auto t0 = Clock::now();
    const int status = StopProcess(pid_, std::chrono::seconds(60));
    const double ms = MsSince(t0);
    pid_ = -1;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      std::cerr << "nucleus_bench: warning: the daemon did not stop cleanly (status " << status
                << ")\n";
    }
    return ms;
  }

  pid_t pid() const { return pid_; }
  const std::string& root() const { return root_; }

  // startupMicros from the nucleus-start line of greengrass.log (after Stop: buffered).
  std::optional<double> StartupMicros() const {
    const std::string log = ReadFile(root_ + "/logs/greengrass.log");
    auto at = log.rfind("startupMicros");
    if (at == std::string::npos) return std::nullopt;
    at = log.find_first_of("0123456789", at);
    if (at == std::string::npos) return std::nullopt;
    return std::strtod(log.c_str() + at, nullptr);
  }

 private:
  std::string lichen_;
  std::string root_;
  std::string config_;
  pid_t pid_ = -1;
};

Json Call(IpcClient& client, std::string_view op, const Json& request) {
  auto reply = client.Call(op, request, kCallTimeout);
  if (!reply.ok()) Die(std::string(op) + ": " + reply.error().message);
  return *reply;
}

// Number of components RUNNING, and of components in all.
std::pair<int, int> CountRunning(IpcClient& client) {
  Json list = Call(client, "aws.greengrass#ListComponents", Json::object());
  int running = 0, all = 0;
  for (const auto& c : list.value("components", Json::array())) {
    ++all;
    if (c.value("state", "") == "RUNNING") ++running;
  }
  return {running, all};
}

// ---- recipes ----------------------------------------------------------------------

enum class Kind { kRun, kStartup };

const char* KindText(Kind k) { return k == Kind::kRun ? "Run: exec sleep 600" : "Startup: true"; }

std::string ComponentName(int i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "bench.C%03d", i);
  return buf;
}

// `count` YAML recipes of trivial components in `dir`.
void GenerateRecipes(const std::string& dir, int count, Kind kind) {
  for (int i = 0; i < count; ++i) {
    const std::string name = ComponentName(i);
    std::string text =
        "RecipeFormatVersion: \"2020-01-25\"\n"
        "ComponentName: " +
        name +
        "\n"
        "ComponentVersion: \"1.0.0\"\n"
        "ComponentDescription: A trivial benchmark component.\n"
        "ComponentPublisher: nucleus_bench\n"
        "Manifests:\n"
        "  - Platform:\n"
        "      os: linux\n"
        "    Lifecycle:\n";
    text += kind == Kind::kRun ? "      Run: exec sleep 600\n" : "      Startup: \"true\"\n";
    WriteFile(dir + "/" + name + "-1.0.0.yaml", text);
  }
}

Json AddAll(int count) {
  Json add = Json::object();
  for (int i = 0; i < count; ++i) add[ComponentName(i)] = "1.0.0";
  return add;
}

// Submits a deployment and polls its status every millisecond until it is final.
// Returns the milliseconds from submitting to SUCCEEDED.
double DeployAndWait(IpcClient& client, const std::string& recipes, int count) {
  const auto t0 = Clock::now();
  Json reply =
      Call(client, "aws.greengrass#CreateLocalDeployment",
           {{"recipeDirectoryPath", recipes}, {"rootComponentVersionsToAdd", AddAll(count)}});
  const std::string id = reply.value("deploymentId", "");
  if (id.empty()) Die("CreateLocalDeployment: no deploymentId in " + reply.dump());
  while (true) {
    Json status = Call(client, "aws.greengrass#GetLocalDeploymentStatus", {{"deploymentId", id}});
    const std::string s = status["deployment"].value("status", "");
    if (s == "SUCCEEDED") break;
    if (s == "FAILED" || s == "REJECTED" || s == "CANCELED") {
      Die("deployment " + s + ": " + status.dump());
    }
    if (MsSince(t0) > 600000) Die("deployment did not finish in 10 minutes");
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return MsSince(t0);
}

// ---- memory -----------------------------------------------------------------------

struct Memory {
  double pss_mb = 0, rss_mb = 0, uss_mb = 0;  // USS: Private_Clean + Private_Dirty
};

Memory ReadMemory(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/smaps_rollup");
  Memory m;
  std::string key;
  long kb = 0;
  std::string unit;
  while (in >> key) {
    if (key == "Pss:" || key == "Rss:") {
      in >> kb >> unit;
      (key == "Pss:" ? m.pss_mb : m.rss_mb) = kb / 1024.0;
    } else if (key == "Private_Clean:" || key == "Private_Dirty:") {
      in >> kb >> unit;
      m.uss_mb += kb / 1024.0;
    } else {
      std::getline(in, unit);
    }
  }
  return m;
}

// From /proc/<pid>/task/<tid>/schedstat: nanoseconds on a CPU and waiting for one.
// What is left of the wall time is time blocked (fsync, a child's exec, I/O).
struct Sched {
  double cpu_ms = 0, runq_ms = 0;
};

Sched ReadSched(pid_t pid, bool all_threads) {
  Sched s;
  const std::string task_dir = "/proc/" + std::to_string(pid) + "/task";
  std::vector<std::string> files;
  if (all_threads) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(task_dir, ec)) {
      files.push_back(e.path().string() + "/schedstat");
    }
  } else {
    files.push_back(task_dir + "/" + std::to_string(pid) + "/schedstat");
  }
  for (const auto& f : files) {
    std::ifstream in(f);
    double cpu = 0, runq = 0;
    if (in >> cpu >> runq) {
      s.cpu_ms += cpu / 1e6;
      s.runq_ms += runq / 1e6;
    }
  }
  return s;
}

// ---- the measurements -------------------------------------------------------------

void ColdStart(const Options& o, const std::string& config) {
  std::printf("\nCold start, fresh root (%d runs)\n", o.cold);
  std::vector<double> listening, connected, listed, internal, stop;
  for (int i = 0; i < o.cold; ++i) {
    TempDir root("lnb.");
    Daemon d(o, root.path() + "/gg", config);
    const auto t0 = d.Start();
    const auto deadline = t0 + std::chrono::seconds(30);
    d.WaitListening(deadline);
    listening.push_back(MsSince(t0));
    IpcClient client = d.Connect(deadline);
    connected.push_back(MsSince(t0));
    (void)CountRunning(client);
    listed.push_back(MsSince(t0));
    client.Close();
    stop.push_back(d.Stop());
    if (auto us = d.StartupMicros()) internal.push_back(*us / 1000.0);
  }
  Report("spawn -> socket accepts connect(2)", "ms", listening);
  Report("spawn -> IPC CONNECT acknowledged", "ms", connected, "target < 20 ms");
  Report("spawn -> first ListComponents reply", "ms", listed);
  Report("in-daemon startupMicros (main() to loop)", "ms", internal);
  Report("SIGTERM -> exit (no components)", "ms", stop);

  // The same root again: what a reboot costs once the first start created the state.
  std::printf("\nCold start, existing root with no components (%d runs)\n", o.cold);
  listening.clear(), connected.clear(), listed.clear(), internal.clear();
  TempDir root("lnb.");
  for (int i = 0; i <= o.cold; ++i) {
    Daemon d(o, root.path() + "/gg", config);
    const auto t0 = d.Start();
    const auto deadline = t0 + std::chrono::seconds(30);
    d.WaitListening(deadline);
    const double listen_ms = MsSince(t0);
    IpcClient client = d.Connect(deadline);
    const double connect_ms = MsSince(t0);
    (void)CountRunning(client);
    const double list_ms = MsSince(t0);
    client.Close();
    d.Stop();
    if (i == 0) continue;  // the first run creates the root
    listening.push_back(listen_ms);
    connected.push_back(connect_ms);
    listed.push_back(list_ms);
    if (auto us = d.StartupMicros()) internal.push_back(*us / 1000.0);
  }
  Report("spawn -> socket accepts connect(2)", "ms", listening);
  Report("spawn -> IPC CONNECT acknowledged", "ms", connected, "target < 20 ms");
  Report("spawn -> first ListComponents reply", "ms", listed);
  Report("in-daemon startupMicros (main() to loop)", "ms", internal);
}

void Restart(const Options& o, const std::string& config) {
  constexpr int kCount = 50;
  std::printf("\nRestart with %d deployed components (%s; %d runs)\n", kCount, KindText(Kind::kRun),
              o.cold);
  TempDir dir("lnb.");
  const std::string recipes = dir.path() + "/recipes";
  fs::create_directories(recipes);
  GenerateRecipes(recipes, kCount, Kind::kRun);
  const std::string root = dir.path() + "/gg";
  {
    Daemon d(o, root, config);
    const auto t0 = d.Start();
    IpcClient client = d.Connect(t0 + std::chrono::seconds(30));
    DeployAndWait(client, recipes, kCount);
    client.Close();
    d.Stop();
  }
  std::vector<double> listening, connected, all_running, internal, stop, cpu, runq;
  for (int i = 0; i < o.cold; ++i) {
    Daemon d(o, root, config);
    const auto t0 = d.Start();
    const auto deadline = t0 + std::chrono::seconds(60);
    d.WaitListening(deadline);
    listening.push_back(MsSince(t0));
    IpcClient client = d.Connect(deadline);
    connected.push_back(MsSince(t0));
    while (true) {
      auto [running, all] = CountRunning(client);
      if (running == kCount) break;
      if (Clock::now() > deadline) {
        Die("only " + std::to_string(running) + " of " + std::to_string(all) + " RUNNING");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    all_running.push_back(MsSince(t0));
    // Recover() runs on the main thread before the loop answers CONNECT.
    const Sched sched = ReadSched(d.pid(), false);
    cpu.push_back(sched.cpu_ms);
    runq.push_back(sched.runq_ms);
    client.Close();
    stop.push_back(d.Stop());
    if (auto us = d.StartupMicros()) internal.push_back(*us / 1000.0);
  }
  Report("spawn -> socket accepts connect(2)", "ms", listening);
  Report("spawn -> IPC CONNECT acknowledged", "ms", connected);
  Report("spawn -> all 50 RUNNING (ListComponents)", "ms", all_running);
  Report("  of which main thread on a CPU", "ms", cpu);
  Report("  of which main thread waiting for a CPU", "ms", runq);
  Report("in-daemon startupMicros (main() to loop)", "ms", internal);
  Report("SIGTERM -> exit (stops 50 components)", "ms", stop);
}

void Deployments(const Options& o, const std::string& config, bool with_memory) {
  for (Kind kind : {Kind::kRun, Kind::kStartup}) {
    for (int count : o.sizes) {
      std::printf("\nLocal deployment of %d components (%s; %d runs, fresh daemon each)\n", count,
                  KindText(kind), o.deploy);
      TempDir dir("lnb.");
      const std::string recipes = dir.path() + "/recipes";
      fs::create_directories(recipes);
      GenerateRecipes(recipes, count, kind);
      std::vector<double> times, pss, rss, uss, cpu, runq;
      for (int i = 0; i < o.deploy; ++i) {
        const std::string root = dir.path() + "/gg" + std::to_string(i);
        Daemon d(o, root, config);
        const auto t0 = d.Start();
        IpcClient client = d.Connect(t0 + std::chrono::seconds(30));
        const Sched before = ReadSched(d.pid(), true);
        times.push_back(DeployAndWait(client, recipes, count));
        const Sched after = ReadSched(d.pid(), true);
        cpu.push_back(after.cpu_ms - before.cpu_ms);
        runq.push_back(after.runq_ms - before.runq_ms);
        auto [running, all] = CountRunning(client);
        if (running != count || all != count) {
          Die("after SUCCEEDED only " + std::to_string(running) + " of " + std::to_string(all) +
              " RUNNING");
        }
        if (with_memory) {
          client.Close();
          std::this_thread::sleep_for(std::chrono::milliseconds(o.idle_ms));
          Memory m = ReadMemory(d.pid());
          pss.push_back(m.pss_mb);
          rss.push_back(m.rss_mb);
          uss.push_back(m.uss_mb);
        }
        client.Close();
        d.Stop();
        std::error_code ec;
        fs::remove_all(root, ec);
      }
      std::string target = kind == Kind::kRun && count == 50 ? "target < 300 ms" : "";
      Report("CreateLocalDeployment -> SUCCEEDED", "ms", times, target);
      Report("  daemon threads on a CPU meanwhile", "ms", cpu);
      Report("  daemon threads waiting for a CPU meanwhile", "ms", runq);
      if (!pss.empty()) {
        Report("daemon Pss, idle " + std::to_string(o.idle_ms) + " ms after", "MB", pss,
               count == 10 && kind == Kind::kRun ? "target < 5 MB" : "");
        Report("daemon Rss, idle " + std::to_string(o.idle_ms) + " ms after", "MB", rss);
        Report("daemon USS (private), idle " + std::to_string(o.idle_ms) + " ms after", "MB", uss);
      }
    }
  }
}

void IdleMemory(const Options& o, const std::string& config) {
  std::printf("\nMemory of an idle daemon with no components (%d runs)\n", o.deploy);
  std::vector<double> pss, rss, uss;
  for (int i = 0; i < o.deploy; ++i) {
    TempDir root("lnb.");
    Daemon d(o, root.path() + "/gg", config);
    const auto t0 = d.Start();
    IpcClient client = d.Connect(t0 + std::chrono::seconds(30));
    (void)CountRunning(client);
    client.Close();
    std::this_thread::sleep_for(std::chrono::milliseconds(o.idle_ms));
    Memory m = ReadMemory(d.pid());
    pss.push_back(m.pss_mb);
    rss.push_back(m.rss_mb);
    uss.push_back(m.uss_mb);
    d.Stop();
  }
  Report("daemon Pss, idle, 0 components", "MB", pss);
  Report("daemon Rss, idle, 0 components", "MB", rss);
  Report("daemon USS (private), idle, 0 components", "MB", uss);
}

// ---- the machine and the binary ---------------------------------------------------

std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  }
  return "unknown";
}

std::string LoadAverage() {
  std::string text = ReadFile("/proc/loadavg");
  auto cut = text.find(' ', text.find(' ', text.find(' ') + 1) + 1);
  return text.substr(0, cut);
}

void PrintMachine(const Options& o) {
  utsname u{};
  ::uname(&u);
  std::printf("roots under %s\n", g_base.c_str());
  std::printf("machine: %ld cores, %s, Linux %s; load average %s\n", sysconf(_SC_NPROCESSORS_ONLN),
              CpuModel().c_str(), u.release, LoadAverage().c_str());
  struct stat st {};
  if (::stat(o.lichen.c_str(), &st) != 0) Die("no binary at " + o.lichen);
  std::printf("binary: %s, %.2f MB", o.lichen.c_str(), st.st_size / 1048576.0);
  TempDir tmp("lnb.");
  const std::string stripped = tmp.path() + "/lichen.stripped";
  const std::string cmd = "strip -o '" + stripped + "' '" + o.lichen + "' 2>/dev/null";
  if (std::system(cmd.c_str()) == 0 && ::stat(stripped.c_str(), &st) == 0) {
    std::printf(" (stripped: %.2f MB)", st.st_size / 1048576.0);
  }
  std::printf("\n");
}

void PrintReferences() {
  std::printf(
      "\nPublished references (they cannot run here: no JVM download, no internet, no cloud "
      "device):\n"
      "  Greengrass Java nucleus: 96 MB RAM minimum; about 8.6 s from JVM start to IPC ready\n"
      "  Greengrass Nucleus Lite 2.5: about 14.6 MB PSS idle across its 9 daemons; about 1.3 s\n"
      "    from `systemctl restart` to all services active\n");
}

std::vector<int> ParseSizes(const std::string& text) {
  std::vector<int> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(std::stoi(item));
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) Die(a + " needs a value");
      return argv[++i];
    };
    if (a == "--lichen") {
      o.lichen = next();
    } else if (a == "--cold") {
      o.cold = std::stoi(next());
    } else if (a == "--deploy") {
      o.deploy = std::stoi(next());
    } else if (a == "--idle") {
      o.idle_ms = std::stoi(next());
    } else if (a == "--base") {
      g_base = next();
    } else if (a == "--sizes") {
      o.sizes = ParseSizes(next());
    } else if (a == "--only") {
      std::stringstream ss(next());
      std::string part;
      while (std::getline(ss, part, ',')) o.only.insert(part);
    } else {
      std::cerr << "usage: nucleus_bench [--lichen PATH] [--cold N] [--deploy N] [--idle MS]\n"
                   "                     [--sizes 10,50,200] [--only cold,restart,deploy,memory]\n"
                   "                     [--base DIR]\n";
      return 2;
    }
  }
  std::signal(SIGPIPE, SIG_IGN);
  PrintMachine(o);
  TempDir config_dir("lnb.");
  const std::string config = WriteConfig(config_dir.path());
  if (o.Want("cold")) ColdStart(o, config);
  if (o.Want("restart")) Restart(o, config);
  if (o.Want("memory")) IdleMemory(o, config);
  if (o.Want("deploy") || o.Want("memory")) Deployments(o, config, o.Want("memory"));
  PrintReferences();
  std::printf("load average at the end: %s\n", LoadAverage().c_str());
  return 0;
}
