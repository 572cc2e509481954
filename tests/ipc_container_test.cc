// IPC from inside a Docker container, as the AWS guide "Run a Docker container" does it:
// a component whose Run is `docker run --rm -v <root>:<root> -e SVCUID
// -e AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT ... node client.js` runs the
// official JS IPC client (aws-iot-device-sdk-v2) in a busybox container; a host
// component answers it over pubsub. Needs the real dockerd (scripts/services.sh start).
//
// The containerized component runs as root (--runWith ...:posixUser=root) because it
// needs the Docker socket; the responder runs as the default ggc_user.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "nucleus_harness.h"

namespace lichen::harness {
namespace {

const std::string kContainer = "lichen.test.IpcContainer";
const std::string kResponder = "lichen.test.IpcResponder";
// Built locally from busybox-static: no registry is reachable from the tests.
const std::string kImage = "lichen-test/busybox:1";

std::string DataDir() { return SourceDir() + "/tests/docker/ipc_container"; }
std::string SdkDir() { return SourceDir() + "/tools/ipc-sdk"; }

// The docker CLI (execv needs a path); the first that exists.
std::string DockerCli() {
  for (const char* p : {"/usr/local/bin/docker", "/usr/bin/docker"}) {
    if (::access(p, X_OK) == 0) return p;
  }
  return "/usr/bin/docker";
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

// Ids of the containers (running or not) that carry this run's label.
std::vector<std::string> Containers(const std::string& run_id) {
  auto r = RunCommand(
      {DockerCli(), "ps", "-a", "-q", "--filter", "label=lichen.test.run=" + run_id}, 20000ms);
  return Lines(r.out);
}

class IpcContainer : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "the daemon tests run as root";
    // Docker is a requirement of this test, not an option: fail, and say how to fix it.
    auto ping = RunCommand({DockerCli(), "version", "--format", "{{.Server.Version}}"}, 20000ms);
    ASSERT_EQ(ping.exit_code, 0) << "dockerd is not reachable on /var/run/docker.sock: run "
                                    "scripts/services.sh start\n"
                                 << ping.Describe();
    ASSERT_TRUE(fs::exists(SdkDir() + "/node_modules/aws-iot-device-sdk-v2"))
        << "the JS IPC SDK is missing: run scripts/setup.sh";
    auto image = RunCommand({"/bin/bash", SourceDir() + "/tests/docker/make_test_image.sh", kImage},
                            120000ms);
    ASSERT_EQ(image.exit_code, 0) << image.Describe();

    NucleusOptions o;
    // Stopping `docker run` waits for the container to exit and be removed.
    o.stop_grace_ms = 10000;
    o.deployment_timeout_s = 40;
    n_ = std::make_unique<Nucleus>(o);
    ASSERT_TRUE(n().Start());
  }

  void TearDown() override {
    // Whatever happened, leave no container behind.
    for (const auto& id : run_ids_) {
      for (const auto& c : Containers(id)) (void)RunCommand({DockerCli(), "rm", "-f", c}, 30000ms);
    }
  }

  Nucleus& n() { return *n_; }

  // A label value unique to this process and call: containers of other runs never count.
  std::string NewRunId() {
    run_ids_.push_back("ipc" + std::to_string(::getpid()) + "-" + std::to_string(run_ids_.size()));
    return run_ids_.back();
  }

  // The deployment's configuration: where the SDK is, and the container's label.
  std::string Config(const std::string& run_id) const {
    Json c = {{kContainer, {{"MERGE", {{"SdkPath", SdkDir()}, {"RunId", run_id}}}}},
              {kResponder, {{"MERGE", {{"SdkPath", SdkDir()}}}}}};
    return c.dump();
  }

  void DeployOk(std::vector<std::string> args) {
    std::vector<std::string> full = {"deployment", "create"};
    full.insert(full.end(), args.begin(), args.end());
    full.insert(full.end(), {"--wait", "--timeout", "60"});
    auto cli = n().Cli(full, 70000ms);
    auto rows = ParseDeployments(cli.out);
    ASSERT_EQ(cli.exit_code, 0) << cli.Describe() << "\ngreengrass.log:\n" << n().Log();
    ASSERT_FALSE(rows.empty()) << cli.Describe();
    ASSERT_EQ(rows.back().status, "SUCCEEDED") << cli.Describe();
  }

  void DeployBoth(const std::string& run_id) {
    DeployOk({"-r", DataDir() + "/recipes", "-a", DataDir() + "/artifacts", "-m",
              kContainer + "=1.0.0", "-m", kResponder + "=1.0.0", "--runWith",
              kContainer + ":posixUser=root", "-c", Config(run_id)});
  }

  std::string Logs() const {
    return "--- " + kContainer + " ---\n" + n_->Log(kContainer) + "--- " + kResponder + " ---\n" +
           n_->Log(kResponder);
  }

  std::unique_ptr<Nucleus> n_;
  std::vector<std::string> run_ids_;
};

TEST_F(IpcContainer, ContainerizedSdkClientTalksToHostComponentAndLeavesNoContainer) {
  const std::string first = NewRunId();
  ASSERT_NO_FATAL_FAILURE(DeployBoth(first));

  // The client really runs in a container, its request reaches the host component, and
  // the host component's reply reaches the container.
  EXPECT_TRUE(n().WaitLog(kContainer, "client in container: true", 30000ms)) << Logs();
  EXPECT_TRUE(n().WaitLog(kResponder, "responder got: hello from container", 30000ms)) << Logs();
  EXPECT_TRUE(n().WaitLog(kContainer, "container received: pong:hello from container", 30000ms))
      << Logs();
  EXPECT_EQ(Containers(first).size(), 1u);
  // `docker run` runs as root, as the deployment asked (it needs the socket).
  auto procs = n().ProcessesOf(kContainer);
  ASSERT_FALSE(procs.empty()) << DescribeProcesses(n().Processes());
  for (const auto& p : procs) EXPECT_EQ(p.uid, 0u) << DescribeProcesses(procs);

  // Removing the component stops `docker run`; the container goes with it.
  ASSERT_NO_FATAL_FAILURE(DeployOk({"--remove", kContainer}));
  EXPECT_TRUE(WaitFor([&] { return Containers(first).empty(); }, 20000ms))
      << "container left after the component was removed";

  // Again, then stop the nucleus: no container outlives it either.
  const std::string second = NewRunId();
  ASSERT_NO_FATAL_FAILURE(DeployBoth(second));
  EXPECT_TRUE(WaitFor(
      [&] {
        return CountOccurrences(n().Log(kContainer), "container received: pong:") >= 2 &&
               Containers(second).size() == 1;
      },
      30000ms))
      << Logs();
  EXPECT_EQ(n().Stop(40000ms), 0) << ReadFile(n().daemon_output_path());
  EXPECT_TRUE(WaitFor([&] { return Containers(second).empty(); }, 20000ms))
      << "container left after the nucleus stopped";
}

}  // namespace
}  // namespace lichen::harness
