// Token exchange service throughput and latency for cached credentials: the server on
// one event-loop thread (as in the nucleus), N keep-alive clients each on its own thread
// sending GETs back to back (a component's SDK refreshing). Latency is measured by each
// client from sending a request to having read the whole answer.
//
// tes_bench [--clients N (50)] [--seconds S (5)] [--warmup S (1)] [--think-us U (0)]
// --think-us paces each client (a pause between its requests): 0 measures the server
// saturated, where latency is mostly queueing behind the other clients' requests.
#include <pthread.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "aws/credential_providers.h"
#include "tes/tes_server.h"

namespace asio = boost::asio;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

// Reads one response (headers + Content-Length body) from a blocking socket.
bool ReadResponse(tcp::socket& s, std::string& buf) {
  buf.clear();
  char chunk[4096];
  size_t header_end = std::string::npos, want = 0;
  for (int i = 0; i < 64; ++i) {  // a response is ~400 bytes: a few reads at most
    boost::system::error_code ec;
    size_t n = s.read_some(asio::buffer(chunk), ec);
    if (ec) return false;
    buf.append(chunk, n);
    if (header_end == std::string::npos) {
      header_end = buf.find("\r\n\r\n");
      if (header_end == std::string::npos) continue;
      size_t cl = buf.find("Content-Length: ");
      if (cl == std::string::npos || cl > header_end) return false;
      want = header_end + 4 + std::strtoul(buf.c_str() + cl + 16, nullptr, 10);
    }
    if (buf.size() >= want) return buf.compare(0, 12, "HTTP/1.1 200") == 0;
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  int clients = 50;
  double seconds = 5, warmup = 1;
  int think_us = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--clients") {
      clients = std::atoi(argv[i + 1]);
    } else if (a == "--seconds") {
      seconds = std::atof(argv[i + 1]);
    } else if (a == "--think-us") {
      think_us = std::atoi(argv[i + 1]);
    } else if (a == "--warmup") {
      warmup = std::atof(argv[i + 1]);
    } else {
      std::fprintf(stderr,
                   "usage: tes_bench [--clients N] [--seconds S] [--warmup S] [--think-us U]\n");
      return 2;
    }
  }

  const std::string token = "benchtokenbenchto";
  asio::io_context io;
  auto cache = std::make_shared<lichen::aws::CachingCredentialProvider>(
      std::make_shared<lichen::aws::StaticCredentialProvider>(lichen::aws::Credentials{
          "ASIAQWERTYUIOPASDFGH", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
          std::string(600, 'T'),  // session tokens are several hundred bytes
          std::chrono::system_clock::now() + std::chrono::hours(1)}));
  lichen::tes::TesServer server(io, cache, {token});
  auto port = server.Start();
  if (!port) {
    std::fprintf(stderr, "%s\n", port.error().message.c_str());
    return 1;
  }
  std::thread loop([&] { io.run(); });

  const std::string request = "GET " + std::string(lichen::tes::kCredentialsPath) +
                              " HTTP/1.1\r\nHost: localhost\r\nAuthorization: " + token +
                              "\r\n\r\n";
  std::atomic<bool> measuring{false}, stop{false};
  std::atomic<int> failures{0};
  std::vector<std::vector<double>> latencies(clients);  // microseconds, per client
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      asio::io_context cio;
      tcp::socket s(cio);
      boost::system::error_code ec;
      s.connect({asio::ip::make_address("127.0.0.1"), *port}, ec);
      if (ec) {
        ++failures;
        return;
      }
      s.set_option(tcp::no_delay(true));
      timeval tv{5, 0};  // a stuck server fails the run instead of hanging it
      setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      std::string buf;
      auto& mine = latencies[c];
      mine.reserve(1 << 16);
      while (!stop.load(std::memory_order_relaxed)) {
        auto t0 = Clock::now();
        asio::write(s, asio::buffer(request), ec);
        if (ec || !ReadResponse(s, buf)) {
          ++failures;
          return;
        }
        if (measuring.load(std::memory_order_relaxed)) {
          mine.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
        }
        if (think_us > 0) std::this_thread::sleep_for(std::chrono::microseconds(think_us));
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(warmup));  // the run's length
  // The loop thread's CPU time per request: what serving costs, whatever the load on the
  // machine does to the clients' wall-clock latency.
  clockid_t loop_clock;
  pthread_getcpuclockid(loop.native_handle(), &loop_clock);
  auto cpu_now = [&] {
    timespec ts{};
    clock_gettime(loop_clock, &ts);
    return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) / 1e3;
  };
  measuring = true;
  double cpu_start = cpu_now();
  auto start = Clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  measuring = false;
  double loop_cpu_us = cpu_now() - cpu_start;
  double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  stop = true;
  for (auto& t : threads) t.join();
  asio::post(io, [&] { server.Stop(); });
  io.stop();
  loop.join();

  std::vector<double> all;
  for (auto& v : latencies) all.insert(all.end(), v.begin(), v.end());
  if (all.empty()) {
    std::fprintf(stderr, "no requests completed (%d failures)\n", failures.load());
    return 1;
  }
  std::sort(all.begin(), all.end());
  auto pct = [&](double p) {
    return all[std::min(all.size() - 1, static_cast<size_t>(p * static_cast<double>(all.size())))];
  };
  std::printf(
      "clients=%d think_us=%d seconds=%.1f requests=%zu failures=%d\n"
      "requests/s=%.0f\n"
      "latency_us p50=%.0f p90=%.0f p99=%.0f p99.9=%.0f max=%.0f\n"
      "server_loop_cpu_us_per_request=%.1f\n"
      "upstream_fetches=%llu\n",
      clients, think_us, elapsed, all.size(), failures.load(),
      static_cast<double>(all.size()) / elapsed, pct(0.50), pct(0.90), pct(0.99), pct(0.999),
      all.back(), loop_cpu_us / static_cast<double>(all.size()),
      static_cast<unsigned long long>(cache->stats().fetches));
  return failures.load() == 0 ? 0 : 1;
}
