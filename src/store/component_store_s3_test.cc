// PrepareArtifacts with s3:// artifacts. A canned loopback HTTP server stands in for S3:
// signing, retries and resuming are tested against s3rver in src/aws/s3_test.cc; this
// covers what the store adds (where the file goes, the recipe digest, keeping a good
// copy, errors).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "aws/s3.h"
#include "aws/sigv4.h"
#include "recipe/interpolate.h"
#include "store/component_store.h"

namespace lichen::store {
namespace {

namespace fs = std::filesystem;

// Serves `objects` (path -> bytes) for HEAD and GET, one request per connection.
using Objects = std::map<std::string, std::string>;

class FakeS3 {
 public:
  explicit FakeS3(std::map<std::string, std::string> objects) : objects_(std::move(objects)) {
    listen_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    bind(listen_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    listen(listen_, 16);
    getsockname(listen_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Run(); });
  }
  ~FakeS3() {
    stop_ = true;
    thread_.join();
    close(listen_);
  }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::atomic<int> requests{0};

 private:
  void Run() {
    while (!stop_) {
      pollfd p{listen_, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      const int fd = accept4(listen_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      Serve(fd);
      close(fd);
    }
  }
  void Serve(int fd) {
    std::string head;
    for (int i = 0; i < 100 && head.find("\r\n\r\n") == std::string::npos; ++i) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      char buf[4096];
      const ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n <= 0) return;
      head.append(buf, static_cast<size_t>(n));
    }
    ++requests;
    std::istringstream line(head);
    std::string method, path;
    line >> method >> path;
    const auto it = objects_.find(path);
    std::string r;
    if (it == objects_.end()) {
      const std::string body = "<Error><Code>NoSuchKey</Code></Error>";
      r = "HTTP/1.1 404 Not Found\r\nContent-Length: " + std::to_string(body.size()) +
          "\r\nConnection: close\r\n\r\n" + (method == "HEAD" ? "" : body);
    } else {
      r = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(it->second.size()) +
          "\r\nConnection: close\r\n\r\n" + (method == "HEAD" ? "" : it->second);
    }
    size_t done = 0;
    while (done < r.size()) {
      const ssize_t w = send(fd, r.data() + done, r.size() - done, MSG_NOSIGNAL);
      if (w <= 0) return;
      done += static_cast<size_t>(w);
    }
  }

  std::map<std::string, std::string> objects_;
  int listen_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

class Keys : public aws::CredentialProvider {
 public:
  Result<aws::Credentials> Get() override {
    return aws::Credentials{"AKIDEXAMPLE", "secret", "", std::nullopt};
  }
};

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Sha256B64(std::string_view data) {
  aws::Sha256 h;
  h.Update(data);
  return aws::Base64(h.Finish());
}

class StoreS3Test : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::path(::testing::TempDir()) /
            ("store-s3-" + std::to_string(getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
    recipe_.name = "com.example.S3";
    recipe_.version = *semver::Version::Parse("1.0.0");
  }
  void TearDown() override { fs::remove_all(root_); }

  std::shared_ptr<aws::S3Client> Client(const FakeS3& s3) {
    aws::S3Options o;
    o.endpoint = s3.endpoint();
    o.max_attempts = 2;
    o.initial_backoff = std::chrono::milliseconds(5);
    o.max_backoff = std::chrono::milliseconds(10);
    return std::make_shared<aws::S3Client>(o, std::make_shared<Keys>());
  }
  recipe::Artifact Artifact(const std::string& uri, const std::string& digest) {
    recipe::Artifact a;
    a.uri = uri;
    a.scheme = "s3";
    a.digest = digest;
    a.algorithm = digest.empty() ? "" : "SHA-256";
    return a;
  }
  fs::path Stored(const std::string& file) const {
    return fs::path(recipe::ArtifactPath(root_.string(), recipe_.name, "1.0.0")) / file;
  }

  fs::path root_;
  recipe::Recipe recipe_;
};

TEST_F(StoreS3Test, DownloadsChecksAndKeeps) {
  const std::string body = "#!/bin/sh\necho hello from s3\n";
  FakeS3 s3(Objects{{"/bucket/dir/hello.sh", body}});
  ComponentStore store(root_.string());
  store.SetS3Client(Client(s3));
  const auto a = Artifact("s3://bucket/dir/hello.sh", Sha256B64(body));
  auto r = store.PrepareArtifacts(recipe_, {a}, "", std::nullopt);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(ReadFile(Stored("hello.sh")), body);
  EXPECT_FALSE(fs::exists(Stored("hello.sh.part")));

  // A redeploy keeps the verified copy: no request at all.
  const int before = s3.requests.load();
  ASSERT_TRUE(store.PrepareArtifacts(recipe_, {a}, "", std::nullopt).ok());
  EXPECT_EQ(s3.requests.load(), before);
}

TEST_F(StoreS3Test, OtherAlgorithmsAreCheckedOnTheFile) {
  const std::string body = "abc";
  FakeS3 s3(Objects{{"/bucket/abc.txt", body}});
  ComponentStore store(root_.string());
  store.SetS3Client(Client(s3));
  auto a = Artifact("s3://bucket/abc.txt", "qZk+NkcGgWq6PiVxeFDCbJzQ2J0=");  // SHA-1 of "abc"
  a.algorithm = "SHA-1";
  auto r = store.PrepareArtifacts(recipe_, {a}, "", std::nullopt);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(ReadFile(Stored("abc.txt")), body);
}

TEST_F(StoreS3Test, DigestMismatchLeavesNothing) {
  FakeS3 s3(Objects{{"/bucket/a.bin", "the real bytes"}});
  ComponentStore store(root_.string());
  store.SetS3Client(Client(s3));
  auto r = store.PrepareArtifacts(
      recipe_, {Artifact("s3://bucket/a.bin", Sha256B64("other bytes"))}, "", std::nullopt);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "ARTIFACT_CHECKSUM_MISMATCH");
  EXPECT_NE(r.error().message.find("com.example.S3"), std::string::npos) << r.error().message;
  EXPECT_FALSE(fs::exists(Stored("a.bin")));
  EXPECT_FALSE(fs::exists(Stored("a.bin.part")));
}

TEST_F(StoreS3Test, MissingObjectAndNoClient) {
  FakeS3 s3(Objects{});
  ComponentStore store(root_.string());
  const auto a = Artifact("s3://bucket/missing.zip", "");
  auto none = store.PrepareArtifacts(recipe_, {a}, "", std::nullopt);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, "UNSUPPORTED_ARTIFACT_SCHEME");

  store.SetS3Client(Client(s3));
  auto missing = store.PrepareArtifacts(recipe_, {a}, "", std::nullopt);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, "S3_HEAD_OBJECT_RESOURCE_NOT_FOUND");
  EXPECT_NE(missing.error().message.find("missing.zip"), std::string::npos);
  EXPECT_NE(missing.error().message.find("bucket"), std::string::npos);
}

}  // namespace
}  // namespace lichen::store
