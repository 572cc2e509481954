// ImagePuller against the real dockerd and the local registries that scripts/services.sh
// starts (open: 127.0.0.1:5000; htpasswd: 127.0.0.1:5001, user lichen / lichen-secret).
// Test images come from busybox-static (tests/docker/make_test_image.sh) and are pushed
// with the docker CLI; nothing comes from the internet. Every test uses repositories named
// after the process id (ctest runs the tests in parallel) and removes the local images it
// made. What was or was not pulled is read from the log callback, never from timings.
#include "docker/image_puller.h"

#include <arpa/inet.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "docker/test_shell.h"

namespace lichen::docker {
namespace {

namespace fs = std::filesystem;
using test_support::Sh;
using test_support::SourceDir;
using namespace std::chrono_literals;

const std::string kOpen = "127.0.0.1:5000";
const std::string kPrivate = "127.0.0.1:5001";
const std::string kLocalImage = "lichen-puller-test/busybox:1";
const std::string kPid = std::to_string(::getpid());

// A loopback TCP port nothing listens on: bound by the kernel's choice, then released.
int ClosedPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  int port = 0;
  if (fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  if (fd >= 0) ::close(fd);
  return port;
}

// What the log callback saw, from any thread.
class Logs {
 public:
  void Add(const std::string& image, const std::string& message) {
    std::lock_guard<std::mutex> lock(mu_);
    lines_.emplace_back(image, message);
  }
  // Messages about `image` beginning with `prefix`.
  int Count(const std::string& image, const std::string& prefix) const {
    std::lock_guard<std::mutex> lock(mu_);
    return static_cast<int>(std::count_if(lines_.begin(), lines_.end(), [&](const auto& l) {
      return l.first == image && l.second.rfind(prefix, 0) == 0;
    }));
  }
  size_t size() const {
    std::lock_guard<std::mutex> lock(mu_);
    return lines_.size();
  }
  std::string Dump() const {
    std::lock_guard<std::mutex> lock(mu_);
    std::string out;
    for (const auto& [image, message] : lines_) out += image + ": " + message + "\n";
    return out;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::pair<std::string, std::string>> lines_;
};

class PullerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // dockerd is a requirement here, not an option: fail and say how to start it.
    auto ping = engine_.Ping();
    ASSERT_TRUE(ping.ok()) << ping.error().message
                           << "\nThe Docker tests need dockerd and the local registries: run "
                              "scripts/services.sh start";
    auto made = Sh(SourceDir() + "/tests/docker/make_test_image.sh " + kLocalImage);
    ASSERT_EQ(made.code, 0) << made.out;
  }

  void TearDown() override {
    for (const auto& name : created_) (void)engine_.RemoveImage(name, /*force=*/true);
  }

  // A name of this process's own repository in `registry` (empty: local only); remembered
  // for removal at the end.
  std::string Name(const std::string& registry, const std::string& what, const std::string& tag) {
    std::string name = "lichen-puller-test-" + kPid + "/" + what;
    if (!registry.empty()) name = registry + "/" + name;
    if (!tag.empty()) name += ":" + tag;
    created_.push_back(name);
    return name;
  }

  // Tags `source` as `name` and pushes it (to the private registry with a throwaway CLI
  // config, so no credentials stay on disk); the local tag is removed again.
  void Push(const std::string& name, bool authenticated = false,
            const std::string& source = kLocalImage) {
    const std::string cmd = test_support::PushCommand(source, name, authenticated);
    auto r = Sh(cmd);
    ASSERT_EQ(r.code, 0) << r.out;
  }

  // Tags the local test image as `name` without any registry.
  void TagLocal(const std::string& name) {
    auto r = Sh("docker tag " + kLocalImage + " " + name);
    ASSERT_EQ(r.code, 0) << r.out;
  }

  std::optional<ImageInfo> Inspect(const std::string& name) {
    auto r = engine_.ImageInspect(name);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return r.ok() ? *r : std::nullopt;
  }
  bool Present(const std::string& name) { return Inspect(name).has_value(); }

  // Short backoff: the schedule is not under test, the attempts are.
  ImagePullerOptions Options() {
    ImagePullerOptions o;
    o.first_backoff = 5ms;
    o.max_backoff = 20ms;
    o.log = [this](const std::string& image, const std::string& message) {
      logs_.Add(image, message);
    };
    return o;
  }

  Engine engine_;
  Logs logs_;
  std::vector<std::string> created_;
};

TEST_F(PullerTest, PullsAnAbsentTaggedImageOnce) {
  const std::string name = Name(kOpen, "pull", "1");
  ASSERT_NO_FATAL_FAILURE(Push(name));
  ASSERT_FALSE(Present(name));

  ImagePuller puller(Options());
  // Listed twice, spelt two ways: one pull.
  auto r = puller.EnsureImages({"docker:" + name, name});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(Present(name));
  EXPECT_EQ(logs_.Count(name, "pulling"), 1) << logs_.Dump();
  EXPECT_EQ(logs_.Count(name, "pulled"), 1) << logs_.Dump();
}

TEST_F(PullerTest, PresentTaggedImageIsNotPulledAgain) {
  const std::string name = Name(kOpen, "present", "1");
  ASSERT_NO_FATAL_FAILURE(Push(name));
  ImagePuller puller(Options());
  ASSERT_TRUE(puller.EnsureImages({"docker:" + name}).ok());
  ASSERT_EQ(logs_.Count(name, "pulling"), 1) << logs_.Dump();

  auto again = puller.EnsureImages({"docker:" + name});
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(logs_.Count(name, "pulling"), 1) << logs_.Dump();
  EXPECT_EQ(logs_.Count(name, "using present image"), 1) << logs_.Dump();

  // The proof that no network is used: a registry nobody listens on (an air-gapped device
  // with the image loaded beforehand).
  const int port = ClosedPort();
  ASSERT_NE(port, 0);
  const std::string offline = Name("127.0.0.1:" + std::to_string(port), "airgapped", "1");
  ASSERT_NO_FATAL_FAILURE(TagLocal(offline));
  auto airgapped = puller.EnsureImages({"docker:" + offline});
  ASSERT_TRUE(airgapped.ok()) << airgapped.error().message;
  EXPECT_EQ(logs_.Count(offline, "pulling"), 0) << logs_.Dump();
  EXPECT_EQ(logs_.Count(offline, "using present image"), 1) << logs_.Dump();

  // A digest reference the daemon has is used as well.
  auto info = Inspect(name);
  ASSERT_TRUE(info.has_value());
  ASSERT_FALSE(info->repo_digests.empty());
  const std::string by_digest = info->repo_digests.front();
  created_.push_back(by_digest);
  auto digest = puller.EnsureImages({"docker:" + by_digest});
  ASSERT_TRUE(digest.ok()) << digest.error().message;
  EXPECT_EQ(logs_.Count(by_digest, "pulling"), 0) << logs_.Dump();
  EXPECT_EQ(logs_.Count(by_digest, "using present image"), 1) << logs_.Dump();
}

TEST_F(PullerTest, LatestIsPulledEveryTime) {
  const std::string name = Name(kOpen, "latest", "latest");
  ASSERT_NO_FATAL_FAILURE(Push(name));
  ImagePuller puller(Options());
  // No tag: "latest" assumed, which always pulls.
  const std::string untagged = "docker:" + name.substr(0, name.rfind(':'));
  ASSERT_TRUE(puller.EnsureImages({untagged}).ok()) << logs_.Dump();
  // Replaced below, the first image keeps its digest reference: remove that too.
  auto first = Inspect(name);
  ASSERT_TRUE(first.has_value());
  for (const auto& d : first->repo_digests) created_.push_back(d);
  auto again = puller.EnsureImages({untagged});
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(logs_.Count(name, "pulling"), 2) << logs_.Dump();
  EXPECT_EQ(logs_.Count(name, "up to date"), 1) << logs_.Dump();

  // A new image behind the same tag replaces the one on the device.
  const std::string other = "lichen-puller-test/busybox:" + kPid;
  created_.push_back(other);
  auto made = Sh(SourceDir() + "/tests/docker/make_test_image.sh " + other + " /bin/echo " + kPid);
  ASSERT_EQ(made.code, 0) << made.out;
  auto other_info = Inspect(other);
  ASSERT_TRUE(other_info.has_value());
  ASSERT_NO_FATAL_FAILURE(Push(name, false, other));
  auto updated = puller.EnsureImages({"docker:" + name});
  ASSERT_TRUE(updated.ok()) << updated.error().message;
  EXPECT_EQ(logs_.Count(name, "pulling"), 3) << logs_.Dump();
  auto now = Inspect(name);
  ASSERT_TRUE(now.has_value());
  EXPECT_EQ(now->id, other_info->id);
}

TEST_F(PullerTest, LatestFallsBackToThePresentImageWhenTheRegistryIsUnreachable) {
  const int port = ClosedPort();
  ASSERT_NE(port, 0);
  const std::string name = Name("127.0.0.1:" + std::to_string(port), "offline", "latest");
  ASSERT_NO_FATAL_FAILURE(TagLocal(name));
  ImagePullerOptions o = Options();
  o.max_attempts = 2;
  ImagePuller puller(o);
  auto r = puller.EnsureImages({"docker:" + name});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(logs_.Count(name, "pulling"), 2) << logs_.Dump();
  EXPECT_EQ(logs_.Count(name, "warning: the registry is unreachable"), 1) << logs_.Dump();
  EXPECT_TRUE(Present(name));
}

TEST_F(PullerTest, PrivateRegistryNeedsTheRightCredentials) {
  const std::string name = Name(kPrivate, "private", "1");
  ASSERT_NO_FATAL_FAILURE(Push(name, /*authenticated=*/true));
  ASSERT_FALSE(Present(name));

  {
    ImagePuller none(Options());
    auto r = none.EnsureImages({"docker:" + name});
    ASSERT_FALSE(r.ok());
    // Nothing was refused: not a login error, but it says what is missing.
    EXPECT_EQ(r.error().code, kDeployDockerPullError) << r.error().message;
    EXPECT_NE(r.error().message.find(name), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find("no credentials are configured for registry " + kPrivate),
              std::string::npos)
        << r.error().message;
    EXPECT_EQ(logs_.Count(name, "pulling"), 1) << logs_.Dump();
  }
  {
    ImagePullerOptions o = Options();
    o.registry_auth[kPrivate] = {"lichen", "wrong-password", ""};
    ImagePuller wrong(o);
    auto r = wrong.EnsureImages({"docker:" + name});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, kDeployDockerLoginError) << r.error().message;
    EXPECT_NE(r.error().message.find(name), std::string::npos) << r.error().message;
    EXPECT_EQ(r.error().message.find("wrong-password"), std::string::npos) << r.error().message;
    EXPECT_EQ(logs_.Count(name, "pulling"), 2) << "not retried\n" << logs_.Dump();
    EXPECT_FALSE(Present(name));
  }
  {
    ImagePullerOptions o = Options();
    o.registry_auth["registry.example.com"] = {"someone", "else", ""};
    o.registry_auth[kPrivate] = {"lichen", "lichen-secret", ""};
    ImagePuller right(o);
    auto r = right.EnsureImages({"docker:" + name});
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_TRUE(Present(name));
  }
  EXPECT_EQ(logs_.Dump().find("secret"), std::string::npos) << logs_.Dump();
  EXPECT_EQ(logs_.Dump().find("wrong-password"), std::string::npos) << logs_.Dump();
}

TEST_F(PullerTest, RegistryCredentialsAreFoundWhateverTheCase) {
  const std::string name = Name("localhost:5001", "private-case", "1");
  ASSERT_NO_FATAL_FAILURE(Push(name, /*authenticated=*/true));
  ImagePullerOptions o = Options();
  o.registry_auth["LocalHost:5001"] = {"lichen", "lichen-secret", ""};
  ImagePuller puller(o);
  auto r = puller.EnsureImages({"docker:" + name});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(Present(name));
}

TEST_F(PullerTest, PrivateEcrWithoutCredentialsSaysSo) {
  // Fails before any network: no ECR credentials are configured.
  const std::string name = "123456789012.dkr.ecr.us-west-2.amazonaws.com/lichen-puller-test:1";
  ImagePuller puller(Options());
  auto r = puller.EnsureImages({"docker:" + name});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, kDeployGetEcrCredentialError) << r.error().message;
  EXPECT_NE(r.error().message.find("no credentials are configured"), std::string::npos)
      << r.error().message;
  EXPECT_NE(r.error().message.find(name), std::string::npos) << r.error().message;
  EXPECT_EQ(logs_.Count(name, "pulling"), 0) << logs_.Dump();

  ImagePullerOptions o = Options();
  std::atomic<int> asked{0};
  o.ecr_auth = [&](const ImageReference& ref) -> Result<RegistryAuth> {
    ++asked;
    EXPECT_EQ(ref.ecr_registry_id, "123456789012");
    EXPECT_EQ(ref.ecr_region, "us-west-2");
    return MakeError("AccessDeniedException: not allowed");
  };
  ImagePuller denied(o);
  auto d = denied.EnsureImages({"docker:" + name});
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().code, kDeployGetEcrCredentialError) << d.error().message;
  EXPECT_NE(d.error().message.find("AccessDeniedException"), std::string::npos)
      << d.error().message;
  EXPECT_EQ(asked.load(), 1);
}

// ECR credentials the registry refuses are dropped, so the next deployment asks ECR
// again instead of reusing a cached token. The htpasswd registry answers under an ECR
// name through the hosts entry scripts/services.sh adds.
TEST_F(PullerTest, RefusedEcrCredentialsAreReported) {
  const std::string name =
      Name("123456789012.dkr.ecr.us-west-2.amazonaws.com:5001", "ecr-refused", "1");
  ImagePullerOptions o = Options();
  o.max_attempts = 1;
  o.ecr_auth = [](const ImageReference&) -> Result<RegistryAuth> {
    return RegistryAuth{"lichen", "not-the-password", ""};
  };
  std::vector<std::string> refused;
  o.ecr_auth_refused = [&](const ImageReference& ref) { refused.push_back(ref.ecr_registry_id); };
  ImagePuller puller(o);
  auto r = puller.EnsureImages({"docker:" + name});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, kDeployDockerLoginError) << r.error().message;
  EXPECT_EQ(refused, std::vector<std::string>{"123456789012"});
}

TEST_F(PullerTest, UnknownTagFailsWithoutRetries) {
  const std::string repo = Name(kOpen, "unknown", "");
  ASSERT_NO_FATAL_FAILURE(Push(repo + ":1"));
  const std::string name = repo + ":no-such-tag";
  ImagePullerOptions o = Options();
  o.max_attempts = 5;
  ImagePuller puller(o);
  auto r = puller.EnsureImages({"docker:" + name});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, kDeployDockerPullError) << r.error().message;
  EXPECT_NE(r.error().message.find(name), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("manifest unknown"), std::string::npos) << r.error().message;
  EXPECT_EQ(logs_.Count(name, "pulling"), 1) << logs_.Dump();
  EXPECT_EQ(logs_.Count(name, "pull failed"), 0) << logs_.Dump();
}

TEST_F(PullerTest, UnreachableRegistryFailsAfterMaxAttempts) {
  const int port = ClosedPort();
  ASSERT_NE(port, 0);
  const std::string name = Name("127.0.0.1:" + std::to_string(port), "unreachable", "1");
  ImagePullerOptions o = Options();
  o.max_attempts = 2;
  o.first_backoff = 1ms;
  o.max_backoff = 2ms;
  ImagePuller puller(o);
  auto r = puller.EnsureImages({"docker:" + name});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, kDeployDockerPullError) << r.error().message;
  EXPECT_NE(r.error().message.find(name), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("after 2 attempts"), std::string::npos) << r.error().message;
  EXPECT_EQ(logs_.Count(name, "pulling"), 2) << logs_.Dump();
  EXPECT_EQ(logs_.Count(name, "pull failed (attempt 1 of 2)"), 1) << logs_.Dump();
}

TEST_F(PullerTest, MalformedUriFailsBeforeAnyPull) {
  const std::string good = Name(kOpen, "good", "1");
  ASSERT_NO_FATAL_FAILURE(Push(good));
  ImagePuller puller(Options());
  auto r = puller.EnsureImages({"docker:" + good, "docker:UPPER/Case:1", "docker:" + good});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, kDeployDockerUriNotValid) << r.error().message;
  EXPECT_NE(r.error().message.find("UPPER/Case:1"), std::string::npos) << r.error().message;
  EXPECT_EQ(logs_.size(), 0u) << logs_.Dump();
  EXPECT_FALSE(Present(good));

  // A digest the grammar accepts but the Engine would refuse (sha256 needs 64 digits).
  auto digest = puller.EnsureImages(
      {"docker:" + good, "docker:" + kOpen + "/x@sha256:0123456789abcdef0123456789abcdef"});
  ASSERT_FALSE(digest.ok());
  EXPECT_EQ(digest.error().code, kDeployDockerUriNotValid) << digest.error().message;
  EXPECT_EQ(logs_.size(), 0u) << logs_.Dump();
  EXPECT_FALSE(Present(good));
}

TEST_F(PullerTest, PullsSeveralImagesInParallel) {
  constexpr size_t kImages = 5;
  constexpr size_t kParallel = 3;
  std::vector<std::string> names;
  std::vector<std::string> uris;
  for (size_t i = 0; i < kImages; ++i) {
    names.push_back(Name(kOpen, "parallel", std::to_string(i)));
    ASSERT_NO_FATAL_FAILURE(Push(names.back()));
    uris.push_back("docker:" + names.back());
  }
  // The first kParallel pulls wait for each other in the log callback: they can only all
  // get there if they run at once. Bounded: a puller that pulls one at a time fails the
  // expectation below after the timeout instead of hanging.
  std::mutex mu;
  std::condition_variable cv;
  size_t started = 0;
  size_t running = 0;
  size_t most = 0;
  bool all_met = false;
  ImagePullerOptions o = Options();
  o.parallel = kParallel;
  o.log = [&](const std::string& image, const std::string& message) {
    logs_.Add(image, message);
    std::unique_lock<std::mutex> lock(mu);
    if (message.rfind("pulling", 0) == 0) {
      most = std::max(most, ++running);
      if (++started <= kParallel) {
        cv.notify_all();
        if (cv.wait_for(lock, 60s, [&] { return started >= kParallel; })) all_met = true;
      }
    } else if (message.rfind("pulled", 0) == 0 || message.rfind("up to date", 0) == 0) {
      --running;
    }
  };
  ImagePuller puller(o);
  auto r = puller.EnsureImages(uris);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(all_met) << logs_.Dump();
  EXPECT_EQ(most, kParallel) << logs_.Dump();
  for (const auto& name : names) {
    EXPECT_TRUE(Present(name)) << name;
    EXPECT_EQ(logs_.Count(name, "pulling"), 1) << logs_.Dump();
  }
}

TEST_F(PullerTest, FirstFailureEndsTheWaitsOfTheOthers) {
  const std::string repo = Name(kOpen, "first-failure", "");
  ASSERT_NO_FATAL_FAILURE(Push(repo + ":1"));
  const std::string missing = repo + ":no-such-tag";
  const int port = ClosedPort();
  ASSERT_NE(port, 0);
  const std::string unreachable = Name("127.0.0.1:" + std::to_string(port), "waits", "1");
  ImagePullerOptions o = Options();
  o.parallel = 2;
  o.max_attempts = 5;
  // Would take minutes if the failure of the other image did not end it.
  o.first_backoff = 60s;
  o.max_backoff = 60s;
  ImagePuller puller(o);
  auto r = puller.EnsureImages({"docker:" + unreachable, "docker:" + missing});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, kDeployDockerPullError) << r.error().message;
  EXPECT_NE(r.error().message.find(missing), std::string::npos) << r.error().message;
  EXPECT_LE(logs_.Count(unreachable, "pulling"), 1) << logs_.Dump();
}

TEST_F(PullerTest, RemovesPresentAndAbsentImagesButNeverForces) {
  ImagePullerOptions o = Options();
  o.max_attempts = 2;
  ImagePuller puller(o);

  const std::string name = Name("", "remove", "1");
  ASSERT_NO_FATAL_FAILURE(TagLocal(name));
  auto removed = puller.RemoveImage("docker:" + name);
  ASSERT_TRUE(removed.ok()) << removed.error().message;
  EXPECT_FALSE(Present(name));
  EXPECT_TRUE(Present(kLocalImage));  // only the tag went
  auto absent = puller.RemoveImage("docker:" + name);
  EXPECT_TRUE(absent.ok()) << absent.error().message;

  auto bad = puller.RemoveImage("docker:UPPER/Case:1");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, kDeployDockerUriNotValid) << bad.error().message;

  // An image of its own (one tag) used by a container: a conflict, retried, never forced.
  const std::string used = Name("", "used", "1");
  auto made =
      Sh(SourceDir() + "/tests/docker/make_test_image.sh " + used + " /bin/echo used-" + kPid);
  ASSERT_EQ(made.code, 0) << made.out;
  const std::string container = "lichen-puller-test-" + kPid;
  auto created = Sh("docker create --name " + container + " " + used);
  ASSERT_EQ(created.code, 0) << created.out;
  auto conflict = puller.RemoveImage("docker:" + used);
  const std::string dump = logs_.Dump();
  auto rm = Sh("docker rm -f " + container);
  ASSERT_EQ(rm.code, 0) << rm.out;
  ASSERT_FALSE(conflict.ok());
  EXPECT_EQ(conflict.error().code, kDockerConflict) << conflict.error().message;
  EXPECT_NE(conflict.error().message.find(used), std::string::npos) << conflict.error().message;
  EXPECT_NE(conflict.error().message.find("after 2 attempts"), std::string::npos)
      << conflict.error().message;
  // Log lines name the canonical image: Docker Hub's, for a name without a registry.
  EXPECT_EQ(logs_.Count("docker.io/" + used, "remove failed (attempt 1 of 2)"), 1) << dump;
  EXPECT_TRUE(Present(used));

  auto freed = puller.RemoveImage("docker:" + used);
  ASSERT_TRUE(freed.ok()) << freed.error().message;
  EXPECT_FALSE(Present(used));
}

TEST_F(PullerTest, CheckAccessOnTheRealSocket) {
  ImagePuller puller(Options());
  auto r = puller.CheckAccess(std::nullopt, std::nullopt);
  EXPECT_TRUE(r.ok()) << r.error().message;
  auto root = puller.CheckAccess(0, std::nullopt);
  EXPECT_TRUE(root.ok()) << root.error().message;
}

// --- without a daemon ------------------------------------------------------------------

TEST(PullerWithoutDaemon, MissingSocketIsServiceUnavailable) {
  const std::string socket = "/nonexistent/lichen/docker.sock";
  Logs logs;
  ImagePullerOptions o;
  o.engine.socket_path = socket;
  o.max_attempts = 2;
  o.first_backoff = 1ms;
  o.max_backoff = 2ms;
  o.log = [&](const std::string& image, const std::string& m) { logs.Add(image, m); };
  ImagePuller puller(o);

  auto access = puller.CheckAccess(65534, std::nullopt);
  ASSERT_FALSE(access.ok());
  EXPECT_EQ(access.error().code, kDeployDockerServiceUnavailable) << access.error().message;
  EXPECT_NE(access.error().message.find(socket), std::string::npos) << access.error().message;

  const std::string name = "127.0.0.1:5000/lichen-puller-test/nodaemon:1";
  auto ensure = puller.EnsureImages({"docker:" + name});
  ASSERT_FALSE(ensure.ok());
  EXPECT_EQ(ensure.error().code, kDeployDockerServiceUnavailable) << ensure.error().message;
  EXPECT_NE(ensure.error().message.find(socket), std::string::npos) << ensure.error().message;
  EXPECT_NE(ensure.error().message.find(name), std::string::npos) << ensure.error().message;
  EXPECT_EQ(logs.Count(name, "inspect failed (attempt 1 of 2)"), 1) << logs.Dump();

  auto remove = puller.RemoveImage("docker:" + name);
  ASSERT_FALSE(remove.ok());
  EXPECT_EQ(remove.error().code, kDeployDockerServiceUnavailable) << remove.error().message;
}

// A socket in a directory of its own that answers every request with 200 "OK", as
// dockerd's /_ping does: CheckAccess's daemon check passes, and the test owns the file's
// owner, group and mode.
class FakeDaemon {
 public:
  FakeDaemon() {
    char dir[] = "/tmp/lichen-puller-XXXXXX";
    if (::mkdtemp(dir) == nullptr) return;
    dir_ = dir;
    ::chmod(dir_.c_str(), 0755);
    path_ = dir_ + "/docker.sock";
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path_.c_str());
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(fd_, 8) != 0) {
      return;
    }
    ok_ = true;
    thread_ = std::thread([this] { Serve(); });
  }
  ~FakeDaemon() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (fd_ >= 0) ::close(fd_);
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  bool ok() const { return ok_; }
  const std::string& dir() const { return dir_; }
  const std::string& path() const { return path_; }

 private:
  // Polls with a short timeout so that the destructor's stop is seen.
  void Serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      std::string request;
      std::array<char, 1024> buf{};
      // Bounded: a request without its blank line within a few reads is answered anyway.
      for (int i = 0; i < 16 && request.find("\r\n\r\n") == std::string::npos; ++i) {
        pollfd q{c, POLLIN, 0};
        if (::poll(&q, 1, 2000) <= 0) break;
        const ssize_t n = ::read(c, buf.data(), buf.size());
        if (n <= 0) break;
        request.append(buf.data(), static_cast<size_t>(n));
      }
      const std::string answer =
          "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
          "Connection: close\r\n\r\nOK";
      (void)!::write(c, answer.data(), answer.size());
      ::close(c);
    }
  }

  std::string dir_;
  std::string path_;
  int fd_ = -1;
  bool ok_ = false;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

constexpr uid_t kNobody = 65534;

class CheckAccessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "chown of the test socket needs root";
    struct passwd* pw = ::getpwuid(kNobody);
    if (pw == nullptr) GTEST_SKIP() << "no user with uid 65534 (nobody)";
    nobody_gid_ = pw->pw_gid;
    ASSERT_TRUE(daemon_.ok()) << "cannot listen on " << daemon_.path();
    ImagePullerOptions o;
    o.engine.socket_path = daemon_.path();
    puller_.emplace(o);
  }

  void Own(uid_t uid, gid_t gid, mode_t mode) {
    ASSERT_EQ(::chown(daemon_.path().c_str(), uid, gid), 0) << std::strerror(errno);
    ASSERT_EQ(::chmod(daemon_.path().c_str(), mode), 0) << std::strerror(errno);
  }

  FakeDaemon daemon_;
  gid_t nobody_gid_ = 0;
  std::optional<ImagePuller> puller_;
};

TEST_F(CheckAccessTest, UserOutsideTheSocketsGroupIsRefused) {
  ASSERT_NO_FATAL_FAILURE(Own(0, 0, 0660));
  ASSERT_TRUE(puller_->CheckAccess(std::nullopt, std::nullopt).ok());
  ASSERT_TRUE(puller_->CheckAccess(0, std::nullopt).ok());

  auto r = puller_->CheckAccess(kNobody, std::nullopt);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, kDeployUserNotAuthorizedForDocker) << r.error().message;
  const std::string& m = r.error().message;
  EXPECT_NE(m.find("user nobody"), std::string::npos) << m;
  EXPECT_NE(m.find(daemon_.path()), std::string::npos) << m;
  EXPECT_NE(m.find("group root"), std::string::npos) << m;
  EXPECT_NE(m.find("add the user to group root"), std::string::npos) << m;

  // A uid without a passwd entry is only in its own group.
  uid_t stranger = 54321;
  while (::getpwuid(stranger) != nullptr && stranger < 54400) ++stranger;
  ASSERT_EQ(::getpwuid(stranger), nullptr);
  auto s = puller_->CheckAccess(stranger, std::nullopt);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, kDeployUserNotAuthorizedForDocker) << s.error().message;
  EXPECT_NE(s.error().message.find("uid " + std::to_string(stranger)), std::string::npos)
      << s.error().message;
}

TEST_F(CheckAccessTest, GroupOwnerOrWorldMayConnect) {
  // The group the component runs as.
  ASSERT_NO_FATAL_FAILURE(Own(0, 0, 0660));
  auto as_group = puller_->CheckAccess(kNobody, gid_t{0});
  EXPECT_TRUE(as_group.ok()) << as_group.error().message;

  // The user's primary group, from passwd.
  ASSERT_NO_FATAL_FAILURE(Own(0, nobody_gid_, 0660));
  auto primary = puller_->CheckAccess(kNobody, std::nullopt);
  EXPECT_TRUE(primary.ok()) << primary.error().message;
  // ... but not with read only.
  ASSERT_NO_FATAL_FAILURE(Own(0, nobody_gid_, 0640));
  EXPECT_FALSE(puller_->CheckAccess(kNobody, std::nullopt).ok());

  // The owner's bits count for the owner, even when the group's would allow more.
  ASSERT_NO_FATAL_FAILURE(Own(kNobody, nobody_gid_, 0600));
  auto owner = puller_->CheckAccess(kNobody, std::nullopt);
  EXPECT_TRUE(owner.ok()) << owner.error().message;
  ASSERT_NO_FATAL_FAILURE(Own(kNobody, nobody_gid_, 0060));
  auto owner_denied = puller_->CheckAccess(kNobody, std::nullopt);
  ASSERT_FALSE(owner_denied.ok());
  EXPECT_EQ(owner_denied.error().code, kDeployUserNotAuthorizedForDocker);

  ASSERT_NO_FATAL_FAILURE(Own(0, 0, 0666));
  auto world = puller_->CheckAccess(kNobody, std::nullopt);
  EXPECT_TRUE(world.ok()) << world.error().message;
}

TEST_F(CheckAccessTest, DirectoryTheUserCannotSearchIsRefused) {
  ASSERT_NO_FATAL_FAILURE(Own(0, 0, 0666));
  ASSERT_EQ(::chmod(daemon_.dir().c_str(), 0700), 0);
  auto r = puller_->CheckAccess(kNobody, std::nullopt);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, kDeployUserNotAuthorizedForDocker) << r.error().message;
  EXPECT_NE(r.error().message.find("the directory " + daemon_.dir()), std::string::npos)
      << r.error().message;
}

TEST_F(CheckAccessTest, SupplementaryGroupMayConnect) {
  // A user listed as a member of a group other than its primary one, if the system has one.
  std::optional<std::pair<uid_t, gid_t>> member;
  ::setgrent();
  for (int i = 0; i < 10000 && !member; ++i) {
    struct group* g = ::getgrent();
    if (g == nullptr) break;
    for (char** m = g->gr_mem; m != nullptr && *m != nullptr; ++m) {
      struct passwd* pw = ::getpwnam(*m);
      if (pw != nullptr && pw->pw_uid != 0 && pw->pw_gid != g->gr_gid) {
        member = {pw->pw_uid, g->gr_gid};
        break;
      }
    }
  }
  ::endgrent();
  if (!member) GTEST_SKIP() << "no user with a supplementary group in /etc/group";
  ASSERT_NO_FATAL_FAILURE(Own(0, member->second, 0660));
  auto r = puller_->CheckAccess(member->first, std::nullopt);
  EXPECT_TRUE(r.ok()) << r.error().message;
}

}  // namespace
}  // namespace lichen::docker
