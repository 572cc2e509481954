// The token exchange service (aws.greengrass.TokenExchangeService): a loopback HTTP
// server that hands AWS credentials to components the way the AWS SDKs' container
// credential provider expects them (AWS_CONTAINER_CREDENTIALS_FULL_URI +
// AWS_CONTAINER_AUTHORIZATION_TOKEN).
//
// Threading: the server lives on the caller's io_context (the runtime's event loop) and
// never blocks it: a fresh cached answer (when the provider is a
// CachingCredentialProvider) is served inline; anything else is fetched on the server's
// one worker thread, one fetch at a time, and every request waiting for it is answered
// when it ends or when its own wait passes `upstream_wait` (504).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "aws/credential_providers.h"
#include "aws/credentials.h"
#include "common/result.h"

namespace lichen::tes {

inline constexpr std::string_view kCredentialsPath = "/2016-11-01/credentialprovider/";

struct TesOptions {
  uint16_t port = 0;  // 0 = any free port (the same one on 127.0.0.1 and ::1)
  // A request waiting longer than this for the upstream is answered 504 (spec: 30 s).
  std::chrono::milliseconds upstream_wait{30000};
  // A keep-alive connection idle this long is closed.
  std::chrono::milliseconds idle_timeout{60000};
  size_t max_connections = 1024;  // beyond this new connections are closed at once
  // Decides the Authorization tokens besides those added with AddToken (the runtime
  // accepts each component's SVCUID). Called on the io_context's thread.
  std::function<bool(std::string_view token)> authorize;
  // One line per event worth logging (upstream failures, bind problems). Default: stderr.
  std::function<void(std::string_view)> log;
};

// What a component's environment needs to reach the server with `token`.
std::map<std::string, std::string> ComponentEnvironment(uint16_t port, std::string_view token);

class TesServer {
 public:
  // `tokens`: the Authorization values accepted at the start (AddToken adds more).
  TesServer(boost::asio::io_context& io, std::shared_ptr<aws::CredentialProvider> provider,
            std::vector<std::string> tokens, TesOptions options = {});
  ~TesServer();  // Stop(); waits for a running upstream fetch (bounded by its timeouts)
  TesServer(const TesServer&) = delete;
  TesServer& operator=(const TesServer&) = delete;

  // Binds 127.0.0.1 and ::1 on the same port and starts accepting; returns the port.
  // Call on the io_context's thread (or before it runs). ::1 missing (no IPv6 on the
  // host) is logged and tolerated; anything else is an error.
  Result<uint16_t> Start();
  // Closes listeners and connections. Call on the io_context's thread.
  void Stop();
  uint16_t port() const { return port_; }

  // Accepted Authorization tokens (each component gets its own). Any thread.
  void AddToken(std::string token);
  void RemoveToken(const std::string& token);

  // AWS_CONTAINER_CREDENTIALS_FULL_URI and AWS_CONTAINER_AUTHORIZATION_TOKEN for a
  // component holding `token` (valid after Start()).
  std::map<std::string, std::string> EnvironmentFor(std::string_view token) const {
    return ComponentEnvironment(port_, token);
  }

  struct Stats {
    uint64_t requests = 0;
    uint64_t upstream_fetches = 0;  // fetches this server started on its worker
  };
  Stats stats() const { return stats_; }  // io_context thread

 private:
  class Session;
  friend class Session;
  using Reply = std::function<void(unsigned status, std::string body)>;

  void Accept(boost::asio::ip::tcp::acceptor& acceptor);
  bool Authorized(std::string_view token);
  // Answers a credentials request through `reply` (now or later).
  void Credentials(Reply reply);
  void FetchDone(Result<aws::Credentials> result);
  void Answer(const Reply& reply, const Result<aws::Credentials>& r);
  void Log(std::string_view line);

  struct Waiter {
    Reply reply;
    std::shared_ptr<boost::asio::steady_timer> timer;
  };

  boost::asio::io_context& io_;
  std::shared_ptr<aws::CredentialProvider> provider_;
  aws::CachingCredentialProvider* cache_ = nullptr;  // provider_ when it is one
  TesOptions options_;
  std::mutex tokens_mu_;
  std::set<std::string, std::less<>> tokens_;
  std::vector<std::unique_ptr<boost::asio::ip::tcp::acceptor>> acceptors_;
  std::set<std::shared_ptr<Session>> sessions_;
  uint16_t port_ = 0;
  bool stopped_ = false;
  bool fetching_ = false;
  uint64_t next_waiter_ = 0;
  std::map<uint64_t, Waiter> waiters_;
  Stats stats_;
  aws::Credentials rendered_for_;  // the credentials `rendered_` is the JSON of
  std::string rendered_;
  // Alive-flag for work posted back from the worker after we are gone.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  boost::asio::thread_pool worker_{1};
};

}  // namespace lichen::tes
