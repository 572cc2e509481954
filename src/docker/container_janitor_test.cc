// The janitor against the real dockerd (scripts/services.sh start): containers created
// through a component's socket carry its labels and go when it is cleaned; containers
// created on the daemon's own socket are never touched.
#include "docker/container_janitor.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <cstdio>
#include <filesystem>
#include <future>
#include <mutex>
#include <set>
#include <thread>

#include "docker/test_shell.h"

namespace lichen::docker {
namespace {

namespace fs = std::filesystem;
using test_support::Sh;
using test_support::SourceDir;
using namespace std::chrono_literals;

const std::string kImage = "lichen-janitor-test/busybox:1";

bool ContainerExists(const std::string& name) {
  return Sh("docker container inspect " + name + " >/dev/null").code == 0;
}

class JanitorTest : public ::testing::Test {
 protected:
  // Runs `f` on the loop thread and waits for it.
  template <typename F>
  auto OnLoop(F f) {
    std::packaged_task<decltype(f())()> task(std::move(f));
    auto result = task.get_future();
    boost::asio::post(io_, [&task] { task(); });
    return result.get();
  }

  void SetUp() override {
    ASSERT_TRUE(Engine().Ping().ok())
        << "The Docker tests need dockerd: run scripts/services.sh start";
    auto made = Sh(SourceDir() + "/tests/docker/make_test_image.sh " + kImage);
    ASSERT_EQ(made.code, 0) << made.out;
    static int n = 0;
    dir_ = fs::temp_directory_path() /
           ("lj-" + std::to_string(::getpid()) + "-" + std::to_string(++n));
    fs::create_directories(dir_);
    prefix_ = "lichen-janitor-" + std::to_string(::getpid()) + "-";
    loop_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    OnLoop([this] { janitor_.reset(); });
    guard_.reset();
    loop_.join();
    Sh("docker rm -f $(docker ps -aq --filter name=" + prefix_ + ") >/dev/null 2>&1; true");
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  ContainerJanitor& Make(const std::string& root, const std::string& socket_dir = "") {
    ContainerJanitorOptions options;
    options.root = root;
    options.socket_dir = socket_dir.empty() ? (dir_ / "sockets").string() : socket_dir;
    options.log = [this](const std::string& component, const std::string& message) {
      log_.push_back(component + ": " + message);  // on the loop
    };
    options.on_output = [this](const std::string& component, const std::string& container,
                               LogStream stream, const std::string& line) {
      std::lock_guard lock(output_mutex_);
      output_.push_back(component + "|" + container + "|" +
                        (stream == LogStream::kStderr ? "err" : "out") + "|" + line);
    };
    OnLoop([&] { janitor_ = std::make_unique<ContainerJanitor>(io_, options); });
    return *janitor_;
  }

  std::string Open(const std::string& component) {
    auto host = OnLoop([&] { return janitor_->Open(component, std::nullopt, std::nullopt); });
    EXPECT_TRUE(host.ok()) << host.error().message;
    return host.ok() ? *host : "";
  }

  // Waits until `done` runs (on the loop); bounded.
  bool Clean(const std::string& component) {
    std::promise<void> finished;
    OnLoop([&] { janitor_->Clean(component, 1s, [&finished] { finished.set_value(); }); });
    return finished.get_future().wait_for(60s) == std::future_status::ready;
  }

  std::string Run(const std::string& host, const std::string& name, const std::string& extra = "") {
    auto r = Sh("DOCKER_HOST=" + host + " docker run -d " + extra + " --name " + prefix_ + name +
                " " + kImage + " sleep 600");
    EXPECT_EQ(r.code, 0) << r.out;
    return prefix_ + name;
  }

  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guard_{
      io_.get_executor()};
  std::thread loop_;
  std::unique_ptr<ContainerJanitor> janitor_;
  fs::path dir_;
  std::string prefix_;
  std::vector<std::string> log_;
  std::mutex output_mutex_;
  std::vector<std::string> output_;  // component|container|out/err|line
  bool Printed(const std::string& entry) {
    std::lock_guard lock(output_mutex_);
    return std::find(output_.begin(), output_.end(), entry) != output_.end();
  }
  size_t CountFrom(const std::string& container) {
    std::lock_guard lock(output_mutex_);
    return static_cast<size_t>(std::count_if(output_.begin(), output_.end(), [&](const auto& e) {
      return e.find("|" + container + "|") != std::string::npos;
    }));
  }
};

TEST_F(JanitorTest, ContainersMadeThroughTheSocketCarryTheLabelsAndGoOnClean) {
  Make(dir_.string());
  const std::string host = Open("com.example.A");
  ASSERT_EQ(host.rfind("unix://", 0), 0u) << host;
  const std::string mine = Run(host, "mine");
  const std::string exited = prefix_ + "exited";
  ASSERT_EQ(
      Sh("DOCKER_HOST=" + host + " docker run --name " + exited + " " + kImage + " true").code, 0);
  // The same daemon reached directly: not the component's, never touched.
  const std::string other = Run("unix:///var/run/docker.sock", "other");

  auto labelled = Engine().ListContainers(
      {{std::string(kComponentLabel), "com.example.A"}, {std::string(kRootLabel), dir_.string()}});
  ASSERT_TRUE(labelled.ok()) << labelled.error().message;
  std::set<std::string> names;
  for (const auto& c : *labelled) names.insert(c.names.empty() ? "" : c.names.front());
  EXPECT_EQ(names, (std::set<std::string>{mine, exited}));

  ASSERT_TRUE(Clean("com.example.A"));
  EXPECT_FALSE(ContainerExists(mine));
  EXPECT_FALSE(ContainerExists(exited));  // stopped ones are removed too
  EXPECT_TRUE(ContainerExists(other));
  const bool logged = std::any_of(log_.begin(), log_.end(), [&](const std::string& l) {
    return l.find("com.example.A: removed container " + mine) == 0;
  });
  EXPECT_TRUE(logged);
}

// A network made through the socket (docker-compose's project network) is labelled and
// goes with the component's containers; one made on the daemon's own socket stays.
TEST_F(JanitorTest, NetworksMadeThroughTheSocketGoOnClean) {
  Make(dir_.string());
  const std::string host = Open("com.example.Net");
  const std::string mine = prefix_ + "net-mine";
  const std::string other = prefix_ + "net-other";
  ASSERT_EQ(Sh("DOCKER_HOST=" + host + " docker network create " + mine).code, 0);
  ASSERT_EQ(Sh("docker network create " + other).code, 0);
  auto labelled = Engine().ListNetworks({{std::string(kComponentLabel), "com.example.Net"}});
  ASSERT_TRUE(labelled.ok()) << labelled.error().message;
  ASSERT_EQ(labelled->size(), 1u);
  EXPECT_EQ(labelled->begin()->second, mine);

  ASSERT_TRUE(Clean("com.example.Net"));
  EXPECT_NE(Sh("docker network inspect " + mine).code, 0) << "the component's network stayed";
  EXPECT_EQ(Sh("docker network inspect " + other).code, 0);
  (void)Sh("docker network rm " + other);
}

TEST_F(JanitorTest, OnlyTheCleanedComponentsContainersGo) {
  Make(dir_.string());
  const std::string a = Run(Open("A"), "a");
  const std::string b = Run(Open("B"), "b");
  ASSERT_TRUE(Clean("A"));
  EXPECT_FALSE(ContainerExists(a));
  EXPECT_TRUE(ContainerExists(b));
}

TEST_F(JanitorTest, AComponentThatCreatedNothingIsDoneAtOnce) {
  Make(dir_.string());
  Open("quiet");
  // `done` runs inside Clean itself: no worker, no call to the daemon.
  const bool immediate = OnLoop([this] {
    bool called = false;
    janitor_->Clean("quiet", 1s, [&called] { called = true; });
    return called;
  });
  EXPECT_TRUE(immediate);
  const bool unknown = OnLoop([this] {
    bool called = false;
    janitor_->Clean("never-opened", 1s, [&called] { called = true; });
    return called;
  });
  EXPECT_TRUE(unknown);
}

TEST_F(JanitorTest, CleanAllTakesEveryComponentOfThisRootAndNoOther) {
  Make(dir_.string());
  const std::string a = Run(Open("A"), "a");
  const std::string b = Run(Open("B"), "b");
  // Another runtime root on the same daemon: its containers are not ours.
  const std::string foreign =
      Run("unix:///var/run/docker.sock", "foreign", "--label lichen.root=/elsewhere");
  const int removed = OnLoop([this] { return janitor_->CleanAll(1s); });
  EXPECT_EQ(removed, 2);
  EXPECT_FALSE(ContainerExists(a));
  EXPECT_FALSE(ContainerExists(b));
  EXPECT_TRUE(ContainerExists(foreign));
}

TEST_F(JanitorTest, ClosedSocketIsGoneAndContainersStay) {
  Make(dir_.string());
  const std::string host = Open("A");
  const std::string a = Run(host, "a");
  OnLoop([this] {
    janitor_->Close("A");
    return 0;
  });
  EXPECT_FALSE(fs::exists(host.substr(7)));
  EXPECT_TRUE(ContainerExists(a));  // Close is not Clean
}

TEST_F(JanitorTest, ADeepRootStillGetsAWorkingSocket) {
  const std::string deep = (dir_ / std::string(120, 'd')).string();
  Make(dir_.string(), deep);
  const std::string host = Open("com.example.AComponentWithAVeryLongNameIndeed");
  ASSERT_FALSE(host.empty());
  EXPECT_LE(host.size() - 7, 107u) << host;
  const std::string a = Run(host, "deep");
  ASSERT_TRUE(Clean("com.example.AComponentWithAVeryLongNameIndeed"));
  EXPECT_FALSE(ContainerExists(a));
  std::error_code ec;
  fs::remove_all(fs::path(host.substr(7)).parent_path(), ec);
}

TEST_F(JanitorTest, DetachedContainersOutputIsFollowedAttachedOnesAreNot) {
  Make(dir_.string());
  const std::string host = Open("A");
  const std::string detached = prefix_ + "detached";
  auto r = Sh("DOCKER_HOST=" + host + " docker run -d --name " + detached + " " + kImage +
              " sh -c \"echo to-stdout; echo to-stderr >&2; printf no-newline\"");
  ASSERT_EQ(r.code, 0) << r.out;
  auto waited = Sh("docker wait " + detached);
  ASSERT_EQ(waited.code, 0) << waited.out;
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (!(Printed("A|" + detached + "|out|to-stdout") &&
           Printed("A|" + detached + "|err|to-stderr") &&
           Printed("A|" + detached + "|out|no-newline")) &&
         std::chrono::steady_clock::now() < deadline) {
    OnLoop([] { return 0; });  // let posted lines run
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(Printed("A|" + detached + "|out|to-stdout"));
  EXPECT_TRUE(Printed("A|" + detached + "|err|to-stderr"));
  EXPECT_TRUE(Printed("A|" + detached + "|out|no-newline"));  // the partial last line

  // Attached: the client prints it; following it too would log every line twice.
  const std::string attached = prefix_ + "attached";
  auto fg = Sh("DOCKER_HOST=" + host + " docker run --name " + attached + " " + kImage +
               " echo shown-by-the-client");
  ASSERT_EQ(fg.code, 0) << fg.out;
  EXPECT_NE(fg.out.find("shown-by-the-client"), std::string::npos);
  ASSERT_TRUE(Clean("A"));  // the follow of a detached container would have ended by now
  OnLoop([] { return 0; });
  EXPECT_EQ(CountFrom(attached), 0u);
}

TEST_F(JanitorTest, AFolderSomeoneElseMadeIsRefusedAndTheOwnerFollowsTheUser) {
  // A socket folder another user could write: sockets there could be swapped for symlinks.
  const std::string theirs = (dir_ / "theirs").string();
  fs::create_directories(theirs);
  ASSERT_EQ(::chown(theirs.c_str(), 65534, 65534), 0);
  Make(dir_.string(), theirs);
  auto refused = OnLoop([this] { return janitor_->Open("A", std::nullopt, std::nullopt); });
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find(theirs), std::string::npos) << refused.error().message;

  OnLoop([this] {
    janitor_.reset();
    return 0;
  });
  Make(dir_.string());
  auto as_nobody = OnLoop([this] { return janitor_->Open("B", 65534, 65534); });
  ASSERT_TRUE(as_nobody.ok()) << as_nobody.error().message;
  struct stat st {};
  ASSERT_EQ(::stat(as_nobody->substr(7).c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 65534u);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // The component now runs as root: the socket is made again, root's.
  auto as_root = OnLoop([this] { return janitor_->Open("B", 0, 0); });
  ASSERT_TRUE(as_root.ok());
  ASSERT_EQ(::stat(as_root->substr(7).c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 0u);
}

// Supplementary groups and unreachable folders: image_puller_test (CheckAccessTest).
TEST(UserMayUseSocketTest, ModeOwnerAndGroupDecide) {
  const fs::path dir = fs::temp_directory_path() / ("lichen-socket-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  fs::permissions(dir, fs::perms::all);  // nobody must reach the socket through it
  const std::string path = (dir / "docker.sock").string();
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::chown(path.c_str(), 0, 0), 0);
  ASSERT_EQ(::chmod(path.c_str(), 0660), 0);

  const uid_t nobody = 65534;
  auto refused = UserMayUseSocket(path, nobody);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, kDockerPermissionDenied);
  EXPECT_NE(refused.error().message.find("user nobody"), std::string::npos);
  EXPECT_NE(refused.error().message.find("add the user to group root"), std::string::npos)
      << refused.error().message;
  EXPECT_TRUE(UserMayUseSocket(path, nobody, 0).ok());  // group root as primary group
  EXPECT_TRUE(UserMayUseSocket(path, 0).ok());
  ASSERT_EQ(::chown(path.c_str(), nobody, 0), 0);
  ASSERT_EQ(::chmod(path.c_str(), 0060), 0);  // the owner's bits, not the group's, apply
  EXPECT_FALSE(UserMayUseSocket(path, nobody, 0).ok());
  ASSERT_EQ(::chmod(path.c_str(), 0666), 0);
  EXPECT_TRUE(UserMayUseSocket(path, 1234).ok());

  auto missing = UserMayUseSocket((dir / "absent.sock").string(), nobody);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, kDockerDaemonUnavailable);
  ::close(fd);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace lichen::docker
