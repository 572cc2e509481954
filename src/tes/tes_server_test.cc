#include "tes/tes_server.h"

#include <gtest/gtest.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <condition_variable>
#include <filesystem>
#include <future>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>
#include <vector>

namespace lichen::tes {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;
using namespace std::chrono_literals;

constexpr const char* kToken = "abcdefghijklmnop";

// ---- a blocking keep-alive HTTP client with socket timeouts (so no test hangs) ----

struct Resp {
  unsigned status = 0;
  std::string body;
  std::string error;  // transport failure, if any
};

class Client {
 public:
  Client(const std::string& address, uint16_t port) : socket_(io_) {
    boost::system::error_code ec;
    socket_.connect({asio::ip::make_address(address), port}, ec);
    if (ec) {
      error_ = ec.message();
      return;
    }
    timeval tv{10, 0};
    setsockopt(socket_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(socket_.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }
  Resp Send(http::verb method, std::string_view target, std::optional<std::string> auth) {
    Resp r;
    if (!error_.empty()) {
      r.error = error_;
      return r;
    }
    http::request<http::empty_body> req(method, beast::string_view(target.data(), target.size()),
                                        11);
    req.set(http::field::host, "localhost");
    if (auth) req.set(http::field::authorization, *auth);
    req.keep_alive(true);
    boost::system::error_code ec;
    http::write(socket_, req, ec);
    if (ec) {
      r.error = "write: " + ec.message();
      return r;
    }
    http::response<http::string_body> res;
    http::read(socket_, buffer_, res, ec);
    if (ec) {
      r.error = "read: " + ec.message();
      return r;
    }
    r.status = res.result_int();
    r.body = res.body();
    return r;
  }
  Resp Get(std::optional<std::string> auth = kToken) {
    return Send(http::verb::get, kCredentialsPath, std::move(auth));
  }

 private:
  asio::io_context io_;
  tcp::socket socket_;
  beast::flat_buffer buffer_;
  std::string error_;
};

// ---- providers ----

class CountingProvider : public aws::CredentialProvider {
 public:
  explicit CountingProvider(Result<aws::Credentials> r) : result(std::move(r)) {}
  Result<aws::Credentials> Get() override {
    ++calls;
    return result;
  }
  std::atomic<int> calls{0};
  Result<aws::Credentials> result;
};

// Blocks until Open() (or 20 s): an upstream that hangs.
class GatedProvider : public aws::CredentialProvider {
 public:
  Result<aws::Credentials> Get() override {
    ++calls;
    std::unique_lock lock(mu);
    cv.wait_for(lock, 20s, [&] { return open; });
    return Good();
  }
  void Open() {
    {
      std::lock_guard lock(mu);
      open = true;
    }
    cv.notify_all();
  }
  static aws::Credentials Good() {
    return aws::Credentials{"ASIAGATED", "gatedsecret", "gatedtoken",
                            std::chrono::system_clock::now() + 1h};
  }
  std::atomic<int> calls{0};
  std::mutex mu;
  std::condition_variable cv;
  bool open = false;
};

aws::Credentials GoodCreds() {
  auto exp = aws::ParseIso8601("2099-01-02T03:04:05Z");
  return aws::Credentials{"ASIAEXAMPLE", "secret/key+", "session-token", *exp};
}

// The server on its own io_context thread, as the runtime's loop would run it.
class TesFixture : public ::testing::Test {
 protected:
  void StartServer(std::shared_ptr<aws::CredentialProvider> provider, TesOptions options = {}) {
    options.log = [this](std::string_view line) {
      std::lock_guard lock(log_mu_);
      log_.emplace_back(line);
    };
    server_ = std::make_unique<TesServer>(io_, std::move(provider),
                                          std::vector<std::string>{kToken}, options);
    auto port = server_->Start();
    ASSERT_TRUE(port.ok()) << port.error().message;
    port_ = *port;
    ASSERT_NE(port_, 0);
    thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    if (gate_) gate_->Open();  // let a held fetch end so the server's worker can join
    if (server_) {
      std::promise<void> stopped;
      asio::post(io_, [&] {
        server_.reset();
        stopped.set_value();
      });
      stopped.get_future().wait_for(30s);
    }
    work_.reset();
    io_.stop();
    if (thread_.joinable()) thread_.join();
  }
  std::vector<std::string> Logs() {
    std::lock_guard lock(log_mu_);
    return log_;
  }
  template <typename F>
  auto OnLoop(F f) {
    std::packaged_task<decltype(f())()> task(std::move(f));
    auto fut = task.get_future();
    asio::post(io_, [&] { task(); });
    fut.wait_for(10s);
    return fut.get();
  }

  asio::io_context io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_{
      asio::make_work_guard(io_)};
  std::unique_ptr<TesServer> server_;
  std::shared_ptr<GatedProvider> gate_;
  uint16_t port_ = 0;
  std::thread thread_;
  std::mutex log_mu_;
  std::vector<std::string> log_;
};

TEST_F(TesFixture, AnswersContainerCredentialsJson) {
  StartServer(std::make_shared<CountingProvider>(GoodCreds()));
  Client c("127.0.0.1", port_);
  auto r = c.Get();
  ASSERT_EQ(r.error, "");
  ASSERT_EQ(r.status, 200u) << r.body;
  auto j = nlohmann::json::parse(r.body);
  EXPECT_EQ(j["AccessKeyId"], "ASIAEXAMPLE");
  EXPECT_EQ(j["SecretAccessKey"], "secret/key+");
  EXPECT_EQ(j["Token"], "session-token");
  EXPECT_EQ(j["Expiration"], "2099-01-02T03:04:05Z");
  // Without the trailing slash and with a query string: same resource.
  EXPECT_EQ(c.Send(http::verb::get, "/2016-11-01/credentialprovider", kToken).status, 200u);
  EXPECT_EQ(c.Send(http::verb::get, "/2016-11-01/credentialprovider/?x=1", kToken).status, 200u);
}

TEST_F(TesFixture, LongTermKeysGetAnExpirationAndEmptyToken) {
  StartServer(std::make_shared<CountingProvider>(
      aws::Credentials{"AKIALONGTERM", "secret", "", std::nullopt}));
  auto r = Client("127.0.0.1", port_).Get();
  ASSERT_EQ(r.status, 200u) << r.error << r.body;
  auto j = nlohmann::json::parse(r.body);
  EXPECT_EQ(j["Token"], "");
  auto exp = aws::ParseIso8601(j["Expiration"].get<std::string>());
  ASSERT_TRUE(exp.ok());
  EXPECT_GT(*exp, std::chrono::system_clock::now());
}

TEST_F(TesFixture, StatusCodes) {
  auto provider = std::make_shared<CountingProvider>(GoodCreds());
  StartServer(provider);
  Client c("127.0.0.1", port_);  // one keep-alive connection survives every error answer
  EXPECT_EQ(c.Send(http::verb::post, kCredentialsPath, kToken).status, 405u);
  EXPECT_EQ(c.Send(http::verb::put, kCredentialsPath, kToken).status, 405u);
  EXPECT_EQ(c.Send(http::verb::get, "/", kToken).status, 400u);
  EXPECT_EQ(c.Send(http::verb::get, "/2016-11-01/credentialprovider/x", kToken).status, 400u);
  EXPECT_EQ(c.Get(std::nullopt).status, 403u);
  EXPECT_EQ(c.Get("").status, 403u);
  EXPECT_EQ(c.Get("wrong-token").status, 403u);
  EXPECT_EQ(c.Get(std::string(kToken) + "x").status, 403u);
  EXPECT_EQ(provider->calls, 0);  // nothing unauthorized reaches the upstream
  EXPECT_EQ(c.Get().status, 200u);
}

TEST_F(TesFixture, TokensCanBeAddedAndRemoved) {
  StartServer(std::make_shared<CountingProvider>(GoodCreds()));
  Client c("127.0.0.1", port_);
  EXPECT_EQ(c.Get("component-b-token").status, 403u);
  server_->AddToken("component-b-token");
  EXPECT_EQ(c.Get("component-b-token").status, 200u);
  server_->RemoveToken("component-b-token");
  EXPECT_EQ(c.Get("component-b-token").status, 403u);
  EXPECT_EQ(c.Get().status, 200u);
}

TEST_F(TesFixture, UpstreamFailuresMapToStatusAndAreLogged) {
  auto provider = std::make_shared<CountingProvider>(
      MakeError(std::string(aws::kCredentialsClientError), "HTTP 403: role alias denied"));
  StartServer(provider);
  Client c("127.0.0.1", port_);
  auto r = c.Get();
  EXPECT_EQ(r.status, 500u) << r.error;
  EXPECT_EQ(r.body.find("role alias"), std::string::npos);  // details go to the log only
  auto logs = Logs();
  ASSERT_EQ(logs.size(), 1u);
  EXPECT_NE(logs[0].find("HTTP 403: role alias denied"), std::string::npos) << logs[0];

  provider->result = MakeError(std::string(aws::kCredentialsTimeout), "timed out");
  EXPECT_EQ(c.Get().status, 504u);
}

TEST_F(TesFixture, CachedCredentialsAreServedWithoutUpstreamCalls) {
  auto inner = std::make_shared<CountingProvider>(GoodCreds());
  auto cache = std::make_shared<aws::CachingCredentialProvider>(inner);
  StartServer(cache);
  Client c("127.0.0.1", port_);
  for (int i = 0; i < 50; ++i) ASSERT_EQ(c.Get().status, 200u);
  EXPECT_EQ(inner->calls, 1);
  EXPECT_EQ(OnLoop([&] { return server_->stats().upstream_fetches; }), 1u);
  EXPECT_EQ(OnLoop([&] { return server_->stats().requests; }), 50u);
}

TEST_F(TesFixture, ReachableOverIpv4AndIpv6) {
  StartServer(std::make_shared<CountingProvider>(GoodCreds()));
  auto v4 = Client("127.0.0.1", port_).Get();
  EXPECT_EQ(v4.status, 200u) << v4.error;
  auto v6 = Client("::1", port_).Get();
  EXPECT_EQ(v6.status, 200u) << v6.error;
  auto env = server_->EnvironmentFor(kToken);
  EXPECT_EQ(env["AWS_CONTAINER_CREDENTIALS_FULL_URI"],
            "http://localhost:" + std::to_string(port_) + "/2016-11-01/credentialprovider/");
  EXPECT_EQ(env["AWS_CONTAINER_AUTHORIZATION_TOKEN"], kToken);
}

TEST_F(TesFixture, ConcurrentKeepAliveClients) {
  auto inner = std::make_shared<CountingProvider>(GoodCreds());
  StartServer(std::make_shared<aws::CachingCredentialProvider>(inner));
  constexpr int kClients = 32, kRequests = 25;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      Client c(i % 2 == 0 ? "127.0.0.1" : "::1", port_);
      for (int n = 0; n < kRequests; ++n) {
        auto r = c.Get();
        if (r.status == 200 && r.body.find("ASIAEXAMPLE") != std::string::npos) ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok, kClients * kRequests);
  EXPECT_EQ(inner->calls, 1);
}

TEST_F(TesFixture, HangingUpstreamBlocksNothingElseAndTimesOutWith504) {
  gate_ = std::make_shared<GatedProvider>();
  TesOptions o;
  o.upstream_wait = 500ms;
  StartServer(gate_, o);
  // Two requests wait on the one hanging fetch...
  auto first = std::async(std::launch::async, [&] { return Client("127.0.0.1", port_).Get(); });
  auto second = std::async(std::launch::async, [&] { return Client("::1", port_).Get(); });
  // ...while other requests are answered at once by the same loop.
  Client other("127.0.0.1", port_);
  for (int i = 0; i < 20; ++i) {
    ASSERT_EQ(other.Get("nope").status, 403u);
    ASSERT_EQ(other.Send(http::verb::get, "/elsewhere", kToken).status, 400u);
  }
  EXPECT_EQ(first.get().status, 504u);
  EXPECT_EQ(second.get().status, 504u);
  EXPECT_EQ(gate_->calls, 1);  // one fetch for both waiters
  // The fetch still running is joined by the next request, then answers it.
  auto third = std::async(std::launch::async, [&] { return Client("127.0.0.1", port_).Get(); });
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (OnLoop([&] { return server_->stats().requests; }) < 43 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  gate_->Open();
  auto r = third.get();
  EXPECT_EQ(r.status, 200u) << r.error;
  EXPECT_NE(r.body.find("ASIAGATED"), std::string::npos);
  EXPECT_EQ(gate_->calls, 1);
  bool logged = false;
  for (const auto& line : Logs()) logged = logged || line.find("504") != std::string::npos;
  EXPECT_TRUE(logged);
}

TEST_F(TesFixture, MalformedRequestGets400AndClose) {
  StartServer(std::make_shared<CountingProvider>(GoodCreds()));
  asio::io_context io;
  tcp::socket s(io);
  s.connect({asio::ip::make_address("127.0.0.1"), port_});
  timeval tv{10, 0};
  setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  asio::write(s, asio::buffer(std::string("GARBAGE\x01 / HTTP/9\r\n\r\n")));
  std::string got;
  boost::system::error_code ec;
  char buf[512];
  for (int i = 0; i < 16; ++i) {  // until the server closes the connection
    size_t n = s.read_some(asio::buffer(buf), ec);
    got.append(buf, n);
    if (ec) break;
  }
  EXPECT_EQ(got.rfind("HTTP/1.1 400", 0), 0u) << got;
}

TEST_F(TesFixture, FixedPortIsUsedOnBothFamilies) {
  // Learn a free port from an ephemeral start, then ask for it explicitly.
  uint16_t port = 0;
  {
    asio::io_context io;
    TesServer probe(io, std::make_shared<CountingProvider>(GoodCreds()), {kToken});
    auto p = probe.Start();
    ASSERT_TRUE(p.ok()) << p.error().message;
    port = *p;
  }
  TesOptions o;
  o.port = port;
  StartServer(std::make_shared<CountingProvider>(GoodCreds()), o);
  EXPECT_EQ(port_, port);
  EXPECT_EQ(Client("::1", port).Get().status, 200u);
}

// ---- the AWS SDK for JavaScript as a component would use it ----

TEST_F(TesFixture, AwsSdkForJavaScriptGetsTheCredentials) {
  const char* src = std::getenv("LICHEN_SOURCE_DIR");
  std::filesystem::path tool =
      std::filesystem::path(src != nullptr ? src : LICHEN_SOURCE_DIR) / "tools/aws-credentials-js";
  if (!std::filesystem::exists(tool / "node_modules/@aws-sdk/credential-providers")) {
    FAIL() << "run scripts/setup.sh (npm ci in " << tool << ")";
  }
  if (std::system("node --version >/dev/null 2>&1") != 0) FAIL() << "node not installed";
  auto inner = std::make_shared<CountingProvider>(GoodCreds());
  StartServer(std::make_shared<aws::CachingCredentialProvider>(inner));
  std::string env;
  for (const auto& [k, v] : server_->EnvironmentFor(kToken)) env += k + "='" + v + "' ";
  // Nothing else may answer: no keys in the environment, no credentials files.
  std::string cmd = "cd '" + tool.string() +
                    "' && env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_PROFILE "
                    "-u AWS_CONTAINER_CREDENTIALS_RELATIVE_URI "
                    "AWS_SHARED_CREDENTIALS_FILE=/nonexistent AWS_CONFIG_FILE=/nonexistent " +
                    env + "timeout 60 node fetch-credentials.js 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int rc = pclose(p);
  ASSERT_EQ(rc, 0) << out;
  auto j = nlohmann::json::parse(out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << out;
  for (const char* provider : {"containerMetadata", "http", "chain"}) {
    SCOPED_TRACE(provider);
    ASSERT_TRUE(j.contains(provider)) << out;
    EXPECT_EQ(j[provider]["accessKeyId"], "ASIAEXAMPLE");
    EXPECT_EQ(j[provider]["secretAccessKey"], "secret/key+");
    EXPECT_EQ(j[provider]["sessionToken"], "session-token");
    EXPECT_EQ(j[provider]["expiration"], "2099-01-02T03:04:05.000Z");
  }
  EXPECT_EQ(inner->calls, 1);

  // And a wrong token is refused to the SDK too.
  std::string bad = "cd '" + tool.string() + "' && AWS_CONTAINER_CREDENTIALS_FULL_URI='" +
                    server_->EnvironmentFor("x")["AWS_CONTAINER_CREDENTIALS_FULL_URI"] +
                    "' AWS_CONTAINER_AUTHORIZATION_TOKEN=wrong timeout 60 node "
                    "fetch-credentials.js http >/dev/null 2>&1";
  EXPECT_NE(std::system(bad.c_str()), 0);
}

}  // namespace
}  // namespace lichen::tes
