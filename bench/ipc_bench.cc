// Greengrass IPC figures, measured from outside the server as a separate process: local
// publish/subscribe throughput (1 -> 1 and 1 -> N subscribers), publish latency at fixed
// offered rates, and the real daemon's memory per idle IPC connection.
//
//   build/bench/ipc_bench [--only throughput,latency,memory] [--runs N] [--messages N]
//                         [--window N] [--subscribers 1,10] [--rates 1000,10000]
//                         [--seconds S] [--connections N] [--lichen PATH] [--socket PATH]
//   build/bench/ipc_bench --serve-pubsub SOCKET     # the server the bench forks, by hand
//   build/bench/ipc_bench --serve-ack-only SOCKET   # PublishToTopic -> {} and nothing else
//
// Throughput and latency run against a child process (this program re-executed with
// --serve-pubsub) built from the daemon's own libraries: IpcServer + PubSub +
// RegisterPubSub + an Authorizer whose policy allows every pubsub operation. It accepts
// any non-empty token (the official SDK clients send $SVCUID). The client side is a small
// pipelining client written here on ipc/event_stream.h: ipc/client.h waits for each reply.
// Memory is measured on the real `lichen nucleus`, started on a fresh root.
// Plain C++ rather than Google Benchmark: what is timed happens in another process.
// Results and how to read them: docs/BENCHMARKS.md, "IPC".
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "ipc/authorization.h"
#include "ipc/client.h"
#include "ipc/event_stream.h"
#include "ipc/pubsub.h"
#include "ipc/server.h"

#ifndef LICHEN_BINARY
#define LICHEN_BINARY "lichen"
#endif

extern char** environ;

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using lichen::ipc::Header;
using lichen::ipc::Json;
using lichen::ipc::Message;

constexpr const char* kTopic = "bench/t";
constexpr const char* kToken = "benchbenchbench1";  // any non-empty token is accepted
constexpr const char* kStatsOp = "lichen.bench#Stats";

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

std::set<pid_t> g_children;
std::set<std::string> g_temp_dirs;

void StopChild(pid_t pid) {
  ::kill(pid, SIGTERM);
  int status = 0;
  const auto t0 = Clock::now();
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (Clock::now() - t0 > std::chrono::seconds(30)) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  g_children.erase(pid);
}

[[noreturn]] void Die(const std::string& message) {
  std::cerr << "ipc_bench: " << message << "\n";
  for (pid_t pid : std::set<pid_t>(g_children)) StopChild(pid);
  for (const auto& dir : g_temp_dirs) {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  std::exit(1);
}

std::string MakeTempDir(const char* prefix) {
  std::string pattern = std::string("/tmp/") + prefix + "XXXXXX";
  if (!::mkdtemp(pattern.data())) Die("mkdtemp failed");
  g_temp_dirs.insert(pattern);
  return pattern;
}

void RemoveTempDir(const std::string& dir) {
  std::error_code ec;
  fs::remove_all(dir, ec);
  g_temp_dirs.erase(dir);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string LoadAverage() {
  std::string text = ReadFile("/proc/loadavg");
  return text.substr(0, text.find(' ', text.find(' ', text.find(' ') + 1) + 1));
}

// ---- statistics -------------------------------------------------------------------

double Percentile(std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  size_t rank = static_cast<size_t>(p / 100.0 * static_cast<double>(sorted.size()) + 0.999999);
  return sorted[std::clamp<size_t>(rank, 1, sorted.size()) - 1];  // nearest rank
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

std::string Fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

// "median (min-max)" of the runs.
std::string Spread(const std::vector<double>& v, int digits) {
  if (v.empty()) return "-";
  return Fixed(Median(v), digits) + " (" + Fixed(*std::min_element(v.begin(), v.end()), digits) +
         "-" + Fixed(*std::max_element(v.begin(), v.end()), digits) + ")";
}

// ---- the servers (child process) --------------------------------------------------

int Serve(const std::string& socket_path, bool with_pubsub) {
  namespace asio = boost::asio;
  asio::io_context io;
  // Declared before the server: RegisterPubSub's handlers use them until it closes.
  lichen::ipc::PubSub pubsub;
  lichen::ipc::Authorizer authorizer;
  authorizer.SetPolicies("bench", Json::parse(R"({"aws.greengrass.ipc.pubsub": {"all": {
      "policyDescription": "the bench may do anything",
      "operations": ["*"], "resources": ["*"]}}})"));
  lichen::ipc::IpcServer server(io, [](const std::string& token) -> std::optional<std::string> {
    if (token.empty()) return std::nullopt;
    return std::string("bench");
  });
  if (with_pubsub) {
    lichen::ipc::RegisterPubSub(server, pubsub, authorizer);
  } else {
    server.Register(std::string(lichen::ipc::kPublishToTopic),
                    [](std::shared_ptr<lichen::ipc::Call> call) { call->Respond(Json::object()); });
  }
  // Lets the bench read the drop counters over IPC once a run is over.
  server.Register(kStatsOp, [&](std::shared_ptr<lichen::ipc::Call> call) {
    const auto s = pubsub.stats();
    call->Respond({{"published", s.published},
                   {"delivered", s.delivered},
                   {"dropped", s.dropped},
                   {"serverDroppedEvents", server.dropped_events()},
                   {"connections", server.connection_count()}});
  });
  auto listening = server.Listen(socket_path);
  if (!listening.ok()) {
    std::cerr << "ipc_bench: " << listening.error().message << "\n";
    return 1;
  }
  asio::signal_set signals(io, SIGTERM, SIGINT);
  signals.async_wait([&](const boost::system::error_code&, int) {
    const auto s = pubsub.stats();
    std::fprintf(stderr, "ipc_bench server: published %llu delivered %llu dropped %llu\n",
                 static_cast<unsigned long long>(s.published),
                 static_cast<unsigned long long>(s.delivered),
                 static_cast<unsigned long long>(s.dropped));
    server.Close();
    io.stop();
  });
  std::fprintf(stderr, "ipc_bench: serving %s on %s (pid %d)\n",
               with_pubsub ? "pubsub" : "PublishToTopic acks only", socket_path.c_str(),
               static_cast<int>(::getpid()));
  io.run();
  return 0;
}

// Re-executes this program as the server; returns once its socket accepts connections.
pid_t SpawnServer(const std::string& socket_path) {
  std::string self = fs::read_symlink("/proc/self/exe").string();
  std::vector<std::string> args = {self, "--serve-pubsub", socket_path};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  if (int rc = ::posix_spawn(&pid, self.c_str(), nullptr, nullptr, argv.data(), environ); rc != 0) {
    Die("cannot start the server: " + std::string(std::strerror(rc)));
  }
  g_children.insert(pid);
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (!fs::exists(socket_path)) {
    if (Clock::now() > deadline) Die("the server did not listen on " + socket_path);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return pid;
}

// Nanoseconds `pid`'s main thread has run (the servers run on one thread). Under a busy
// machine, CPU per message says more about the code than messages per second do.
int64_t CpuNs(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/schedstat");
  int64_t ns = 0;
  in >> ns;
  return ns;
}

int64_t OwnCpuNs() {
  timespec ts{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// ---- a minimal pipelining client --------------------------------------------------

Message Rpc(int32_t type, int32_t flags, int32_t stream) {
  Message m;
  m.headers.push_back(Header{":message-type", type});
  m.headers.push_back(Header{":message-flags", flags});
  m.headers.push_back(Header{":stream-id", stream});
  return m;
}

class Conn {
 public:
  Conn() = default;
  ~Conn() {
    if (fd_ >= 0) ::close(fd_);
  }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  // Blocking connect and CONNECT handshake; the socket is non-blocking afterwards.
  void Open(const std::string& path, const std::string& token) {
    StartConnect(path, token);
    FinishConnect();
  }

  // Connects and sends CONNECT without waiting for the ack (to open many at once).
  void StartConnect(const std::string& path, const std::string& token) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) Die(std::string("socket: ") + std::strerror(errno));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.data(), path.size());
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
      Die("connect " + path + ": " + std::strerror(errno));
    }
    Message m = Rpc(4, 0, 0);
    m.headers.push_back(Header{":version", std::string("0.1.0")});
    m.payload = Json{{"authToken", token}}.dump();
    Queue(m);
    while (!out_.empty()) Flush(true);
  }

  void FinishConnect() {
    Message ack = Receive();
    if (ack.GetInt32(":message-type") != 5 || !(ack.GetInt32(":message-flags").value_or(0) & 1)) {
      Die("CONNECT refused");
    }
    ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK);
  }

  // Blocking: the next whole message.
  Message Receive() {
    while (true) {
      auto next = decoder_.Next();
      if (!next.ok()) Die("decode: " + next.error().message);
      if (next->has_value()) return std::move(**next);
      pollfd p{fd_, POLLIN, 0};
      ::poll(&p, 1, 10000);
      if (!ReadSome()) Die("the server closed the connection");
    }
  }

  void Subscribe(const std::string& topic) {
    Message m = Rpc(0, 0, next_stream_++);
    m.headers.push_back(Header{"operation", std::string(lichen::ipc::kSubscribeToTopic)});
    m.payload = Json{{"topic", topic}}.dump();
    Queue(m);
    while (!out_.empty()) Flush(true);
    Message reply = Receive();
    if (reply.GetInt32(":message-type") != 0) Die("SubscribeToTopic failed: " + reply.payload);
  }

  // Queues one PublishToTopic {topic, jsonMessage {message: {s: seq, t: stamp}}}; returns
  // its stream id.
  int32_t QueuePublish(uint64_t seq, int64_t stamp_ns) {
    const int32_t stream = next_stream_++;
    Message m = Rpc(0, 0, stream);
    m.headers.push_back(Header{"operation", std::string(lichen::ipc::kPublishToTopic)});
    m.payload = std::string(R"({"topic":")") + kTopic +
                R"(","publishMessage":{"jsonMessage":{"message":{"s":)" + std::to_string(seq) +
                R"(,"t":)" + std::to_string(stamp_ns) + "}}}}";
    Queue(m);
    return stream;
  }

  void Queue(const Message& m) {
    auto bytes = lichen::ipc::Encode(m);
    if (!bytes.ok()) Die("encode: " + bytes.error().message);
    out_ += *bytes;
  }

  // Writes what it can of the queued bytes (all of them when `block`).
  void Flush(bool block) {
    while (out_off_ < out_.size()) {
      ssize_t n = ::write(fd_, out_.data() + out_off_, out_.size() - out_off_);
      if (n > 0) {
        out_off_ += static_cast<size_t>(n);
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        if (!block) break;
        pollfd p{fd_, POLLOUT, 0};
        ::poll(&p, 1, 1000);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else {
        Die(std::string("write: ") + std::strerror(errno));
      }
    }
    if (out_off_ == out_.size()) {
      out_.clear();
      out_off_ = 0;
    }
  }
  bool pending_output() const { return out_off_ < out_.size(); }

  // Reads what is available into the decoder; false on end of stream.
  bool ReadSome() {
    while (true) {
      ssize_t n = ::read(fd_, buf_.data(), buf_.size());
      if (n > 0) {
        decoder_.Feed(std::string_view(buf_.data(), static_cast<size_t>(n)));
        if (static_cast<size_t>(n) < buf_.size()) return true;
        continue;
      }
      if (n == 0) return false;
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
      return false;
    }
  }

  // The next decoded message if one is complete.
  std::optional<Message> Next() {
    auto next = decoder_.Next();
    if (!next.ok()) Die("decode: " + next.error().message);
    return std::move(*next);
  }

  int fd() const { return fd_; }

 private:
  int fd_ = -1;
  int32_t next_stream_ = 1;
  lichen::ipc::Decoder decoder_;
  std::string out_;
  size_t out_off_ = 0;
  std::vector<char> buf_ = std::vector<char>(256 * 1024);
};

// The "t" (send time, ns) of an event's message.
int64_t StampOf(const std::string& payload) {
  auto at = payload.find("\"t\":");
  if (at == std::string::npos) return 0;
  return std::strtoll(payload.c_str() + at + 4, nullptr, 10);
}

// Reads the subscribers' connections on one thread until each has `expected` events or
// `stop` is set. Records the arrival time of the last event and, when asked, the latency
// of each event (arrival minus the publisher's stamp).
struct Receiver {
  std::vector<Conn*> subs;
  uint64_t expected = 0;  // per subscriber
  bool record_latency = false;
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> received{0};
  int64_t last_arrival_ns = 0;
  uint64_t errors = 0;
  std::vector<double> latency_us;
  std::thread thread;

  void Start() {
    thread = std::thread([this] { Run(); });
  }
  void Join() { thread.join(); }

  void Run() {
    std::vector<uint64_t> count(subs.size(), 0);
    std::vector<pollfd> fds;
    for (Conn* c : subs) fds.push_back(pollfd{c->fd(), POLLIN, 0});
    size_t done = 0;
    while (done < subs.size() && !stop.load(std::memory_order_relaxed)) {
      if (::poll(fds.data(), fds.size(), 20) <= 0) continue;
      for (size_t i = 0; i < subs.size(); ++i) {
        if (!(fds[i].revents & POLLIN)) continue;
        if (!subs[i]->ReadSome()) Die("a subscriber's connection closed");
        const int64_t now = NowNs();
        while (auto m = subs[i]->Next()) {
          if (m->GetInt32(":message-type") != 0) {
            ++errors;
            continue;
          }
          if (record_latency) {
            latency_us.push_back(static_cast<double>(now - StampOf(m->payload)) / 1000.0);
          }
          if (++count[i] == expected) ++done;
          last_arrival_ns = now;
          received.fetch_add(1, std::memory_order_relaxed);
        }
      }
    }
  }
};

Json ServerStats(const std::string& socket_path) {
  lichen::ipc::IpcClient client;
  auto connected = client.Connect(socket_path, kToken, std::chrono::seconds(10));
  if (!connected.ok()) Die("stats: " + connected.error().message);
  auto reply = client.Call(kStatsOp, Json::object(), std::chrono::seconds(10));
  if (!reply.ok()) Die("stats: " + reply.error().message);
  return *reply;
}

struct Options {
  std::set<std::string> only;
  int runs = 5;
  uint64_t messages = 200000;
  uint64_t window = 256;
  std::vector<int> subscribers = {1, 10};
  std::vector<int> rates = {1000, 10000};
  double seconds = 3;
  int connections = 1000;
  std::string lichen = LICHEN_BINARY;
  std::string socket;  // an already running server (--serve-*) instead of a child
  bool Want(const std::string& part) const { return only.empty() || only.count(part) > 0; }
};

// ---- throughput -------------------------------------------------------------------

struct ThroughputRun {
  double publish_per_s = 0;   // messages acknowledged by the server per second
  double messages_per_s = 0;  // messages delivered to every subscriber per second
  double deliveries_per_s = 0;
  uint64_t lost = 0;
  uint64_t errors = 0;
  double server_cpu_us = 0;  // server CPU per published message
  double client_cpu_us = 0;  // this process's CPU per published message
};

ThroughputRun RunThroughput(const std::string& socket_path, int subscribers, const Options& o,
                            pid_t server) {
  std::vector<std::unique_ptr<Conn>> subs;
  Receiver rx;
  for (int i = 0; i < subscribers; ++i) {
    subs.push_back(std::make_unique<Conn>());
    subs.back()->Open(socket_path, kToken);
    subs.back()->Subscribe(kTopic);
    rx.subs.push_back(subs.back().get());
  }
  Conn pub;
  pub.Open(socket_path, kToken);
  rx.expected = o.messages;
  rx.Start();

  ThroughputRun r;
  uint64_t sent = 0, acked = 0;
  const int64_t server_cpu0 = server > 0 ? CpuNs(server) : 0;
  const int64_t client_cpu0 = OwnCpuNs();
  const int64_t t0 = NowNs();
  int64_t t_acked = 0;
  while (acked < o.messages) {
    // Keep up to `window` requests in flight; they go out in one write.
    while (sent < o.messages && sent - acked < o.window) pub.QueuePublish(sent++, 0);
    pub.Flush(false);
    pollfd p{pub.fd(), static_cast<short>(POLLIN | (pub.pending_output() ? POLLOUT : 0)), 0};
    ::poll(&p, 1, 1000);
    if (!(p.revents & POLLIN)) continue;
    if (!pub.ReadSome()) Die("the publisher's connection closed");
    while (auto m = pub.Next()) {
      if (m->GetInt32(":message-type") != 0) ++r.errors;
      ++acked;
    }
  }
  t_acked = NowNs();
  // Everything published is delivered within seconds unless it was dropped.
  const uint64_t want = o.messages * static_cast<uint64_t>(subscribers);
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  while (rx.received.load() < want && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  rx.stop = true;
  rx.Join();
  const double n = static_cast<double>(o.messages);
  if (server > 0) r.server_cpu_us = static_cast<double>(CpuNs(server) - server_cpu0) / n / 1000;
  r.client_cpu_us = static_cast<double>(OwnCpuNs() - client_cpu0) / n / 1000;
  const double secs_acked = static_cast<double>(t_acked - t0) / 1e9;
  const double secs_all = static_cast<double>(rx.last_arrival_ns - t0) / 1e9;
  r.publish_per_s = static_cast<double>(o.messages) / secs_acked;
  r.lost = want - rx.received.load();
  r.errors += rx.errors;
  // With no subscriber, the run ends with the last response.
  r.messages_per_s = static_cast<double>(o.messages) / std::max(secs_all, secs_acked);
  r.deliveries_per_s = static_cast<double>(rx.received.load()) / std::max(secs_all, secs_acked);
  return r;
}

void Throughput(const Options& o) {
  std::printf(
      "\n## throughput: PublishToTopic (jsonMessage ~100 B), %llu messages a run, "
      "window %llu\n",
      static_cast<unsigned long long>(o.messages), static_cast<unsigned long long>(o.window));
  for (int n : o.subscribers) {
    const std::string dir = MakeTempDir("lipcb.");
    const std::string sock = o.socket.empty() ? dir + "/ipc.socket" : o.socket;
    const pid_t server = o.socket.empty() ? SpawnServer(sock) : 0;
    std::vector<double> pub_rate, msg_rate, del_rate, server_cpu, client_cpu;
    uint64_t lost = 0, errors = 0;
    for (int run = 0; run < o.runs; ++run) {
      ThroughputRun r = RunThroughput(sock, n, o, server);
      std::printf(
          "  1 -> %-2d run %d: acked %9.0f msg/s, delivered to all %9.0f msg/s "
          "(%9.0f events/s), lost %llu, errors %llu; CPU per message: server %.2f us, "
          "bench %.2f us\n",
          n, run + 1, r.publish_per_s, r.messages_per_s, r.deliveries_per_s,
          static_cast<unsigned long long>(r.lost), static_cast<unsigned long long>(r.errors),
          r.server_cpu_us, r.client_cpu_us);
      std::fflush(stdout);
      server_cpu.push_back(r.server_cpu_us);
      client_cpu.push_back(r.client_cpu_us);
      pub_rate.push_back(r.publish_per_s);
      msg_rate.push_back(r.messages_per_s);
      del_rate.push_back(r.deliveries_per_s);
      lost += r.lost;
      errors += r.errors;
    }
    Json stats = ServerStats(sock);
    std::printf(
        "  1 -> %-2d SUMMARY msg/s delivered to all: %s; acked: %s; events/s: %s; "
        "lost %llu, errors %llu; CPU us per message: server %s, bench %s; server: %s\n",
        n, Spread(msg_rate, 0).c_str(), Spread(pub_rate, 0).c_str(), Spread(del_rate, 0).c_str(),
        static_cast<unsigned long long>(lost), static_cast<unsigned long long>(errors),
        Spread(server_cpu, 2).c_str(), Spread(client_cpu, 2).c_str(), stats.dump().c_str());
    if (server > 0) StopChild(server);
    RemoveTempDir(dir);
  }
}

// ---- latency at a fixed offered rate ----------------------------------------------

void Latency(const Options& o) {
  std::printf(
      "\n## latency: 1 -> 1, paced publisher (open loop), %.1f s per run; publisher and "
      "subscriber connections served by one thread\n",
      o.seconds);
  // Without this, every sleep may overshoot by the default 50 µs slack.
  ::prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
  for (int rate : o.rates) {
    const std::string dir = MakeTempDir("lipcb.");
    const std::string sock = o.socket.empty() ? dir + "/ipc.socket" : o.socket;
    const pid_t server = o.socket.empty() ? SpawnServer(sock) : 0;
    std::vector<double> d50, d99, d999, dmax, r50, r99, rmax;
    uint64_t lost = 0;
    for (int run = 0; run < o.runs; ++run) {
      Conn sub;
      sub.Open(sock, kToken);
      sub.Subscribe(kTopic);
      Conn pub;
      pub.Open(sock, kToken);
      const auto count = static_cast<uint64_t>(rate * o.seconds);
      // One thread waits on both connections, as one event loop would: a thread per
      // connection costs a wake-up more per message, and on 2 shared cores every wake-up
      // counts. The server sends the event just before the response, so one wake-up
      // usually finds both.
      std::vector<double> latency_us;
      latency_us.reserve(count);
      uint64_t received = 0;
      std::vector<int64_t> sent_at(count + 2, 0);  // by stream id (publishes start at 1)
      std::vector<double> rtt_us;
      rtt_us.reserve(count);
      const int64_t server_cpu0 = server > 0 ? CpuNs(server) : 0;
      const int64_t client_cpu0 = OwnCpuNs();
      const int64_t interval = 1000000000LL / rate;
      const int64_t start = NowNs() + 1000000;
      uint64_t acked = 0;
      auto drain_subscriber = [&] {
        if (!sub.ReadSome()) Die("the subscriber's connection closed");
        const int64_t now = NowNs();
        while (auto m = sub.Next()) {
          if (m->GetInt32(":message-type") != 0) continue;  // not counted: shows as lost
          latency_us.push_back(static_cast<double>(now - StampOf(m->payload)) / 1000.0);
          ++received;
        }
      };
      auto drain_publisher = [&] {
        if (!pub.ReadSome()) Die("the publisher's connection closed");
        const int64_t now = NowNs();
        while (auto m = pub.Next()) {
          auto stream = m->GetInt32(":stream-id").value_or(0);
          if (stream > 0 && static_cast<size_t>(stream) < sent_at.size()) {
            rtt_us.push_back(static_cast<double>(now - sent_at[stream]) / 1000.0);
          }
          ++acked;
        }
      };
      // Waits at most `timeout` for either connection and reads what arrived (the
      // subscriber first: its latency is the figure that matters).
      auto wait = [&](const timespec* timeout) {
        pollfd p[2] = {{sub.fd(), POLLIN, 0}, {pub.fd(), POLLIN, 0}};
        if (::ppoll(p, 2, timeout, nullptr) <= 0) return;
        if (p[0].revents) drain_subscriber();
        if (p[1].revents) drain_publisher();
      };
      for (uint64_t i = 0; i < count; ++i) {
        const int64_t due = start + static_cast<int64_t>(i) * interval;
        // Wait for the send time while timestamping responses as they arrive.
        for (int64_t now = NowNs(); now < due; now = NowNs()) {
          const int64_t left = due - now;
          timespec ts{static_cast<time_t>(left / 1000000000), static_cast<long>(left % 1000000000)};
          wait(&ts);
        }
        const int64_t stamp = NowNs();
        const int32_t stream = pub.QueuePublish(i, stamp);
        sent_at[static_cast<size_t>(stream)] = stamp;
        pub.Flush(true);
      }
      const auto deadline = Clock::now() + std::chrono::seconds(5);
      while ((acked < count || received < count) && Clock::now() < deadline) {
        const timespec ms{0, 1000000};
        wait(&ms);
      }
      const double server_cpu_us =
          server > 0 ? static_cast<double>(CpuNs(server) - server_cpu0) / 1000.0 / count : 0;
      const double client_cpu_us = static_cast<double>(OwnCpuNs() - client_cpu0) / 1000.0 / count;
      lost += count - received;
      std::sort(latency_us.begin(), latency_us.end());
      std::sort(rtt_us.begin(), rtt_us.end());
      auto& l = latency_us;
      std::printf(
          "  %6d msg/s run %d: publish->subscriber p50 %7.1f p99 %7.1f p99.9 %7.1f "
          "max %8.1f us | publish->response p50 %7.1f p99 %7.1f max %8.1f us | "
          "lost %llu | CPU per message: server %.1f us, bench %.1f us\n",
          rate, run + 1, Percentile(l, 50), Percentile(l, 99), Percentile(l, 99.9),
          l.empty() ? 0 : l.back(), Percentile(rtt_us, 50), Percentile(rtt_us, 99),
          rtt_us.empty() ? 0 : rtt_us.back(), static_cast<unsigned long long>(count - received),
          server_cpu_us, client_cpu_us);
      std::fflush(stdout);
      d50.push_back(Percentile(l, 50));
      d99.push_back(Percentile(l, 99));
      d999.push_back(Percentile(l, 99.9));
      dmax.push_back(l.empty() ? 0 : l.back());
      r50.push_back(Percentile(rtt_us, 50));
      r99.push_back(Percentile(rtt_us, 99));
      rmax.push_back(rtt_us.empty() ? 0 : rtt_us.back());
    }
    Json stats = ServerStats(sock);
    std::printf(
        "  %6d msg/s SUMMARY publish->subscriber us p50 %s p99 %s p99.9 %s max %s | "
        "publish->response p50 %s p99 %s max %s | lost %llu; server: %s\n",
        rate, Spread(d50, 1).c_str(), Spread(d99, 1).c_str(), Spread(d999, 1).c_str(),
        Spread(dmax, 0).c_str(), Spread(r50, 1).c_str(), Spread(r99, 1).c_str(),
        Spread(rmax, 0).c_str(), static_cast<unsigned long long>(lost), stats.dump().c_str());
    if (server > 0) StopChild(server);
    RemoveTempDir(dir);
  }
}

// ---- memory per connection on the real daemon -------------------------------------

struct Memory {
  double pss_kb = 0, rss_kb = 0;
};

Memory ReadMemory(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/smaps_rollup");
  Memory m;
  std::string key, unit;
  double kb = 0;
  while (in >> key) {
    if (key == "Pss:" || key == "Rss:") {
      in >> kb >> unit;
      (key == "Pss:" ? m.pss_kb : m.rss_kb) = kb;
    } else {
      std::getline(in, unit);
    }
  }
  return m;
}

void MemoryPerConnection(const Options& o) {
  std::printf("\n## memory: `lichen nucleus` (%s), %d idle connections after CONNECT_ACK\n",
              o.lichen.c_str(), o.connections);
  std::vector<double> pss_per, rss_per, pss_left;
  for (int run = 0; run < std::max(1, o.runs / 2 + 1); ++run) {
    const std::string root = MakeTempDir("lipcm.");
    const std::string config = root + ".yaml";
    {
      std::ofstream out(config);
      out << "system:\n  thingName: \"BenchThing\"\nservices:\n  aws.greengrass.Nucleus:\n"
             "    configuration:\n      awsRegion: \"us-east-1\"\n";
      if (::geteuid() == 0)
        out << "      runWithDefault:\n        posixUser: \"ggc_user:ggc_group\"\n";
    }
    std::vector<std::string> args = {o.lichen, "nucleus", "--root", root, "--config", config};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    const std::string log = root + ".out";
    posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    pid_t pid = 0;
    if (int rc = ::posix_spawn(&pid, o.lichen.c_str(), &actions, nullptr, argv.data(), environ);
        rc != 0) {
      Die("cannot start " + o.lichen + ": " + std::strerror(rc));
    }
    posix_spawn_file_actions_destroy(&actions);
    g_children.insert(pid);
    // The CLI token authenticates like a component's.
    std::string socket_path, token;
    for (const auto deadline = Clock::now() + std::chrono::seconds(20);;) {
      Json info = Json::parse(ReadFile(root + "/cli_ipc_info/lichen_cli"), nullptr, false);
      if (info.is_object() && info.contains("cli_auth_token")) {
        socket_path = info["socket_path"].get<std::string>();
        token = info["cli_auth_token"].get<std::string>();
        break;
      }
      if (Clock::now() > deadline) Die("no cli_ipc_info in " + root + ": " + ReadFile(log));
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    // One connection first, so that what the first one initialises is not counted.
    Conn warm;
    warm.Open(socket_path, token);
    std::this_thread::sleep_for(std::chrono::seconds(1));
    const Memory before = ReadMemory(pid);
    std::vector<std::unique_ptr<Conn>> conns;
    for (int i = 0; i < o.connections; ++i) {
      conns.push_back(std::make_unique<Conn>());
      conns.back()->StartConnect(socket_path, token);
    }
    for (auto& c : conns) c->FinishConnect();
    std::this_thread::sleep_for(std::chrono::seconds(1));
    const Memory after = ReadMemory(pid);
    conns.clear();
    std::this_thread::sleep_for(std::chrono::seconds(1));
    const Memory closed = ReadMemory(pid);
    // Open descriptors say whether the daemon really let the connections go.
    size_t fds = 0;
    for ([[maybe_unused]] const auto& e :
         fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) {
      ++fds;
    }
    const double n = o.connections;
    std::printf(
        "  run %d: before Pss %.0f kB Rss %.0f kB; with %d more connections Pss %.0f kB "
        "Rss %.0f kB: %.1f kB Pss / %.1f kB Rss per connection; after closing them Pss "
        "%.0f kB Rss %.0f kB, %zu descriptors open\n",
        run + 1, before.pss_kb, before.rss_kb, o.connections, after.pss_kb, after.rss_kb,
        (after.pss_kb - before.pss_kb) / n, (after.rss_kb - before.rss_kb) / n, closed.pss_kb,
        closed.rss_kb, fds);
    std::fflush(stdout);
    pss_per.push_back((after.pss_kb - before.pss_kb) / n);
    rss_per.push_back((after.rss_kb - before.rss_kb) / n);
    pss_left.push_back(closed.pss_kb - before.pss_kb);
    StopChild(pid);
    RemoveTempDir(root);
    fs::remove(config);
    fs::remove(log);
  }
  std::printf("  SUMMARY per connection: Pss %s kB, Rss %s kB; Pss kept after closing all: %s kB\n",
              Spread(pss_per, 1).c_str(), Spread(rss_per, 1).c_str(), Spread(pss_left, 0).c_str());
}

std::vector<int> ParseList(const std::string& text) {
  std::vector<int> out;
  std::stringstream ss(text);
  std::string part;
  while (std::getline(ss, part, ',')) out.push_back(std::stoi(part));
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) Die("missing value after " + a);
      return argv[++i];
    };
    if (a == "--serve-pubsub") return Serve(next(), true);
    if (a == "--serve-ack-only") return Serve(next(), false);
    if (a == "--only") {
      std::stringstream ss(next());
      std::string part;
      while (std::getline(ss, part, ',')) o.only.insert(part);
    } else if (a == "--runs") {
      o.runs = std::stoi(next());
    } else if (a == "--messages") {
      o.messages = std::stoull(next());
    } else if (a == "--window") {
      o.window = std::stoull(next());
    } else if (a == "--subscribers") {
      o.subscribers = ParseList(next());
    } else if (a == "--rates") {
      o.rates = ParseList(next());
    } else if (a == "--seconds") {
      o.seconds = std::stod(next());
    } else if (a == "--connections") {
      o.connections = std::stoi(next());
    } else if (a == "--socket") {
      o.socket = next();
    } else if (a == "--lichen") {
      o.lichen = next();
    } else {
      std::cerr << "usage: ipc_bench [--only throughput,latency,memory] [--runs N] "
                   "[--messages N] [--window N]\n"
                   "                 [--subscribers 1,10] [--rates 1000,10000] [--seconds S]\n"
                   "                 [--connections N] [--lichen PATH] [--socket PATH]\n"
                   "       ipc_bench --serve-pubsub SOCKET | --serve-ack-only SOCKET\n";
      return 2;
    }
  }
  // 1,000 connections need more descriptors than the usual soft limit of 1,024, here and
  // in the daemon, which inherits the limit.
  rlimit lim{};
  ::getrlimit(RLIMIT_NOFILE, &lim);
  lim.rlim_cur = lim.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &lim);
  std::printf("ipc_bench: %u cores, load average %s\n", std::thread::hardware_concurrency(),
              LoadAverage().c_str());
  if (o.Want("throughput")) Throughput(o);
  if (o.Want("latency")) Latency(o);
  if (o.Want("memory")) MemoryPerConnection(o);
  std::printf("\nload average at the end: %s\n", LoadAverage().c_str());
  return 0;
}
