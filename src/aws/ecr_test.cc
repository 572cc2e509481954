// ECR GetAuthorizationToken against tools/sigv4-oracle/ecr-standin.js (every request
// re-signed with the AWS SDK for JavaScript's signer and refused on any difference, as
// ECR does), plus in-test TCP servers that answer malformed bodies, errors, or nothing.
#include "aws/ecr.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <tuple>
#include <vector>

#include "aws/sigv4.h"

namespace lichen::aws {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using SysClock = std::chrono::system_clock;

constexpr char kRegistry[] = "123456789012";
constexpr char kAccessKey[] = "AKIDECRTEST";
constexpr char kSecret[] = "ecr/test+secret=";
constexpr char kTarget[] = "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken";

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Lower(std::string s) {
  for (auto& c : s) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return s;
}

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

std::string FindOnPath(const std::string& name) {
  std::stringstream dirs(std::getenv("PATH") ? std::getenv("PATH") : "");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    const fs::path p = fs::path(dir) / name;
    if (!dir.empty() && access(p.c_str(), X_OK) == 0) {
      return p.string();
    }
  }
  return "";
}

class FixedProvider : public CredentialProvider {
 public:
  explicit FixedProvider(Result<Credentials> c) : c_(std::move(c)) {}
  Result<Credentials> Get() override {
    ++calls;
    return c_;
  }
  std::atomic<int> calls{0};

 private:
  Result<Credentials> c_;
};

std::shared_ptr<FixedProvider> Keys(std::string secret = kSecret, std::string token = "",
                                    std::string key = kAccessKey) {
  return std::make_shared<FixedProvider>(
      Credentials{std::move(key), std::move(secret), std::move(token), std::nullopt});
}

EcrOptions Options(const std::string& endpoint) {
  EcrOptions o;
  o.endpoint = endpoint;
  o.initial_backoff = 1ms;  // the schedule itself is not under test; the bound is
  o.max_backoff = 5ms;
  o.request_timeout = 10s;
  return o;
}

// node ecr-standin.js <args>, for the duration of one test.
class StandIn {
 public:
  explicit StandIn(const std::vector<std::string>& args) {
    const char* source_dir = std::getenv("LICHEN_SOURCE_DIR");
    const std::string node = FindOnPath("node");
    if (source_dir == nullptr || node.empty()) {
      problem_ = "needs LICHEN_SOURCE_DIR (run through ctest) and node on PATH";
      return;
    }
    const fs::path oracle = fs::path(source_dir) / "tools" / "sigv4-oracle";
    if (!fs::exists(oracle / "node_modules" / "@smithy" / "signature-v4")) {
      problem_ = "tools/sigv4-oracle is not installed (npm ci there)";
      return;
    }
    const std::string script = (oracle / "ecr-standin.js").string();
    log_ = fs::path(::testing::TempDir()) /
           ("ecr-standin-" + std::to_string(getpid()) + "-" + std::to_string(++count_) + ".log");
    std::vector<std::string> argv_strings = {"node",     script,     "--access-key",
                                             kAccessKey, "--secret", kSecret};
    argv_strings.insert(argv_strings.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& s : argv_strings) {
      argv.push_back(s.data());
    }
    argv.push_back(nullptr);
    int in[2];
    int out[2];
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) {
      problem_ = "pipe failed";
      return;
    }
    pid_ = fork();
    if (pid_ == 0) {
      dup2(in[0], 0);
      dup2(out[1], 1);
      const int err = open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (err >= 0) {
        dup2(err, 2);
      }
      execv(node.c_str(), argv.data());
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    stdin_ = in[1];
    stdout_ = out[0];
    // Bounded wait for the first line: the port.
    std::string line;
    const auto deadline = Clock::now() + 30s;
    while (line.find('\n') == std::string::npos && Clock::now() < deadline) {
      pollfd p{stdout_, POLLIN, 0};
      if (poll(&p, 1, 200) > 0) {
        char buf[64];
        const ssize_t n = read(stdout_, buf, sizeof buf);
        if (n <= 0) {
          break;
        }
        line.append(buf, static_cast<size_t>(n));
      }
    }
    port = std::atoi(line.c_str());
    if (port <= 0) {
      problem_ = "ecr-standin.js did not start: " + line + ReadFile(log_);
    }
  }
  ~StandIn() {
    if (pid_ > 0) {
      close(stdin_);  // the stand-in exits when its stdin closes
      close(stdout_);
      kill(pid_, SIGTERM);
      bool reaped = false;
      for (int i = 0; i < 250 && !reaped; ++i) {
        reaped = waitpid(pid_, nullptr, WNOHANG) == pid_;
        if (!reaped) {
          std::this_thread::sleep_for(20ms);
        }
      }
      if (!reaped) {
        kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
      }
    }
    if (!log_.empty()) {
      fs::remove(log_);
    }
  }
  const std::string& problem() const { return problem_; }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port); }
  // The stand-in's log: one line per request, written before it answers.
  std::string log() const { return ReadFile(log_); }
  int requests() const {
    std::istringstream in(log());
    std::string line;
    int n = 0;
    while (std::getline(in, line)) {
      n += line.rfind("ecr-standin: ", 0) == 0 ? 1 : 0;
    }
    return n;
  }
  int port = 0;

 private:
  static inline int count_ = 0;
  pid_t pid_ = -1;
  int stdin_ = -1;
  int stdout_ = -1;
  fs::path log_;
  std::string problem_;
};

#define START_OR_FAIL(standin) ASSERT_TRUE((standin).problem().empty()) << (standin).problem()

// ---- in-test TCP servers ----

int Listen(int* port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(fd, 16) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(fd);
    return -1;
  }
  *port = ntohs(addr.sin_port);
  return fd;
}

bool SendAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    const ssize_t w = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (w <= 0) {
      return false;
    }
    off += static_cast<size_t>(w);
  }
  return true;
}

// Reads one request, head and Content-Length body (bounded); "" when the peer went away.
std::string ReadRequest(int fd, const std::atomic<bool>& stop) {
  std::string req;
  size_t want = std::string::npos;
  while (!stop && req.size() < want && req.size() < 65536) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) {
      continue;
    }
    char buf[4096];
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      return "";
    }
    req.append(buf, static_cast<size_t>(n));
    const auto end = req.find("\r\n\r\n");
    if (want == std::string::npos && end != std::string::npos) {
      const std::string head = Lower(req.substr(0, end));
      const auto cl = head.find("\r\ncontent-length:");
      want = end + 4 +
             (cl == std::string::npos ? 0 : std::strtoul(head.c_str() + cl + 17, nullptr, 10));
    }
  }
  return req;
}

// A loopback TCP server running `serve(connection index, fd)` per connection on its own
// thread until the destructor. Every wait polls with a timeout and checks `stop_`.
class TcpServer {
 public:
  using Serve = std::function<void(int index, int fd, const std::atomic<bool>& stop)>;
  explicit TcpServer(Serve serve) : serve_(std::move(serve)) {
    listen_ = Listen(&port);
    acceptor_ = std::thread([this] {
      int index = 0;
      while (!stop_) {
        pollfd p{listen_, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0) {
          continue;
        }
        const int fd = accept4(listen_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) {
          continue;
        }
        const int i = index++;
        connections = index;
        workers_.emplace_back([this, i, fd] {
          serve_(i, fd, stop_);
          close(fd);
        });
      }
    });
  }
  ~TcpServer() {
    stop_ = true;
    acceptor_.join();
    for (auto& w : workers_) {
      w.join();
    }
    close(listen_);
  }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port); }
  int port = 0;
  std::atomic<int> connections{0};

 private:
  Serve serve_;
  int listen_ = -1;
  std::atomic<bool> stop_{false};
  std::thread acceptor_;
  std::vector<std::thread> workers_;  // only the acceptor touches it until the join
};

// Connection i reads one request, records it, and gets responses[i] (the last one for
// any later connection), then the connection closes.
struct Script {
  std::vector<std::string> responses;
  std::mutex mu;
  std::vector<std::string> requests;  // guarded by mu
};

TcpServer::Serve Scripted(Script* script) {
  return [script](int index, int fd, const std::atomic<bool>& stop) {
    const std::string req = ReadRequest(fd, stop);
    {
      std::lock_guard<std::mutex> lock(script->mu);
      script->requests.push_back(req);
    }
    if (req.empty() || script->responses.empty()) {
      return;
    }
    SendAll(fd,
            script->responses[std::min(static_cast<size_t>(index), script->responses.size() - 1)]);
  };
}

// Reads the request and answers nothing until the client gives up.
void Silent(int, int fd, const std::atomic<bool>& stop) {
  ReadRequest(fd, stop);
  char buf[256];
  while (!stop) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 100) > 0 && recv(fd, buf, sizeof buf, 0) <= 0) {
      return;
    }
  }
}

std::string Http(const std::string& status, const std::string& body,
                 const std::string& extra_headers = "") {
  return "HTTP/1.1 " + status + "\r\nContent-Type: application/x-amz-json-1.1\r\n" + extra_headers +
         "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
}

std::string Answer(
    const std::string& token, const std::string& expires = "1900000000.5",
    const std::string& proxy = "\"https://123456789012.dkr.ecr.eu-west-1.amazonaws.com\"") {
  return R"({"authorizationData":[{"authorizationToken":")" + token + R"(","expiresAt":)" +
         expires + R"(,"proxyEndpoint":)" + proxy + "}]}";
}

// POSTs a request signed for the stand-in with our signer, but with the given target and
// content type; returns the raw response (bounded).
std::string RawPost(int port, const std::string& target, const std::string& content_type,
                    const std::string& body) {
  const std::string host = "127.0.0.1:" + std::to_string(port);
  SigningRequest req{
      "POST", host, "/", {}, {{"content-type", content_type}, {"x-amz-target", target}}};
  const SignedRequest s = Sign(req, Credentials{kAccessKey, kSecret, "", std::nullopt},
                               {"us-east-1", "ecr", SysClock::now(), Sha256Hex(body)});
  std::string text = "POST / HTTP/1.1\r\n";
  for (const auto& [k, v] : req.headers) {
    text += k + ": " + v + "\r\n";
  }
  for (const auto& [k, v] : s.headers) {
    text += k + ": " + v + "\r\n";
  }
  text += "content-length: " + std::to_string(body.size()) + "\r\nconnection: close\r\n\r\n" + body;
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  std::string response;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 && SendAll(fd, text)) {
    const auto deadline = Clock::now() + 10s;
    while (Clock::now() < deadline) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) {
        continue;
      }
      char buf[4096];
      const ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n <= 0) {
        break;
      }
      response.append(buf, static_cast<size_t>(n));
    }
  }
  close(fd);
  return response;
}

// ---- pure parts ----

TEST(EcrRegistryHost, Parses) {
  auto r = ParseEcrRegistryHost("123456789012.dkr.ecr.eu-west-1.amazonaws.com");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->registry_id, "123456789012");
  EXPECT_EQ(r->region, "eu-west-1");
  auto cn = ParseEcrRegistryHost("210987654321.dkr.ecr.cn-north-1.amazonaws.com.cn:443");
  ASSERT_TRUE(cn.has_value());
  EXPECT_EQ(cn->registry_id, "210987654321");
  EXPECT_EQ(cn->region, "cn-north-1");
  auto fips = ParseEcrRegistryHost("123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com");
  ASSERT_TRUE(fips.has_value());
  EXPECT_EQ(fips->region, "us-gov-west-1");
  for (const char* other :
       {"docker.io", "public.ecr.aws", "registry-1.docker.io", "localhost:5000",
        "12345678901.dkr.ecr.eu-west-1.amazonaws.com", "123456789012.dkr.ecr.eu-west-1.evil.com",
        "123456789012.dkr.ecr..amazonaws.com", "123456789012.dkr.ecr.eu_west.amazonaws.com",
        "x.123456789012.dkr.ecr.eu-west-1.amazonaws.com", ""}) {
    EXPECT_FALSE(ParseEcrRegistryHost(other).has_value()) << other;
  }
}

TEST(EcrResponse, DecodesTokenExpiryAndEndpoint) {
  // "AWS:pa:ss" — the password may itself hold colons.
  auto r = ParseEcrAuthorizationResponse(Answer(Base64("AWS:pa:ss"), "1700000000.123"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->username, "AWS");
  EXPECT_EQ(r->password, "pa:ss");
  EXPECT_EQ(r->proxy_endpoint, "https://123456789012.dkr.ecr.eu-west-1.amazonaws.com");
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::milliseconds>(r->expires_at.time_since_epoch())
                .count(),
            1700000000123);
  auto whole = ParseEcrAuthorizationResponse(Answer(Base64("u:p"), "1700000000"));
  ASSERT_TRUE(whole.ok());
  EXPECT_EQ(SysClock::to_time_t(whole->expires_at), 1700000000);
}

TEST(EcrResponse, MalformedAnswersNameWhatIsWrongAndNotTheToken) {
  const std::string secret = Base64("AWS-no-colon-secret");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"<html>gateway</html>", "not a JSON object"},
      {"[1,2]", "not a JSON object"},
      {"{}", "no authorizationData"},
      {R"({"authorizationData":[]})", "no authorizationData"},
      {R"({"authorizationData":[{"expiresAt":1}]})", "no authorizationToken"},
      {Answer("!!not base64!!"), "not base64"},
      {Answer("QVdT=A=="), "not base64"},
      {Answer(Base64("AWS:p").substr(1)), "not base64"},
      {Answer(secret), "not \"user:password\""},
      {Answer(Base64(":password")), "not \"user:password\""},
      {Answer(Base64("AWS:")), "not \"user:password\""},
      {Answer(Base64("AWS:p"), "\"2026-01-01T00:00:00Z\""), "no expiresAt"},
      {Answer(Base64("AWS:p"), "-5"), "no expiresAt"},
      {Answer(Base64("AWS:p"), "1e300"), "no expiresAt"},
      {Answer(Base64("AWS:p"), "1900000000", "null"), "no proxyEndpoint"},
      {Answer(Base64("AWS:p"), "1900000000", "\"\""), "no proxyEndpoint"},
  };
  for (const auto& [body, want] : cases) {
    auto r = ParseEcrAuthorizationResponse(body);
    ASSERT_FALSE(r.ok()) << body;
    EXPECT_EQ(r.error().code, kEcrCredentialError) << body;
    EXPECT_TRUE(Contains(r.error().message, want)) << body << ": " << r.error().message;
    EXPECT_FALSE(Contains(r.error().message, secret)) << r.error().message;
    EXPECT_FALSE(Contains(r.error().message, "no-colon-secret")) << r.error().message;
  }
}

// ---- against the stand-in ----

TEST(EcrStandIn, GetsTheRegistryCredentials) {
  // A password with colons, '+', '/', '=' and non-ASCII survives base64 and the split.
  const std::string password = "eyJwYXlsb2Fk:I+/=ö";
  StandIn ecr({"--region", "eu-west-1", "--password", password, "--expires-in", "43200"});
  START_OR_FAIL(ecr);
  EcrClient client(Options(ecr.endpoint()), Keys());
  const auto before = SysClock::now();
  auto r = client.GetAuthorization(kRegistry, "eu-west-1");
  const auto after = SysClock::now();
  ASSERT_TRUE(r.ok()) << r.error().message << "\n" << ecr.log();
  EXPECT_EQ(r->username, "AWS");
  EXPECT_EQ(r->password, password);
  EXPECT_EQ(r->proxy_endpoint, "https://123456789012.dkr.ecr.eu-west-1.amazonaws.com");
  EXPECT_GE(r->expires_at, before + 12h - 1s);
  EXPECT_LE(r->expires_at, after + 12h + 1s);
  EXPECT_EQ(ecr.requests(), 1);
  EXPECT_TRUE(Contains(ecr.log(), "200 GetAuthorizationToken registry=123456789012")) << ecr.log();
}

TEST(EcrStandIn, SessionTokenIsSignedAndSent) {
  const std::string token = "FwoGZXIvYXdzE/+=session";
  StandIn ecr({"--session-token", token});
  START_OR_FAIL(ecr);
  auto good = EcrClient(Options(ecr.endpoint()), Keys(kSecret, token))
                  .GetAuthorization(kRegistry, "us-east-1");
  ASSERT_TRUE(good.ok()) << good.error().message << "\n" << ecr.log();
  EXPECT_EQ(good->password, "ecr-standin-password");

  // Without it, or with another one, the stand-in does not know the caller.
  for (const std::string& other : {std::string(), std::string("other-token")}) {
    auto r = EcrClient(Options(ecr.endpoint()), Keys(kSecret, other))
                 .GetAuthorization(kRegistry, "us-east-1");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, kEcrCredentialError);
    EXPECT_TRUE(Contains(r.error().message, "UnrecognizedClientException")) << r.error().message;
  }
}

TEST(EcrStandIn, RefusedCredentialsNameTheAwsErrorAndAreNotRetried) {
  StandIn ecr({});
  START_OR_FAIL(ecr);
  struct Case {
    std::shared_ptr<FixedProvider> keys;
    std::string region;
    std::string type;
  };
  const std::vector<Case> cases = {
      {Keys("wrong-secret"), "us-east-1", "InvalidSignatureException"},
      {Keys(kSecret, "", "AKIDUNKNOWN"), "us-east-1", "UnrecognizedClientException"},
      {Keys(), "eu-central-1", "InvalidSignatureException"},  // signed for another region
  };
  int requests = 0;
  for (const Case& c : cases) {
    auto r = EcrClient(Options(ecr.endpoint()), c.keys).GetAuthorization(kRegistry, c.region);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, kEcrCredentialError);
    EXPECT_TRUE(Contains(r.error().message, c.type)) << r.error().message;
    EXPECT_TRUE(Contains(r.error().message, "HTTP 403")) << r.error().message;
    EXPECT_TRUE(Contains(r.error().message, "registry 123456789012")) << r.error().message;
    EXPECT_TRUE(Contains(r.error().message, "check the device's AWS credentials"))
        << r.error().message;
    EXPECT_FALSE(Contains(r.error().message, "wrong-secret")) << r.error().message;
    EXPECT_EQ(c.keys->calls.load(), 1);
    EXPECT_EQ(ecr.requests(), ++requests) << ecr.log();  // one request: no retries
  }
}

TEST(EcrStandIn, ServerErrorsAreRetried) {
  {
    StandIn ecr({"--fail-first", "2"});
    START_OR_FAIL(ecr);
    auto keys = Keys();
    auto r = EcrClient(Options(ecr.endpoint()), keys).GetAuthorization(kRegistry, "us-east-1");
    ASSERT_TRUE(r.ok()) << r.error().message << "\n" << ecr.log();
    EXPECT_EQ(ecr.requests(), 3) << ecr.log();
    EXPECT_EQ(keys->calls.load(), 3);  // credentials are fetched per attempt
  }
  {
    StandIn ecr({"--fail-first", "3"});
    START_OR_FAIL(ecr);
    auto r = EcrClient(Options(ecr.endpoint()), Keys()).GetAuthorization(kRegistry, "us-east-1");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, kEcrCredentialError);
    EXPECT_TRUE(Contains(r.error().message, "ServerException")) << r.error().message;
    EXPECT_TRUE(Contains(r.error().message, "HTTP 500")) << r.error().message;
    EXPECT_TRUE(Contains(r.error().message, "gave up after 3 attempts")) << r.error().message;
    EXPECT_EQ(ecr.requests(), 3) << ecr.log();
  }
}

TEST(EcrStandIn, RefusesOtherTargetsAndContentTypes) {
  StandIn ecr({});
  START_OR_FAIL(ecr);
  const std::string body = R"({"registryIds":["123456789012"]})";
  // Our signer with the right target: accepted, so the refusals below are about the target.
  const std::string ok = RawPost(ecr.port, kTarget, "application/x-amz-json-1.1", body);
  EXPECT_EQ(ok.rfind("HTTP/1.1 200", 0), 0u) << ok;
  const std::string target = RawPost(ecr.port, "AmazonEC2ContainerRegistry_V20150921.ListImages",
                                     "application/x-amz-json-1.1", body);
  EXPECT_EQ(target.rfind("HTTP/1.1 400", 0), 0u) << target;
  EXPECT_TRUE(Contains(target, "UnknownOperationException")) << target;
  const std::string type = RawPost(ecr.port, kTarget, "application/json", body);
  EXPECT_EQ(type.rfind("HTTP/1.1 400", 0), 0u) << type;
  EXPECT_TRUE(Contains(type, "SerializationException")) << type;
  const std::string id =
      RawPost(ecr.port, kTarget, "application/x-amz-json-1.1", R"({"registryIds":["12345"]})");
  EXPECT_EQ(id.rfind("HTTP/1.1 400", 0), 0u) << id;
  EXPECT_TRUE(Contains(id, "InvalidParameterException")) << id;
  EXPECT_EQ(ecr.requests(), 4) << ecr.log();
}

// ---- against in-test servers ----

TEST(EcrClientRequest, IsWhatEcrExpects) {
  Script script{{Http("200 OK", Answer(Base64("AWS:pw")))}, {}, {}};
  TcpServer server(Scripted(&script));
  EcrClient client(Options(server.endpoint()), Keys(kSecret, "the-session-token"));
  auto r = client.GetAuthorization(kRegistry, "eu-west-1");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->password, "pw");
  std::lock_guard<std::mutex> lock(script.mu);
  ASSERT_EQ(script.requests.size(), 1u);
  const std::string& req = script.requests[0];
  const auto end = req.find("\r\n\r\n");
  ASSERT_NE(end, std::string::npos) << req;
  const std::string head = Lower(req.substr(0, end));
  const std::string body = req.substr(end + 4);
  EXPECT_EQ(head.rfind("post / http/1.1\r\n", 0), 0u) << head;
  EXPECT_TRUE(Contains(head, "\r\ncontent-type: application/x-amz-json-1.1\r\n")) << head;
  EXPECT_TRUE(Contains(head, "\r\nx-amz-target: " + Lower(kTarget) + "\r\n")) << head;
  EXPECT_TRUE(Contains(head, "\r\nx-amz-security-token: the-session-token\r\n")) << head;
  EXPECT_TRUE(Contains(head, "\r\nhost: 127.0.0.1:" + std::to_string(server.port) + "\r\n"))
      << head;
  EXPECT_TRUE(Contains(head,
                       "/eu-west-1/ecr/aws4_request, signedheaders=content-type;host;"
                       "x-amz-date;x-amz-security-token;x-amz-target, signature="))
      << head;
  EXPECT_FALSE(Contains(head, "x-amz-content-sha256")) << head;  // S3 only
  EXPECT_FALSE(Contains(head, "expect:")) << head;
  EXPECT_EQ(nlohmann::json::parse(body),
            nlohmann::json::parse(R"({"registryIds":["123456789012"]})"))
      << body;
}

TEST(EcrClientRequest, MalformedAnswersAreNotRetried) {
  const std::string secret = Base64("AWS-and-no-colon");
  for (const auto& [answer, want] : std::vector<std::pair<std::string, std::string>>{
           {Http("200 OK", "Service Unavailable"), "not a JSON object"},
           {Http("200 OK", "{}"), "no authorizationData"},
           {Http("200 OK", Answer("%%%")), "not base64"},
           {Http("200 OK", Answer(secret)), "not \"user:password\""}}) {
    Script script{{answer}, {}, {}};
    TcpServer server(Scripted(&script));
    auto r = EcrClient(Options(server.endpoint()), Keys()).GetAuthorization(kRegistry, "us-east-1");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, kEcrCredentialError);
    EXPECT_TRUE(Contains(r.error().message, want)) << r.error().message;
    EXPECT_TRUE(Contains(r.error().message, "GetAuthorizationToken for registry 123456789012"))
        << r.error().message;
    EXPECT_FALSE(Contains(r.error().message, secret)) << r.error().message;
    std::lock_guard<std::mutex> lock(script.mu);
    EXPECT_EQ(script.requests.size(), 1u) << want;
  }
}

TEST(EcrClientRequest, ErrorTypesFromBodyOrHeader) {
  {
    // AccessDenied: named, with what the device role lacks; not retried.
    Script script{
        {Http(
            "400 Bad Request",
            R"({"__type":"com.amazonaws.ecr#AccessDeniedException","message":"User: arn:aws:sts::1:assumed-role/GGTokenExchangeRole is not authorized to perform: ecr:GetAuthorizationToken"})",
            "x-amzn-RequestId: req-1234\r\n")},
        {},
        {}};
    TcpServer server(Scripted(&script));
    auto r = EcrClient(Options(server.endpoint()), Keys()).GetAuthorization(kRegistry, "us-east-1");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, kEcrCredentialError);
    const std::string& m = r.error().message;
    EXPECT_TRUE(Contains(m, "AccessDeniedException: User: arn:aws:sts::1:assumed-role")) << m;
    EXPECT_TRUE(Contains(m, "HTTP 400, request id req-1234")) << m;
    EXPECT_TRUE(Contains(m, "needs ecr:GetAuthorizationToken")) << m;
    EXPECT_FALSE(Contains(m, "com.amazonaws.ecr#")) << m;
    EXPECT_EQ(server.connections.load(), 1);
  }
  {
    // Only the header names the type (a body that is not JSON).
    Script script{{Http("403 Forbidden", "denied",
                        "x-amzn-ErrorType: UnrecognizedClientException:http://internal.amazon.com/"
                        "coral/com.amazon.coral.service/\r\n")},
                  {},
                  {}};
    TcpServer server(Scripted(&script));
    auto r = EcrClient(Options(server.endpoint()), Keys()).GetAuthorization(kRegistry, "us-east-1");
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(Contains(r.error().message, "UnrecognizedClientException: denied (HTTP 403"))
        << r.error().message;
    EXPECT_FALSE(Contains(r.error().message, "internal.amazon.com")) << r.error().message;
  }
  {
    // Throttling (400 in the JSON protocol) and a proxy's 502 page are retried.
    Script script{
        {Http("400 Bad Request", R"({"__type":"ThrottlingException","message":"Rate exceeded"})"),
         Http("502 Bad Gateway", "<html>upstream gone</html>"),
         Http("200 OK", Answer(Base64("AWS:third")))},
        {},
        {}};
    TcpServer server(Scripted(&script));
    auto r = EcrClient(Options(server.endpoint()), Keys()).GetAuthorization(kRegistry, "us-east-1");
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->password, "third");
    EXPECT_EQ(server.connections.load(), 3);
  }
  {
    // Retries used up: the last failure, named.
    Script script{{Http("502 Bad Gateway", "<html>upstream gone</html>")}, {}, {}};
    TcpServer server(Scripted(&script));
    auto r = EcrClient(Options(server.endpoint()), Keys()).GetAuthorization(kRegistry, "us-east-1");
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(Contains(r.error().message, "<html>upstream gone</html> (HTTP 502)"))
        << r.error().message;
    EXPECT_TRUE(Contains(r.error().message, "gave up after 3 attempts")) << r.error().message;
    EXPECT_EQ(server.connections.load(), 3);
  }
}

TEST(EcrClientRequest, TimeoutsAndRefusedConnectionsAreRetriedWithinBounds) {
  {
    TcpServer silent(Silent);
    EcrOptions o = Options(silent.endpoint());
    o.request_timeout = 300ms;
    const auto start = Clock::now();
    auto r = EcrClient(o, Keys()).GetAuthorization(kRegistry, "us-east-1");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, kEcrCredentialError);
    EXPECT_TRUE(Contains(r.error().message, "timed out")) << r.error().message;
    EXPECT_TRUE(Contains(r.error().message, "gave up after 3 attempts")) << r.error().message;
    EXPECT_LT(Clock::now() - start, 5s);
    EXPECT_EQ(silent.connections.load(), 3);
  }
  {
    int port = 0;
    close(Listen(&port));  // nothing listens there now
    auto r = EcrClient(Options("http://127.0.0.1:" + std::to_string(port)), Keys())
                 .GetAuthorization(kRegistry, "us-east-1");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, kEcrCredentialError);
    EXPECT_TRUE(Contains(r.error().message, "cannot reach http://127.0.0.1:")) << r.error().message;
    EXPECT_TRUE(Contains(r.error().message, "gave up after 3 attempts")) << r.error().message;
  }
}

TEST(EcrClientRequest, NoCredentialsOrBadArgumentsFailBeforeAnyRequest) {
  Script script{{Http("200 OK", Answer(Base64("AWS:pw")))}, {}, {}};
  TcpServer server(Scripted(&script));
  auto none = std::make_shared<FixedProvider>(
      Error{"credentials provider iot.example: HTTP 403: role alias not found", "X"});
  auto r = EcrClient(Options(server.endpoint()), none).GetAuthorization(kRegistry, "us-east-1");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, kEcrCredentialError);
  EXPECT_TRUE(Contains(r.error().message, "no AWS credentials could be obtained"))
      << r.error().message;
  EXPECT_TRUE(Contains(r.error().message, "role alias not found")) << r.error().message;
  EXPECT_EQ(none->calls.load(), 1);  // the provider retries on its own

  for (const auto& [id, region, want] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"12345", "us-east-1", "not a 12-digit AWS account id"},
           {"12345678901a", "us-east-1", "not a 12-digit AWS account id"},
           {kRegistry, "", "not an AWS region name"},
           {kRegistry, "evil.com/x", "not an AWS region name"}}) {
    auto bad = EcrClient(Options(server.endpoint()), Keys()).GetAuthorization(id, region);
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error().code, kEcrCredentialError);
    EXPECT_TRUE(Contains(bad.error().message, want)) << bad.error().message;
  }
  EXPECT_EQ(server.connections.load(), 0);
}

TEST(EcrClientRequest, GoesToAwsThroughTheConfiguredProxy) {
  // No endpoint: ECR's own host, asked of the proxy with CONNECT (refused here, so
  // nothing leaves the machine).
  for (const auto& [region, host] : std::vector<std::pair<std::string, std::string>>{
           {"eu-west-1", "api.ecr.eu-west-1.amazonaws.com:443"},
           {"cn-north-1", "api.ecr.cn-north-1.amazonaws.com.cn:443"}}) {
    Script script{
        {"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"}, {}, {}};
    TcpServer proxy(Scripted(&script));
    EcrOptions o = Options("");
    o.proxy = proxy.endpoint();
    o.max_attempts = 1;
    auto r = EcrClient(o, Keys()).GetAuthorization(kRegistry, region);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, kEcrCredentialError);
    EXPECT_TRUE(Contains(r.error().message, "https://" + host.substr(0, host.size() - 4)))
        << r.error().message;
    std::lock_guard<std::mutex> lock(script.mu);
    ASSERT_EQ(script.requests.size(), 1u);
    EXPECT_EQ(script.requests[0].rfind("CONNECT " + host + " HTTP/1.1\r\n", 0), 0u)
        << script.requests[0];
  }
}

// ---- the cache ----

struct FakeClock {
  SysClock::time_point now = SysClock::now();
  std::function<SysClock::time_point()> fn() {
    return [this] { return now; };
  }
};

TEST(EcrTokenCache, ReusesATokenUntilTenMinutesBeforeExpiry) {
  StandIn ecr({"--expires-in", "3600"});
  START_OR_FAIL(ecr);
  FakeClock clock;
  EcrTokenCacheOptions o;
  o.clock = clock.fn();
  EcrTokenCache cache(std::make_shared<EcrClient>(Options(ecr.endpoint()), Keys()), o);
  auto first = cache.Get(kRegistry, "us-east-1");
  ASSERT_TRUE(first.ok()) << first.error().message << "\n" << ecr.log();
  auto second = cache.Get(kRegistry, "us-east-1");
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->password, first->password);
  EXPECT_EQ(second->expires_at, first->expires_at);
  EXPECT_EQ(ecr.requests(), 1);

  // Another registry (or region) is its own entry.
  ASSERT_TRUE(cache.Get("210987654321", "us-east-1").ok());
  EXPECT_EQ(ecr.requests(), 2);

  clock.now += 3600s - 600s - 1s;  // just over 10 min left: still cached
  ASSERT_TRUE(cache.Get(kRegistry, "us-east-1").ok());
  EXPECT_EQ(ecr.requests(), 2);
  clock.now += 2s;  // under 10 min left: fetched anew
  auto third = cache.Get(kRegistry, "us-east-1");
  ASSERT_TRUE(third.ok());
  EXPECT_GT(third->expires_at, first->expires_at);
  EXPECT_EQ(ecr.requests(), 3);
  EXPECT_EQ(cache.stats().fetches, 3u);

  // Invalidate forgets a token the registry refused (the stand-in dates tokens by the
  // real clock, so this part runs on it).
  EcrTokenCache real(std::make_shared<EcrClient>(Options(ecr.endpoint()), Keys()));
  ASSERT_TRUE(real.Get(kRegistry, "us-east-1").ok());
  ASSERT_TRUE(real.Get(kRegistry, "us-east-1").ok());
  EXPECT_EQ(ecr.requests(), 4);
  real.Invalidate(kRegistry, "us-east-1");
  ASSERT_TRUE(real.Get(kRegistry, "us-east-1").ok());
  EXPECT_EQ(ecr.requests(), 5);
  EXPECT_EQ(real.stats().fetches, 2u);
}

TEST(EcrTokenCache, TheMarginIsAnOption) {
  // Tokens 5 min from expiry are already due under the default 10-min margin: each Get
  // fetches (and still hands the token out); with a 1-min margin the token is kept.
  StandIn ecr({"--expires-in", "300"});
  START_OR_FAIL(ecr);
  auto client = std::make_shared<EcrClient>(Options(ecr.endpoint()), Keys());
  EcrTokenCache strict(client);
  ASSERT_TRUE(strict.Get(kRegistry, "us-east-1").ok());
  ASSERT_TRUE(strict.Get(kRegistry, "us-east-1").ok());
  EXPECT_EQ(ecr.requests(), 2);
  EcrTokenCacheOptions o;
  o.refresh_before_expiry = 60s;
  EcrTokenCache lenient(client, o);
  ASSERT_TRUE(lenient.Get(kRegistry, "us-east-1").ok());
  ASSERT_TRUE(lenient.Get(kRegistry, "us-east-1").ok());
  EXPECT_EQ(ecr.requests(), 3);
}

// A fetch that blocks until released, to hold it open while others arrive.
struct Gate {
  Result<EcrAuthorization> Fetch(const std::string& id) {
    ++calls;
    std::unique_lock lock(mu);
    cv.wait_for(lock, 10s, [&] { return open; });
    if (!succeed) {
      return MakeError(std::string(kEcrCredentialError), "down for " + id);
    }
    return EcrAuthorization{"AWS", "pw-" + id + "-" + std::to_string(calls.load()), "https://r",
                            SysClock::now() + 12h};
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
  bool succeed = true;
};

// Bounded wait until `n` callers wait on the fetch in progress.
bool WaitForWaiters(EcrTokenCache& cache, uint64_t n) {
  const auto deadline = Clock::now() + 10s;
  while (cache.stats().waiting < n && Clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  return cache.stats().waiting == n;
}

TEST(EcrTokenCache, ConcurrentCallersShareOneFetchPerRegistry) {
  Gate gate;
  std::atomic<int> other_calls{0};
  EcrTokenCache cache([&](const std::string& id, const std::string&) -> Result<EcrAuthorization> {
    if (id != kRegistry) {
      ++other_calls;  // another registry: never held up by the gate
      return EcrAuthorization{"AWS", "other", "https://o", SysClock::now() + 12h};
    }
    return gate.Fetch(id);
  });
  constexpr int kCallers = 8;
  std::vector<std::future<Result<EcrAuthorization>>> results;
  for (int i = 0; i < kCallers; ++i) {
    results.push_back(
        std::async(std::launch::async, [&] { return cache.Get(kRegistry, "us-east-1"); }));
  }
  ASSERT_TRUE(WaitForWaiters(cache, kCallers - 1));
  // While that fetch is held, another registry is fetched at once.
  auto other = cache.Get("210987654321", "us-east-1");
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other_calls.load(), 1);
  gate.Open();
  for (auto& f : results) {
    auto r = f.get();
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->password, "pw-123456789012-1");
  }
  EXPECT_EQ(gate.calls.load(), 1);
  EXPECT_EQ(cache.stats().fetches, 2u);
  EXPECT_EQ(cache.stats().waiting, 0u);
}

TEST(EcrTokenCache, AFailureIsSharedWithWaitersButNotKept) {
  Gate gate;
  gate.succeed = false;
  EcrTokenCache cache([&](const std::string& id, const std::string&) { return gate.Fetch(id); });
  constexpr int kCallers = 4;
  std::vector<std::future<Result<EcrAuthorization>>> results;
  for (int i = 0; i < kCallers; ++i) {
    results.push_back(
        std::async(std::launch::async, [&] { return cache.Get(kRegistry, "us-east-1"); }));
  }
  ASSERT_TRUE(WaitForWaiters(cache, kCallers - 1));
  gate.Open();
  for (auto& f : results) {
    auto r = f.get();
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, kEcrCredentialError);
    EXPECT_EQ(r.error().message, "down for 123456789012");
  }
  EXPECT_EQ(gate.calls.load(), 1);
  gate.succeed = true;  // the gate is open: this fetch runs at once
  auto r = cache.Get(kRegistry, "us-east-1");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(gate.calls.load(), 2);
}

TEST(EcrTokenCache, AThrowingFetchEndsTheFetch) {
  int calls = 0;
  EcrTokenCache cache([&](const std::string&, const std::string&) -> Result<EcrAuthorization> {
    if (++calls == 1) {
      throw std::runtime_error("bad_alloc, say");
    }
    return EcrAuthorization{"AWS", "pw", "https://r", SysClock::now() + 12h};
  });
  auto r = cache.Get(kRegistry, "us-east-1");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, kEcrCredentialError);
  EXPECT_TRUE(Contains(r.error().message, "bad_alloc, say")) << r.error().message;
  EXPECT_TRUE(cache.Get(kRegistry, "us-east-1").ok());
}

}  // namespace
}  // namespace lichen::aws
