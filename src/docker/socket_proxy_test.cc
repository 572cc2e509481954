#include "docker/socket_proxy.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <future>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

namespace lichen::docker {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using namespace std::chrono_literals;

TEST(CreateBodyTest, AddsOurLabelsAndKeepsTheOthers) {
  auto body = AddLabelsToCreateBody(R"({"Image":"busybox","Labels":{"app":"web"}})",
                                    {{"lichen.component", "com.example.Web"}});
  ASSERT_TRUE(body.ok()) << body.error().message;
  auto doc = Json::parse(*body);
  EXPECT_EQ(doc["Image"], "busybox");
  EXPECT_EQ(doc["Labels"]["app"], "web");
  EXPECT_EQ(doc["Labels"]["lichen.component"], "com.example.Web");

  // A null or absent Labels becomes ours; ours win over a component's own attempt.
  for (const char* in : {R"({"Labels":null})", "{}", ""}) {
    auto out = AddLabelsToCreateBody(in, {{"lichen.component", "A"}});
    ASSERT_TRUE(out.ok()) << in;
    EXPECT_EQ(Json::parse(*out)["Labels"]["lichen.component"], "A") << in;
  }
  auto forged = AddLabelsToCreateBody(R"({"Labels":{"lichen.component":"Other"}})",
                                      {{"lichen.component", "Mine"}});
  ASSERT_TRUE(forged.ok());
  EXPECT_EQ(Json::parse(*forged)["Labels"]["lichen.component"], "Mine");

  EXPECT_FALSE(AddLabelsToCreateBody("[1]", {}).ok());
  EXPECT_FALSE(AddLabelsToCreateBody("{not json", {}).ok());
  EXPECT_FALSE(AddLabelsToCreateBody(R"({"Labels":"x"})", {}).ok());
  // Re-serialising recurses per level: a deeply nested body is refused, not dumped.
  auto deep = AddLabelsToCreateBody(
      "{\"Env\":" + std::string(100000, '[') + std::string(100000, ']') + "}", {});
  ASSERT_FALSE(deep.ok());
  EXPECT_NE(deep.error().message.find("nests deeper"), std::string::npos);
}

// Requests whose framing dockerd's parser could read differently from the proxy's (and so
// see a create the proxy did not label) are refused, whole.
TEST(RequestRewriterTest, AmbiguousFramingIsRefused) {
  const std::map<std::string, std::string> labels{{"lichen.component", "c"}};
  const std::string create = "POST /containers/create HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}";
  const std::pair<std::string, std::string> cases[] = {
      {"POST /build HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\n\r\n" + create,
       "malformed chunk size"},
      {"POST /build HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXY0\r\n\r\n",
       "chunk data not followed by CRLF"},
      {"POST /build HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: y\n\r\n" + create,
       "control character in a trailer line"},
      {"GET /_ping HTTP/1.1\r\nX: y\n\r\n" + create, "control character in a header line"},
      {"GET /_ping HTTP/1.1\nHost: d\r\n\r\n", "control character in the request line"},
      {"POST /build HTTP/1.1\r\nContent-Length : 2\r\n\r\n{}", "malformed header line"},
      {"POST /build HTTP/1.1\r\nX: a\r\n folded\r\n\r\n", "malformed header line"},
      {"POST /build HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 0\r\n\r\n{}",
       "more than one Content-Length"},
      {"POST /build HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
       "both Content-Length and Transfer-Encoding"},
      {"POST /build HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
       "does not end in chunked"},
  };
  for (const auto& [request, why] : cases) {
    RequestRewriter rewriter(labels, 64 * 1024);
    auto out = rewriter.Feed(request);
    ASSERT_FALSE(out.ok()) << request;
    EXPECT_NE(out.error().message.find(why), std::string::npos)
        << request << " -> " << out.error().message;
  }
  // What is well formed still passes, with optional white space and a chunk extension.
  RequestRewriter rewriter(labels, 64 * 1024);
  const std::string fine =
      "POST /build HTTP/1.1\r\nTransfer-Encoding:\tgzip, chunked \r\nX-A:b\r\n\r\n"
      "2;ext=1\r\nab\r\n0\r\nTrailer: t\r\n\r\nGET /_ping HTTP/1.1\r\n\r\n";
  auto out = rewriter.Feed(fine);
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(*out, fine);
}

TEST(RequestMatchTest, RecognisesCreateAndStartWithOrWithoutAVersion) {
  EXPECT_TRUE(IsContainerCreate("POST", "/containers/create"));
  EXPECT_TRUE(IsContainerCreate("POST", "/v1.41/containers/create?name=web"));
  EXPECT_FALSE(IsContainerCreate("GET", "/v1.41/containers/create"));
  EXPECT_FALSE(IsContainerCreate("POST", "/v1.41/containers/createx"));
  EXPECT_FALSE(IsContainerCreate("POST", "/v1.41/images/create?fromImage=x"));
  EXPECT_TRUE(IsLabelledCreate("POST", "/v1.41/containers/create?name=web"));
  EXPECT_TRUE(IsLabelledCreate("POST", "/v1.41/networks/create"));
  EXPECT_FALSE(IsLabelledCreate("POST", "/v1.41/networks/abc/connect"));
  EXPECT_FALSE(IsLabelledCreate("POST", "/v1.41/volumes/create"));
  EXPECT_EQ(StartedContainer("POST", "/v1.41/containers/abc123/start"), "abc123");
  EXPECT_EQ(StartedContainer("POST", "/containers/web/start?detachKeys=x"), "web");
  EXPECT_EQ(StartedContainer("POST", "/v1.41/containers/abc/stop"), std::nullopt);
  EXPECT_EQ(StartedContainer("GET", "/v1.41/containers/abc/start"), std::nullopt);
  EXPECT_EQ(StartedContainer("POST", "/v1.41/containers//start"), std::nullopt);
  EXPECT_EQ(AttachedContainer("POST", "/v1.41/containers/abc/attach?stream=1&stdout=1"), "abc");
  EXPECT_EQ(AttachedContainer("POST", "/v1.41/containers/abc/start"), std::nullopt);
  EXPECT_EQ(StartedContainer("POST", "/v1.41/containers/abc/attach"), std::nullopt);
}

int ConnectUnix(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// A proxy that answered at once (a 502) may have closed before the request was all
// written: EPIPE then ends the writing, without a SIGPIPE; the answer is still readable.
void WriteAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EPIPE) return;
    ASSERT_GT(n, 0) << std::strerror(errno);
    off += static_cast<size_t>(n);
  }
}

// Reads until EOF, bounded by a receive timeout.
std::string ReadToEof(int fd) {
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string out;
  char buf[4096];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// A stand-in daemon: takes one connection, records everything until the proxy passes
// the client's half-close on, then answers and closes.
class FakeDaemon {
 public:
  explicit FakeDaemon(std::string path) : path_(std::move(path)) {
    fs::remove(path_);
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path_.c_str(), sizeof(addr.sun_path) - 1);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(fd_, 4), 0);
    thread_ = std::thread([this] {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 5000) != 1) return received_.set_value("<no connection>");
      int c = ::accept(fd_, nullptr, nullptr);
      std::string got = ReadToEof(c);
      const std::string answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
      (void)::send(c, answer.data(), answer.size(), MSG_NOSIGNAL);  // the proxy may be gone
      ::close(c);
      received_.set_value(got);
    });
  }
  ~FakeDaemon() {
    if (thread_.joinable()) thread_.join();
    ::close(fd_);
    fs::remove(path_);
  }
  std::string Received() {
    auto f = received_.get_future();
    if (f.wait_for(10s) != std::future_status::ready) return "<timeout>";
    return f.get();
  }

 private:
  std::string path_;
  int fd_ = -1;
  std::promise<std::string> received_;
  std::thread thread_;
};

class SocketProxyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string base =
        fs::temp_directory_path() / ("lichen-proxy-" + std::to_string(::getpid()));
    fs::create_directories(base);
    daemon_path_ = base + "/daemon.sock";
    proxy_path_ = base + "/component.sock";
  }
  void TearDown() override {
    if (proxy_) boost::asio::post(io_, [this] { proxy_->Stop(); });
    io_.stop();
    if (thread_.joinable()) thread_.join();
    proxy_.reset();
    fs::remove_all(fs::path(proxy_path_).parent_path());
  }
  void StartProxy() {
    SocketProxyOptions options;
    options.upstream = daemon_path_;
    options.labels = {{"lichen.component", "com.example.Web"}, {"lichen.root", "/gg"}};
    options.on_container_started = [this](const std::string& id) { started_.push_back(id); };
    proxy_ = std::make_unique<SocketProxy>(io_, proxy_path_, options);
    ASSERT_TRUE(proxy_->Start().ok());
    thread_ = std::thread([this] {
      auto guard = boost::asio::make_work_guard(io_);
      io_.run();
    });
  }
  // Sends `requests` through the proxy on one connection, half-closes, returns the answer.
  std::string Exchange(const std::string& requests) {
    int fd = ConnectUnix(proxy_path_);
    EXPECT_GE(fd, 0);
    WriteAll(fd, requests);
    ::shutdown(fd, SHUT_WR);
    std::string answer = ReadToEof(fd);
    ::close(fd);
    return answer;
  }

  boost::asio::io_context io_;
  std::thread thread_;
  std::unique_ptr<SocketProxy> proxy_;
  std::string daemon_path_, proxy_path_;
  std::vector<std::string> started_;  // written on the loop, read after it stopped
};

TEST_F(SocketProxyTest, LabelsCreatesAndForwardsEverythingElseByteForByte) {
  FakeDaemon daemon(daemon_path_);
  StartProxy();
  const std::string ping = "HEAD /_ping HTTP/1.1\r\nHost: docker\r\n\r\n";
  const std::string create_body = R"({"Image":"busybox","Labels":{"app":"web"}})";
  const std::string create =
      "POST /v1.41/containers/create?name=web HTTP/1.1\r\nHost: docker\r\n"
      "Content-Type: application/json\r\nContent-Length: " +
      std::to_string(create_body.size()) + "\r\n\r\n" + create_body;
  const std::string start =
      "POST /v1.41/containers/abc123/start HTTP/1.1\r\nHost: docker\r\n"
      "Content-Length: 0\r\n\r\n";
  // A streamed (chunked) upload that is not a create passes through unchanged.
  const std::string load =
      "POST /v1.41/images/load HTTP/1.1\r\nHost: docker\r\n"
      "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3;x=y\r\nabc\r\n0\r\n\r\n";
  EXPECT_EQ(Exchange(ping + create + start + load),
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  const std::string got = daemon.Received();

  ASSERT_EQ(got.substr(0, ping.size()), ping);
  std::string rest = got.substr(ping.size());
  const size_t head_end = rest.find("\r\n\r\n");
  ASSERT_NE(head_end, std::string::npos) << got;
  const std::string head = rest.substr(0, head_end + 4);
  EXPECT_EQ(head.rfind("POST /v1.41/containers/create?name=web HTTP/1.1\r\n", 0), 0u) << head;
  EXPECT_NE(head.find("Content-Type: application/json\r\n"), std::string::npos) << head;
  rest.erase(0, head_end + 4);
  const size_t len_at = head.find("Content-Length: ");
  ASSERT_NE(len_at, std::string::npos) << head;
  const size_t len = std::stoul(head.substr(len_at + 16));
  auto body = Json::parse(rest.substr(0, len));
  EXPECT_EQ(body["Image"], "busybox");
  EXPECT_EQ(body["Labels"]["app"], "web");
  EXPECT_EQ(body["Labels"]["lichen.component"], "com.example.Web");
  EXPECT_EQ(body["Labels"]["lichen.root"], "/gg");
  EXPECT_EQ(rest.substr(len), start + load);

  io_.stop();
  thread_.join();
  EXPECT_EQ(started_, std::vector<std::string>{"abc123"});
  EXPECT_EQ(proxy_->containers_created(), 1u);
}

TEST_F(SocketProxyTest, AChunkedCreateIsCollectedAndSentWithALength) {
  FakeDaemon daemon(daemon_path_);
  StartProxy();
  const std::string json = R"({"Image":"busybox"})";
  const std::string create =
      "POST /containers/create HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" +
      std::string("a\r\n") + json.substr(0, 10) + "\r\n" + std::to_string(json.size() - 10) +
      "\r\n" + json.substr(10) + "\r\n0\r\n\r\n";
  Exchange(create);
  const std::string got = daemon.Received();
  EXPECT_EQ(got.find("Transfer-Encoding"), std::string::npos) << got;
  const size_t head_end = got.find("\r\n\r\n");
  ASSERT_NE(head_end, std::string::npos) << got;
  auto body = Json::parse(got.substr(head_end + 4));
  EXPECT_EQ(body["Image"], "busybox");
  EXPECT_EQ(body["Labels"]["lichen.component"], "com.example.Web");
}

TEST_F(SocketProxyTest, AfterAnUpgradeBytesFlowUntouched) {
  FakeDaemon daemon(daemon_path_);
  StartProxy();
  const std::string attach =
      "POST /v1.41/containers/abc/attach?stream=1&stdin=1 HTTP/1.1\r\nConnection: Upgrade\r\n"
      "Upgrade: tcp\r\n\r\n";
  // Looks like a create, but it is the container's stdin now.
  const std::string stdin_bytes =
      "POST /containers/create HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}garbage\x01\x02";
  Exchange(attach + stdin_bytes);
  EXPECT_EQ(daemon.Received(), attach + stdin_bytes);
  EXPECT_EQ(proxy_->containers_created(), 0u);
}

TEST_F(SocketProxyTest, MalformedRequestsAreRefusedByTheProxy) {
  FakeDaemon daemon(daemon_path_);
  StartProxy();
  const std::string answer = Exchange("NONSENSE\r\n\r\n");
  EXPECT_EQ(answer.rfind("HTTP/1.1 400", 0), 0u) << answer;
  EXPECT_NE(answer.find("malformed request line"), std::string::npos) << answer;
  daemon.Received();
}

TEST_F(SocketProxyTest, AnUnreachableDaemonIsA502ThatSaysWhere) {
  StartProxy();  // nothing listens on daemon_path_
  const std::string answer = Exchange("GET /_ping HTTP/1.1\r\n\r\n");
  EXPECT_EQ(answer.rfind("HTTP/1.1 502", 0), 0u) << answer;
  EXPECT_NE(answer.find(daemon_path_), std::string::npos) << answer;
}

TEST_F(SocketProxyTest, TheSocketBelongsToTheComponentOnly) {
  StartProxy();
  struct stat st {};
  ASSERT_EQ(::stat(proxy_path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

}  // namespace
}  // namespace lichen::docker
