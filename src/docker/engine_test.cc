// The Engine client against the real dockerd and the local registries that
// scripts/services.sh starts (open: 127.0.0.1:5000; htpasswd: 127.0.0.1:5001, user
// lichen / lichen-secret). Test images are built from busybox-static
// (tests/docker/make_test_image.sh) and pushed with the docker CLI; nothing comes from
// the internet. Each test uses its own image names: ctest runs them in parallel.
#include "docker/engine.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
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
const std::string kLocalImage = "lichen-engine-test/busybox:1";

class EngineTest : public ::testing::Test {
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

  // Tags the local test image as `name` and pushes it (to the private registry with a
  // throwaway CLI config, so no credentials stay on disk).
  void Push(const std::string& name, bool authenticated = false) {
    const std::string cmd = test_support::PushCommand(kLocalImage, name, authenticated);
    auto r = Sh(cmd);
    ASSERT_EQ(r.code, 0) << r.out;
  }

  bool Present(const std::string& name) {
    auto r = engine_.ImageInspect(name);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return r.ok() && r->has_value();
  }

  Engine engine_;
};

TEST_F(EngineTest, PingAndVersion) {
  auto v = engine_.Version();
  ASSERT_TRUE(v.ok()) << v.error().message;
  EXPECT_FALSE(v->version.empty());
  EXPECT_FALSE(v->api_version.empty());
  EXPECT_EQ(v->os, "linux");
}

TEST_F(EngineTest, InspectTellsPresentFromAbsent) {
  auto present = engine_.ImageInspect(kLocalImage);
  ASSERT_TRUE(present.ok()) << present.error().message;
  ASSERT_TRUE(present->has_value());
  EXPECT_EQ((*present)->id.rfind("sha256:", 0), 0u) << (*present)->id;
  EXPECT_NE(std::find((*present)->repo_tags.begin(), (*present)->repo_tags.end(), kLocalImage),
            (*present)->repo_tags.end());
  auto absent = engine_.ImageInspect("lichen-engine-test/never-built:1");
  ASSERT_TRUE(absent.ok()) << absent.error().message;
  EXPECT_FALSE(absent->has_value());
}

TEST_F(EngineTest, PullsFromTheOpenRegistryWithProgressThenRemoves) {
  const std::string name = kOpen + "/lichen-engine-test/busybox:pull";
  ASSERT_NO_FATAL_FAILURE(Push(name));
  ASSERT_FALSE(Present(name));

  std::vector<PullProgress> lines;
  auto pulled = engine_.Pull("docker:" + name, std::nullopt,
                             [&](const PullProgress& p) { lines.push_back(p); });
  ASSERT_TRUE(pulled.ok()) << pulled.error().message;
  EXPECT_EQ(pulled->image, name);
  EXPECT_EQ(pulled->digest.rfind("sha256:", 0), 0u) << pulled->digest;
  EXPECT_TRUE(pulled->downloaded);
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines.back().status.rfind("Status: ", 0), 0u) << lines.back().raw;
  EXPECT_TRUE(Present(name));

  // Again: up to date, nothing downloaded.
  auto again = engine_.Pull(name);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_FALSE(again->downloaded);

  ASSERT_TRUE(engine_.RemoveImage(name).ok());
  EXPECT_FALSE(Present(name));
  auto gone = engine_.RemoveImage(name);
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().code, kDockerImageNotFound) << gone.error().message;
  EXPECT_FALSE(IsRetryable(gone.error()));
}

TEST_F(EngineTest, MissingImageIsManifestUnknownAndNotRetryable) {
  auto r = engine_.Pull(kOpen + "/lichen-engine-test/busybox:no-such-tag");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, kDockerImageNotFound) << r.error().message;
  EXPECT_NE(r.error().message.find("manifest unknown"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("no-such-tag"), std::string::npos) << r.error().message;
  EXPECT_FALSE(IsRetryable(r.error()));
}

TEST_F(EngineTest, PrivateRegistryNeedsTheRightCredentials) {
  const std::string name = kPrivate + "/lichen-engine-test/private:1";
  ASSERT_NO_FATAL_FAILURE(Push(name, /*authenticated=*/true));
  (void)engine_.RemoveImage(name);

  auto none = engine_.Pull(name);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, kDockerAuthFailed) << none.error().message;
  EXPECT_FALSE(IsRetryable(none.error()));

  auto wrong = engine_.Pull(name, RegistryAuth{"lichen", "wrong-password", kPrivate});
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.error().code, kDockerAuthFailed) << wrong.error().message;
  EXPECT_NE(wrong.error().message.find(name), std::string::npos) << wrong.error().message;
  EXPECT_FALSE(IsRetryable(wrong.error()));
  EXPECT_FALSE(Present(name));

  auto right = engine_.Pull(name, RegistryAuth{"lichen", "lichen-secret", kPrivate});
  ASSERT_TRUE(right.ok()) << right.error().message;
  EXPECT_TRUE(Present(name));
  EXPECT_TRUE(engine_.RemoveImage(name).ok());
}

TEST_F(EngineTest, ErrorInsideThePullStreamFailsThePull) {
  // An image whose manifest is there but whose one layer was deleted from the registry:
  // the daemon answers 200, streams progress, then reports "unknown blob" in the stream.
  const std::string tag = "x" + std::to_string(::getpid());
  const std::string repo = "lichen-engine-test/broken";
  const std::string name = kOpen + "/" + repo + ":" + tag;
  auto made = Sh("set -e; d=$(mktemp -d); trap \"rm -rf $d\" EXIT; echo " + tag +
                 " > $d/id; tar -C $d -c . | docker import - " + name +
                 " >/dev/null; docker push " + name + " >/dev/null; docker rmi " + name +
                 " >/dev/null; layer=$(curl -sf -H \"Accept: "
                 "application/vnd.docker.distribution.manifest.v2+json\" http://" +
                 kOpen + "/v2/" + repo + "/manifests/" + tag +
                 " | python3 -c \"import json,sys; "
                 "print(json.load(sys.stdin)[\\\"layers\\\"][0][\\\"digest\\\"])\"); "
                 "curl -sf -X DELETE http://" +
                 kOpen + "/v2/" + repo + "/blobs/$layer");
  ASSERT_EQ(made.code, 0) << made.out;

  std::vector<PullProgress> lines;
  auto r = engine_.Pull(name, std::nullopt, [&](const PullProgress& p) { lines.push_back(p); });
  ASSERT_FALSE(r.ok());
  EXPECT_FALSE(lines.empty()) << "the error came before any progress: not an in-stream error";
  EXPECT_EQ(r.error().code, kDockerImageNotFound) << r.error().message;
  EXPECT_NE(r.error().message.find("unknown blob"), std::string::npos) << r.error().message;
  EXPECT_FALSE(IsRetryable(r.error()));
  EXPECT_FALSE(Present(name));
}

TEST_F(EngineTest, UnreachableRegistryIsRetryable) {
  // Nothing listens on this loopback port.
  auto r = engine_.Pull("127.0.0.1:5009/lichen-engine-test/busybox:1");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, kDockerRegistryUnreachable) << r.error().message;
  EXPECT_TRUE(IsRetryable(r.error()));
}

TEST_F(EngineTest, InvalidReferenceFailsBeforeAsking) {
  auto r = engine_.Pull("docker:UPPER/Case:1");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, kDockerInvalidReference) << r.error().message;
  EXPECT_FALSE(IsRetryable(r.error()));
}

TEST_F(EngineTest, LoadsADockerSaveTarball) {
  const std::string name = "lichen-engine-test/load:" + std::to_string(::getpid());
  const std::string tar =
      fs::temp_directory_path() / ("lichen-engine-load-" + std::to_string(::getpid()) + ".tar");
  auto saved = Sh("set -e; docker tag " + kLocalImage + " " + name + "; docker save -o " + tar +
                  " " + name + "; docker rmi " + name + " >/dev/null");
  ASSERT_EQ(saved.code, 0) << saved.out;
  ASSERT_FALSE(Present(name));

  auto loaded = engine_.LoadImage(tar);
  fs::remove(tar);
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  ASSERT_EQ(loaded->size(), 1u);
  EXPECT_EQ(loaded->front(), name);
  EXPECT_TRUE(Present(name));
  EXPECT_TRUE(engine_.RemoveImage(name).ok());

  auto missing = engine_.LoadImage(tar);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, kDockerIoError) << missing.error().message;

  // Not a tarball: the daemon answers 200 and reports the error inside the stream.
  const std::string junk = tar + ".junk";
  {
    FILE* f = std::fopen(junk.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs("this is not a tar archive\n", f);
    std::fclose(f);
  }
  auto bad = engine_.LoadImage(junk);
  fs::remove(junk);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, kDockerInvalidTarball) << bad.error().message;
  EXPECT_NE(bad.error().message.find(junk), std::string::npos) << bad.error().message;
  EXPECT_FALSE(IsRetryable(bad.error()));
}

TEST_F(EngineTest, ListsStopsAndRemovesLabelledContainers) {
  const std::string label = "lichen.engine.test";
  const std::string value = std::to_string(::getpid());
  // sleep as PID 1 ignores SIGTERM: stopping takes the grace period, then SIGKILL.
  auto run = Sh("docker run -d --label " + label + "=" + value + " " + kLocalImage + " sleep 300");
  ASSERT_EQ(run.code, 0) << run.out;

  auto listed = engine_.ListContainers({{label, value}});
  ASSERT_TRUE(listed.ok()) << listed.error().message;
  ASSERT_EQ(listed->size(), 1u);
  const ContainerInfo c = listed->front();
  EXPECT_EQ(run.out.substr(0, c.id.size()), c.id);
  EXPECT_EQ(c.state, "running");
  EXPECT_EQ(c.image, kLocalImage);
  EXPECT_EQ(c.labels.at(label), value);
  ASSERT_EQ(c.names.size(), 1u);
  EXPECT_NE(c.names[0].front(), '/');

  auto other = engine_.ListContainers({{label, value + "-other"}});
  ASSERT_TRUE(other.ok());
  EXPECT_TRUE(other->empty());

  auto stopped = engine_.StopContainer(c.id, 1s);
  ASSERT_TRUE(stopped.ok()) << stopped.error().message;
  EXPECT_TRUE(engine_.StopContainer(c.id, 1s).ok());  // already stopped: fine
  auto after = engine_.ListContainers({{label, value}});
  ASSERT_TRUE(after.ok());
  ASSERT_EQ(after->size(), 1u);
  EXPECT_EQ(after->front().state, "exited");
  auto running_only = engine_.ListContainers({{label, value}}, /*all=*/false);
  ASSERT_TRUE(running_only.ok());
  EXPECT_TRUE(running_only->empty());

  ASSERT_TRUE(engine_.RemoveContainer(c.id).ok());
  auto empty = engine_.ListContainers({{label, value}});
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
  auto again = engine_.RemoveContainer(c.id);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, kDockerContainerNotFound) << again.error().message;
}

// --- without a daemon ------------------------------------------------------------------

TEST(EngineWithoutDaemon, MissingSocketSaysSo) {
  Engine e({.socket_path = "/nonexistent/lichen/docker.sock"});
  auto r = e.Ping();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, kDockerDaemonUnavailable);
  EXPECT_NE(r.error().message.find("/nonexistent/lichen/docker.sock"), std::string::npos);
  EXPECT_NE(r.error().message.find("is dockerd running"), std::string::npos) << r.error().message;
  EXPECT_TRUE(IsRetryable(r.error()));
}

// A listening socket that never answers: every call is bounded by its timeout.
class SilentSocket {
 public:
  SilentSocket() {
    path_ = fs::temp_directory_path() / ("lichen-engine-silent-" + std::to_string(::getpid()));
    fs::remove(path_);
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path_.c_str());
    ok_ = fd_ >= 0 && ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
          ::listen(fd_, 4) == 0;
  }
  ~SilentSocket() {
    if (fd_ >= 0) ::close(fd_);
    fs::remove(path_);
  }
  bool ok() const { return ok_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
  bool ok_ = false;
};

TEST(EngineWithoutDaemon, SilentDaemonTimesOut) {
  SilentSocket s;
  ASSERT_TRUE(s.ok());
  Engine e({.socket_path = s.path(), .timeout = 300ms});
  const auto start = std::chrono::steady_clock::now();
  auto r = e.Ping();
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, kDockerTimeout) << r.error().message;
  EXPECT_TRUE(IsRetryable(r.error()));
  EXPECT_LT(took, 5s);
}

// A pull the daemon says nothing about (a registry that hangs) ends after the stall bound,
// long before the transfer timeout, as a retryable registry problem.
TEST(EngineWithoutDaemon, SilentPullStallsOut) {
  SilentSocket s;
  ASSERT_TRUE(s.ok());
  Engine e({.socket_path = s.path(), .transfer_timeout = 60s, .pull_stall_timeout = 1s});
  const auto start = std::chrono::steady_clock::now();
  auto r = e.Pull("127.0.0.1:5000/lichen-engine-test/stalled:1");
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, kDockerRegistryUnreachable) << r.error().message;
  EXPECT_NE(r.error().message.find("reported nothing for 1 s"), std::string::npos)
      << r.error().message;
  EXPECT_TRUE(IsRetryable(r.error()));
  EXPECT_LT(took, 30s);
}

TEST(EngineWithoutDaemon, ClosedSocketIsUnavailable) {
  std::string path;
  {
    SilentSocket s;
    ASSERT_TRUE(s.ok());
    path = s.path();
  }
  // A socket file nobody listens on (left behind by a daemon that died).
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ::close(fd);
  Engine e({.socket_path = path, .timeout = 2000ms});
  auto r = e.Ping();
  fs::remove(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, kDockerDaemonUnavailable) << r.error().message;
  EXPECT_NE(r.error().message.find("cannot connect"), std::string::npos) << r.error().message;
}

TEST(EngineAuth, HeaderIsBase64UrlJson) {
  // Keys come out sorted; "p?>" puts a '_' (not '/') of the URL alphabet in the output.
  const std::string h = EncodeRegistryAuth({"u", "p?>", "h"});
  EXPECT_EQ(h.find_first_of("+/"), std::string::npos) << h;
  EXPECT_EQ(h, "eyJwYXNzd29yZCI6InA_PiIsInNlcnZlcmFkZHJlc3MiOiJoIiwidXNlcm5hbWUiOiJ1In0=");
}

}  // namespace
}  // namespace lichen::docker
