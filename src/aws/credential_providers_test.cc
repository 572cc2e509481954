#include "aws/credential_providers.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <list>
#include <thread>
#include <vector>

namespace lichen::aws {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using asio::ip::tcp;

// ---- test PKI, made with the openssl command ----

struct Pki {
  fs::path dir;
  fs::path ca, server_cert, server_key, client_cert, client_key, rogue_cert, rogue_key;
};

void Run(const std::string& cmd) {
  ASSERT_EQ(std::system((cmd + " >/dev/null 2>&1").c_str()), 0) << cmd;
}

// A CA, a server certificate for "credentials.test" and 127.0.0.1, a device certificate
// signed by the CA, and a "rogue" device certificate from a second CA the server does
// not trust.
void MakePki(Pki& p) {
  char tmpl[] = "/tmp/lichen-creds-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  p.dir = tmpl;
  auto f = [&](const char* name) { return (p.dir / name).string(); };
  std::string d = p.dir.string();
  auto ca = [&](const std::string& name, const std::string& cn) {
    Run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj '/CN=" +
        cn + "' -keyout " + f((name + ".key").c_str()) + " -out " + f((name + ".pem").c_str()));
  };
  auto leaf = [&](const std::string& name, const std::string& issuer, const std::string& cn,
                  const std::string& ext) {
    Run("openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj '/CN=" + cn +
        "' -keyout " + d + "/" + name + ".key -out " + d + "/" + name + ".csr");
    std::ofstream(d + "/" + name + ".ext") << ext << "\n";
    Run("openssl x509 -req -in " + d + "/" + name + ".csr -CA " + d + "/" + issuer +
        ".pem -CAkey " + d + "/" + issuer + ".key -CAcreateserial -days 2 -extfile " + d + "/" +
        name + ".ext -out " + d + "/" + name + ".pem");
  };
  ca("ca", "Lichen Test CA");
  ca("rogueca", "Rogue CA");
  leaf("server", "ca", "credentials.test",
       "subjectAltName=DNS:credentials.test,IP:127.0.0.1\nextendedKeyUsage=serverAuth");
  leaf("client", "ca", "device", "extendedKeyUsage=clientAuth");
  leaf("rogue", "rogueca", "device", "extendedKeyUsage=clientAuth");
  p.ca = p.dir / "ca.pem";
  p.server_cert = p.dir / "server.pem";
  p.server_key = p.dir / "server.key";
  p.client_cert = p.dir / "client.pem";
  p.client_key = p.dir / "client.key";
  p.rogue_cert = p.dir / "rogue.pem";
  p.rogue_key = p.dir / "rogue.key";
}

// ---- an HTTPS server that demands a client certificate ----

struct Response {
  int status = 200;
  std::string body;
};

// The handler sees the raw request head; nullopt = never answer (a hanging upstream).
using Handler = std::function<std::optional<Response>(const std::string& head)>;

class MtlsServer {
 public:
  MtlsServer(const Pki& pki, Handler handler)
      : ctx_(asio::ssl::context::tls_server), handler_(std::move(handler)) {
    ctx_.use_certificate_chain_file(pki.server_cert.string());
    ctx_.use_private_key_file(pki.server_key.string(), asio::ssl::context::pem);
    ctx_.load_verify_file(pki.ca.string());
    ctx_.set_verify_mode(asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert);
    acceptor_.open(tcp::v4());
    acceptor_.bind({asio::ip::make_address("127.0.0.1"), 0});
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    Accept();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~MtlsServer() {
    asio::post(io_, [this] {
      acceptor_.close();
      for (auto& s : sessions_) {
        boost::system::error_code ec;
        s->lowest_layer().close(ec);
      }
    });
    io_.stop();
    thread_.join();
  }
  uint16_t port() const { return port_; }
  int requests() const { return requests_.load(); }
  int handshakes_failed() const { return handshakes_failed_.load(); }

 private:
  using Stream = asio::ssl::stream<tcp::socket>;
  struct Conn {
    std::shared_ptr<Stream> stream;
    std::shared_ptr<asio::streambuf> buf;
  };

  void Accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket sock) {
      if (ec) return;
      auto s = std::make_shared<Stream>(std::move(sock), ctx_);
      sessions_.push_back(s);
      s->async_handshake(asio::ssl::stream_base::server, [this, s](boost::system::error_code e) {
        if (e) {
          ++handshakes_failed_;
          return;
        }
        auto buf = std::make_shared<asio::streambuf>();
        asio::async_read_until(
            *s, *buf, "\r\n\r\n", [this, s, buf](boost::system::error_code e2, size_t n) {
              if (e2) {
                ++handshakes_failed_;  // TLS 1.3 rejects the cert here
                return;
              }
              std::string head(asio::buffers_begin(buf->data()),
                               asio::buffers_begin(buf->data()) + n);
              ++requests_;
              auto r = handler_(head);
              if (!r) return;  // hang: keep the connection, say nothing
              auto out = std::make_shared<std::string>(
                  "HTTP/1.1 " + std::to_string(r->status) +
                  " X\r\nContent-Type: application/json\r\nContent-Length: " +
                  std::to_string(r->body.size()) + "\r\nConnection: close\r\n\r\n" + r->body);
              asio::async_write(*s, asio::buffer(*out),
                                [s, out](boost::system::error_code, size_t) {
                                  boost::system::error_code ignored;
                                  s->lowest_layer().shutdown(tcp::socket::shutdown_both, ignored);
                                });
            });
      });
      Accept();
    });
  }

  asio::io_context io_;
  asio::ssl::context ctx_;
  tcp::acceptor acceptor_{io_};
  Handler handler_;
  std::list<std::shared_ptr<Stream>> sessions_;
  uint16_t port_ = 0;
  std::atomic<int> requests_{0};
  std::atomic<int> handshakes_failed_{0};
  std::thread thread_;
};

std::string GoodBody(const std::string& expiration = "2099-01-01T00:00:00Z") {
  return R"({"credentials":{"accessKeyId":"ASIAEXAMPLE","secretAccessKey":"secret",)"
         R"("sessionToken":"token","expiration":")" +
         expiration + R"("}})";
}

class IotProviderTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    pki_ = new Pki;
    MakePki(*pki_);
  }
  static void TearDownTestSuite() {
    fs::remove_all(pki_->dir);
    delete pki_;
  }
  IotCredentialsConfig Config(uint16_t port) {
    IotCredentialsConfig c;
    c.endpoint = "credentials.test";
    c.connect_address = "127.0.0.1";
    c.port = port;
    c.role_alias = "GreengrassV2TokenExchangeRoleAlias";
    c.thing_name = "MyThing";
    c.certificate = pki_->client_cert;
    c.private_key = pki_->client_key;
    c.root_ca = pki_->ca;
    c.connect_timeout = 2000ms;
    c.request_timeout = 3000ms;
    c.max_attempts = 1;
    c.retry_backoff = 10ms;
    return c;
  }
  static Pki* pki_;
};
Pki* IotProviderTest::pki_ = nullptr;

TEST_F(IotProviderTest, FetchesCredentialsWithThingNameHeader) {
  std::string seen;
  MtlsServer server(*pki_, [&](const std::string& head) -> std::optional<Response> {
    seen = head;
    return Response{200, GoodBody("2099-01-02T03:04:05Z")};
  });
  IotCredentialProvider p(Config(server.port()));
  auto r = p.Get();
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->access_key_id, "ASIAEXAMPLE");
  EXPECT_EQ(r->secret_access_key, "secret");
  EXPECT_EQ(r->session_token, "token");
  ASSERT_TRUE(r->expiration.has_value());
  EXPECT_EQ(FormatIso8601(*r->expiration), "2099-01-02T03:04:05Z");
  EXPECT_NE(seen.find("GET /role-aliases/GreengrassV2TokenExchangeRoleAlias/credentials HTTP/1.1"),
            std::string::npos)
      << seen;
  EXPECT_NE(seen.find("x-amzn-iot-thingname: MyThing"), std::string::npos) << seen;
  EXPECT_NE(seen.find("Host: credentials.test"), std::string::npos) << seen;
}

TEST_F(IotProviderTest, UntrustedClientCertificateIsRejected) {
  MtlsServer server(*pki_, [](const std::string&) -> std::optional<Response> {
    return Response{200, GoodBody()};
  });
  auto c = Config(server.port());
  c.certificate = pki_->rogue_cert;
  c.private_key = pki_->rogue_key;
  auto r = IotCredentialProvider(c).Get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, kCredentialsUnavailable);
  EXPECT_EQ(server.requests(), 0);
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (server.handshakes_failed() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_EQ(server.handshakes_failed(), 1);
}

TEST_F(IotProviderTest, MissingClientCertificateIsRejected) {
  MtlsServer server(*pki_, [](const std::string&) -> std::optional<Response> {
    return Response{200, GoodBody()};
  });
  auto c = Config(server.port());
  c.certificate = pki_->dir / "does-not-exist.pem";
  c.max_attempts = 3;  // a local file problem is not retried: no 5 s backoff is slept
  c.retry_backoff = 5s;
  auto start = std::chrono::steady_clock::now();
  auto r = IotCredentialProvider(c).Get();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("device certificate"), std::string::npos) << r.error().message;
  EXPECT_LT(std::chrono::steady_clock::now() - start, 4s);
  EXPECT_EQ(server.requests(), 0);
}

TEST_F(IotProviderTest, NoClientCertificateAtAllIsRejectedByServer) {
  // What the server does with a client that presents nothing: curl without SSLCERT.
  MtlsServer server(*pki_, [](const std::string&) -> std::optional<Response> {
    return Response{200, GoodBody()};
  });
  auto c = Config(server.port());
  c.certificate.clear();
  c.private_key.clear();
  auto r = IotCredentialProvider(c).Get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(server.requests(), 0);
  // The refusal came from the server's certificate check, not from the client side.
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (server.handshakes_failed() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_EQ(server.handshakes_failed(), 1);
}

TEST_F(IotProviderTest, ServerNotTrustedByRootCaIsRejected) {
  MtlsServer server(*pki_, [](const std::string&) -> std::optional<Response> {
    return Response{200, GoodBody()};
  });
  auto c = Config(server.port());
  c.root_ca = pki_->dir / "rogueca.pem";
  auto r = IotCredentialProvider(c).Get();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("cannot reach"), std::string::npos) << r.error().message;
}

TEST_F(IotProviderTest, ForbiddenIsAClientErrorWithStatusAndBody) {
  MtlsServer server(*pki_, [](const std::string&) -> std::optional<Response> {
    return Response{403, R"({"message":"Access Denied"})"};
  });
  auto c = Config(server.port());
  c.max_attempts = 3;  // 4xx is not retried
  auto r = IotCredentialProvider(c).Get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, kCredentialsClientError);
  EXPECT_NE(r.error().message.find("HTTP 403"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("Access Denied"), std::string::npos) << r.error().message;
  EXPECT_EQ(server.requests(), 1);
}

TEST_F(IotProviderTest, ServerErrorIsRetriedThenReported) {
  MtlsServer server(*pki_, [](const std::string&) -> std::optional<Response> {
    return Response{503, "busy"};
  });
  auto c = Config(server.port());
  c.max_attempts = 3;
  auto r = IotCredentialProvider(c).Get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, kCredentialsServerError);
  EXPECT_NE(r.error().message.find("HTTP 503: busy"), std::string::npos) << r.error().message;
  EXPECT_EQ(server.requests(), 3);
}

TEST_F(IotProviderTest, RetryRecoversFromOneServerError) {
  std::atomic<int> n{0};
  MtlsServer server(*pki_, [&](const std::string&) -> std::optional<Response> {
    if (n++ == 0) return Response{500, "oops"};
    return Response{200, GoodBody()};
  });
  auto c = Config(server.port());
  c.max_attempts = 3;
  auto r = IotCredentialProvider(c).Get();
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(server.requests(), 2);
}

TEST_F(IotProviderTest, MalformedBodiesAreClearErrors) {
  for (std::string body : {std::string("not json {"), std::string(R"({"credentials":{}})"),
                           std::string(R"({"x":1})"), GoodBody("tomorrow")}) {
    MtlsServer server(*pki_, [&](const std::string&) -> std::optional<Response> {
      return Response{200, body};
    });
    auto r = IotCredentialProvider(Config(server.port())).Get();
    ASSERT_FALSE(r.ok()) << body;
    EXPECT_EQ(r.error().code, kCredentialsUnavailable) << body;
    EXPECT_NE(r.error().message.find("credentials provider"), std::string::npos)
        << r.error().message;
  }
}

TEST_F(IotProviderTest, HangingUpstreamHitsTheTimeout) {
  MtlsServer server(*pki_,
                    [](const std::string&) -> std::optional<Response> { return std::nullopt; });
  auto c = Config(server.port());
  c.request_timeout = 500ms;
  auto start = std::chrono::steady_clock::now();
  auto r = IotCredentialProvider(c).Get();
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, kCredentialsTimeout);
  EXPECT_NE(r.error().message.find("timed out"), std::string::npos) << r.error().message;
  EXPECT_LT(took, 10s);  // generous: only proves the call returned, not how fast
}

TEST_F(IotProviderTest, TimeoutsAreRetried) {
  MtlsServer server(*pki_,
                    [](const std::string&) -> std::optional<Response> { return std::nullopt; });
  auto c = Config(server.port());
  c.request_timeout = 300ms;
  c.max_attempts = 2;
  auto r = IotCredentialProvider(c).Get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, kCredentialsTimeout);
  EXPECT_EQ(server.requests(), 2);
}

TEST_F(IotProviderTest, CachingSingleFlightAgainstRealServer) {
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  MtlsServer server(*pki_, [&](const std::string&) -> std::optional<Response> {
    std::unique_lock lock(mu);
    cv.wait_for(lock, 10s, [&] { return release; });
    return Response{200, GoodBody()};
  });
  auto cache = std::make_shared<CachingCredentialProvider>(
      std::make_shared<IotCredentialProvider>(Config(server.port())));
  constexpr int kCallers = 8;
  std::vector<std::future<Result<Credentials>>> results;
  for (int i = 0; i < kCallers; ++i) {
    results.push_back(std::async(std::launch::async, [&] { return cache->Get(); }));
  }
  // Release the upstream only once every other caller is waiting on the one fetch.
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (cache->stats().waiting < kCallers - 1 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_EQ(cache->stats().waiting, static_cast<uint64_t>(kCallers - 1));
  {
    std::lock_guard lock(mu);
    release = true;
  }
  cv.notify_all();
  for (auto& f : results) {
    auto r = f.get();
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->access_key_id, "ASIAEXAMPLE");
  }
  ASSERT_TRUE(cache->Get().ok());
  EXPECT_EQ(server.requests(), 1);
  EXPECT_EQ(cache->stats().fetches, 1u);
}

// ---- caching provider against a scripted inner provider ----

class ScriptedProvider : public CredentialProvider {
 public:
  Result<Credentials> Get() override {
    ++calls;
    std::lock_guard lock(mu);
    return next;
  }
  void Set(Result<Credentials> r) {
    std::lock_guard lock(mu);
    next = std::move(r);
  }
  std::atomic<int> calls{0};
  std::mutex mu;
  Result<Credentials> next = MakeError("unset");
};

struct FakeClock {
  std::chrono::system_clock::time_point now = std::chrono::system_clock::now();
  std::function<std::chrono::system_clock::time_point()> fn() {
    return [this] { return now; };
  }
};

Credentials Expiring(std::chrono::system_clock::time_point when) {
  return Credentials{"AKID", "SECRET", "TOKEN", when};
}

TEST(CachingProvider, CachesUntilFiveMinutesBeforeExpiry) {
  FakeClock clock;
  auto inner = std::make_shared<ScriptedProvider>();
  inner->Set(Expiring(clock.now + 60min));
  CachingOptions o;
  o.clock = clock.fn();
  CachingCredentialProvider cache(inner, o);
  ASSERT_TRUE(cache.Get().ok());
  ASSERT_TRUE(cache.Get().ok());
  EXPECT_EQ(inner->calls, 1);
  clock.now += 54min;  // 6 min left: still cached
  ASSERT_TRUE(cache.Get().ok());
  EXPECT_EQ(inner->calls, 1);
  clock.now += 2min;  // 4 min left: refresh
  ASSERT_TRUE(cache.TryCached() == std::nullopt);
  ASSERT_TRUE(cache.Get().ok());
  EXPECT_EQ(inner->calls, 2);
}

TEST(CachingProvider, CredentialsCloseToExpiryAreNotCached) {
  FakeClock clock;
  auto inner = std::make_shared<ScriptedProvider>();
  inner->Set(Expiring(clock.now + 4min));
  CachingOptions o;
  o.clock = clock.fn();
  CachingCredentialProvider cache(inner, o);
  ASSERT_TRUE(cache.Get().ok());
  ASSERT_TRUE(cache.Get().ok());
  EXPECT_EQ(inner->calls, 2);
}

TEST(CachingProvider, FailuresAreCachedByKind) {
  struct Case {
    std::string_view code;
    std::chrono::seconds ttl;
  };
  for (Case c : {Case{kCredentialsClientError, 120s}, Case{kCredentialsServerError, 60s},
                 Case{kCredentialsTimeout, 300s}, Case{kCredentialsUnavailable, 300s}}) {
    FakeClock clock;
    auto inner = std::make_shared<ScriptedProvider>();
    inner->Set(MakeError(std::string(c.code), "nope"));
    CachingOptions o;
    o.clock = clock.fn();
    CachingCredentialProvider cache(inner, o);
    EXPECT_FALSE(cache.Get().ok());
    clock.now += c.ttl - 1s;
    auto r = cache.Get();
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, c.code);
    EXPECT_EQ(inner->calls, 1) << c.code;
    inner->Set(Expiring(clock.now + 60min));
    clock.now += 1s;
    EXPECT_TRUE(cache.Get().ok()) << c.code;
    EXPECT_EQ(inner->calls, 2) << c.code;
  }
}

TEST(CachingProvider, NonExpiringCredentialsUseTheirTtlAndInvalidateForgets) {
  FakeClock clock;
  auto inner = std::make_shared<ScriptedProvider>();
  inner->Set(Credentials{"AKID", "SECRET", "", std::nullopt});
  CachingOptions o;
  o.clock = clock.fn();
  o.non_expiring_ttl = 3600s;
  CachingCredentialProvider cache(inner, o);
  ASSERT_TRUE(cache.Get().ok());
  clock.now += 3599s;
  ASSERT_TRUE(cache.Get().ok());
  EXPECT_EQ(inner->calls, 1);
  cache.Invalidate();
  ASSERT_TRUE(cache.Get().ok());
  EXPECT_EQ(inner->calls, 2);
  clock.now += 3600s;
  ASSERT_TRUE(cache.Get().ok());
  EXPECT_EQ(inner->calls, 3);
}

// An inner provider that blocks until released, to hold a fetch open.
class GatedProvider : public CredentialProvider {
 public:
  Result<Credentials> Get() override {
    ++calls;
    std::unique_lock lock(mu);
    cv.wait_for(lock, 10s, [&] { return open; });
    return result;
  }
  void Open() {
    {
      std::lock_guard lock(mu);
      open = true;
    }
    cv.notify_all();
  }
  std::atomic<int> calls{0};
  std::mutex mu;
  std::condition_variable cv;
  bool open = false;
  Result<Credentials> result = MakeError(std::string(kCredentialsServerError), "down");
};

TEST(CachingProvider, ConcurrentCallersShareOneFetchEvenAFailure) {
  auto inner = std::make_shared<GatedProvider>();
  CachingOptions o;
  o.server_error_ttl = 0s;  // not cached: waiters must still get the one fetch's answer
  CachingCredentialProvider cache(inner, o);
  constexpr int kCallers = 16;
  std::vector<std::future<Result<Credentials>>> results;
  for (int i = 0; i < kCallers; ++i) {
    results.push_back(std::async(std::launch::async, [&] { return cache.Get(); }));
  }
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (cache.stats().waiting < kCallers - 1 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  ASSERT_EQ(cache.stats().waiting, static_cast<uint64_t>(kCallers - 1));
  inner->Open();
  for (auto& f : results) {
    auto r = f.get();
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().message, "down");
  }
  EXPECT_EQ(inner->calls, 1);
  EXPECT_EQ(cache.stats().waiting, 0u);
}

// ---- static, environment, file ----

TEST(StaticProvider, ReturnsKeysAndRejectsEmptyOnes) {
  StaticCredentialProvider p(Credentials{"AKID", "SECRET", "", std::nullopt});
  auto r = p.Get();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->access_key_id, "AKID");
  EXPECT_FALSE(r->expiration.has_value());
  EXPECT_FALSE(StaticCredentialProvider(Credentials{}).Get().ok());
}

TEST(EnvironmentProvider, ReadsTheStandardVariables) {
  setenv("AWS_ACCESS_KEY_ID", "ENVID", 1);
  setenv("AWS_SECRET_ACCESS_KEY", "ENVSECRET", 1);
  setenv("AWS_SESSION_TOKEN", "ENVTOKEN", 1);
  auto r = EnvironmentCredentialProvider().Get();
  unsetenv("AWS_ACCESS_KEY_ID");
  unsetenv("AWS_SECRET_ACCESS_KEY");
  unsetenv("AWS_SESSION_TOKEN");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->access_key_id, "ENVID");
  EXPECT_EQ(r->session_token, "ENVTOKEN");
  EXPECT_FALSE(EnvironmentCredentialProvider().Get().ok());
}

TEST(SharedCredentialsFile, ParsesProfiles) {
  const char* text =
      "# comment\n"
      "[default]\n"
      "aws_access_key_id = DEFAULTID\n"
      "aws_secret_access_key=DEFAULTSECRET\n"
      "\n"
      "[edge]\r\n"
      "AWS_ACCESS_KEY_ID = EDGEID\r\n"
      "aws_secret_access_key = EDGE/SECRET+=\r\n"
      "aws_session_token = EDGETOKEN\r\n"
      "[profile other]\n"
      "aws_access_key_id = OTHERID\n"
      "aws_secret_access_key = OTHERSECRET\n"
      "[broken]\n"
      "aws_access_key_id = X\n";
  auto d = ParseSharedCredentials(text, "default");
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(d->access_key_id, "DEFAULTID");
  EXPECT_EQ(d->secret_access_key, "DEFAULTSECRET");
  EXPECT_EQ(d->session_token, "");
  auto e = ParseSharedCredentials(text, "edge");
  ASSERT_TRUE(e.ok()) << e.error().message;
  EXPECT_EQ(e->access_key_id, "EDGEID");
  EXPECT_EQ(e->secret_access_key, "EDGE/SECRET+=");
  EXPECT_EQ(e->session_token, "EDGETOKEN");
  auto o = ParseSharedCredentials(text, "other");
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->access_key_id, "OTHERID");
  auto missing = ParseSharedCredentials(text, "nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("no profile 'nope'"), std::string::npos);
  EXPECT_FALSE(ParseSharedCredentials(text, "broken").ok());
}

TEST(SharedCredentialsFile, ProviderReadsTheFileEachTime) {
  char tmpl[] = "/tmp/lichen-credfile-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  fs::path file = fs::path(tmpl) / "credentials";
  FileCredentialProvider p(file, "default");
  EXPECT_FALSE(p.Get().ok());  // no file yet
  std::ofstream(file) << "[default]\naws_access_key_id=ONE\naws_secret_access_key=S\n";
  auto r1 = p.Get();
  ASSERT_TRUE(r1.ok()) << r1.error().message;
  EXPECT_EQ(r1->access_key_id, "ONE");
  std::ofstream(file) << "[default]\naws_access_key_id=TWO\naws_secret_access_key=S\n";
  auto r2 = p.Get();
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->access_key_id, "TWO");
  fs::remove_all(tmpl);
}

TEST(Iso8601, RoundTripsAndRejectsJunk) {
  auto t = ParseIso8601("2026-11-28T23:00:00Z");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(FormatIso8601(*t), "2026-11-28T23:00:00Z");
  auto frac = ParseIso8601("2026-11-28T23:00:00.123Z");
  ASSERT_TRUE(frac.ok());
  EXPECT_EQ(FormatIso8601(*frac), "2026-11-28T23:00:00Z");
  auto off = ParseIso8601("2026-11-29T01:00:00+02:00");
  ASSERT_TRUE(off.ok());
  EXPECT_EQ(FormatIso8601(*off), "2026-11-28T23:00:00Z");
  EXPECT_FALSE(ParseIso8601("").ok());
  EXPECT_FALSE(ParseIso8601("2026-11-28").ok());
  EXPECT_FALSE(ParseIso8601("2026-13-28T23:00:00Z").ok());
  EXPECT_FALSE(ParseIso8601("2026-11-28T23:00:00").ok());
  EXPECT_FALSE(ParseIso8601("2026-11-28T23:00:00Zjunk").ok());
}

}  // namespace
}  // namespace lichen::aws
