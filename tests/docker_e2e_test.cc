// Docker container components on the real daemon, as the AWS guide "Run a Docker
// container" runs them: images as docker: artifacts pulled from local registries
// (scripts/services.sh start: dockerd, 127.0.0.1:5000 open, 127.0.0.1:5001 htpasswd,
// s3rver on 127.0.0.1:4568), `docker save` tarballs from S3, Compose files from S3, and
// the containers a component starts removed whenever it stops, whatever the reason.
//
// Images are built here from busybox-static (tests/docker/make_test_image.sh) and pushed
// to the local registries; nothing comes from the internet. Every name carries this
// process's id: ctest runs test binaries in parallel on one daemon.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "nucleus_harness.h"

namespace lichen::harness {
namespace {

const std::string kBase = "lichen-test/busybox:1";
const std::string kOpen = "127.0.0.1:5000";
const std::string kPrivate = "127.0.0.1:5001";
const std::string kS3 = "http://127.0.0.1:4568";
const std::string kManager = R"(ComponentDependencies:
  aws.greengrass.DockerApplicationManager:
    VersionRequirement: ~2.0.0
)";

std::string DockerCli() {
  for (const char* p : {"/usr/local/bin/docker", "/usr/bin/docker"}) {
    if (::access(p, X_OK) == 0) return p;
  }
  return "/usr/bin/docker";
}

// Output without its trailing newline.
CommandResult Docker(const std::vector<std::string>& args, milliseconds timeout = 60000ms) {
  std::vector<std::string> argv = {DockerCli()};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = RunCommand(argv, timeout);
  while (!r.out.empty() && r.out.back() == '\n') r.out.pop_back();
  return r;
}

CommandResult Bash(const std::string& script, milliseconds timeout = 120000ms) {
  return RunCommand({"/bin/bash", "-c", script}, timeout);
}

bool ContainerExists(const std::string& name) {
  return Docker({"container", "inspect", name}, 20000ms).exit_code == 0;
}
bool ImageExists(const std::string& name) {
  return Docker({"image", "inspect", name}, 20000ms).exit_code == 0;
}
std::string ContainerId(const std::string& name) {
  auto r = Docker({"container", "inspect", "-f", "{{.Id}}", name}, 20000ms);
  return r.exit_code == 0 ? r.out : "";
}

class DockerE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "the daemon tests run as root";
    auto ping = Docker({"version", "--format", "{{.Server.Version}}"}, 20000ms);
    ASSERT_EQ(ping.exit_code, 0) << "dockerd is not reachable: run scripts/services.sh start\n"
                                 << ping.Describe();
    auto base = Bash(SourceDir() + "/tests/docker/make_test_image.sh " + kBase);
    ASSERT_EQ(base.exit_code, 0) << base.Describe();
    tag_ = "e2e" + std::to_string(::getpid()) + "-" + std::to_string(++counter_);
    NucleusOptions o;
    o.stop_grace_ms = 2000;
    o.deployment_timeout_s = 60;
    n_ = std::make_unique<Nucleus>(o);
    recipes_ = n_->dir() + "/recipes";
    fs::create_directories(recipes_);
  }

  void TearDown() override {
    if (n_) n_->Stop();
    // Whatever happened, nothing of this test stays on the daemon.
    Bash("docker ps -aq --filter name=" + tag_ +
         " | xargs -r docker rm -f >/dev/null 2>&1; docker images --format "
         "'{{.Repository}}:{{.Tag}}' | grep " +
         tag_ + " | xargs -r docker rmi -f >/dev/null 2>&1; true");
  }

  Nucleus& n() { return *n_; }

  // Starts the nucleus with `extra` appended to its `lichen:` block (8-space keys).
  void Start(const std::string& extra = "") {
    n().WriteConfig(n().DefaultConfig() + extra);
    ASSERT_TRUE(n().Start());
  }

  // Pushes the base image as `repository:tag` to a local registry and removes the local
  // copy, so a deployment has to pull it. Returns the full name.
  std::string Push(const std::string& registry, const std::string& repository,
                   const std::string& tag = "1") {
    const std::string name = registry + "/" + tag_ + "/" + repository + ":" + tag;
    std::string script = "set -e; docker tag " + kBase + " " + name + "; ";
    if (registry == kPrivate) {
      script +=
          "cfg=$(mktemp -d); trap 'rm -rf $cfg' EXIT; echo lichen-secret | docker --config $cfg "
          "login -u lichen --password-stdin " +
          kPrivate + " >/dev/null; docker --config $cfg push " + name + " >/dev/null; ";
    } else {
      script += "docker push " + name + " >/dev/null; ";
    }
    script += "docker rmi " + name + " >/dev/null";
    auto r = Bash(script);
    EXPECT_EQ(r.exit_code, 0) << r.Describe();
    return name;
  }

  void WriteRecipe(const std::string& name, const std::string& version, const std::string& body) {
    WriteFile(recipes_ + "/" + name + "-" + version + ".yaml",
              "RecipeFormatVersion: '2020-01-25'\nComponentName: " + name +
                  "\nComponentVersion: '" + version + "'\n" + body);
  }

  // Deploys as root: components that use Docker need the daemon's socket.
  CommandResult Deploy(const std::vector<std::string>& roots,
                       const std::vector<std::string>& extra = {}, bool as_root = true) {
    std::vector<std::string> args = {"deployment", "create", "-r", recipes_};
    for (const auto& r : roots) {
      args.insert(args.end(), {"-m", r});
      if (as_root)
        args.insert(args.end(), {"--runWith", r.substr(0, r.find('=')) + ":posixUser=root"});
    }
    args.insert(args.end(), extra.begin(), extra.end());
    args.insert(args.end(), {"--wait", "--timeout", "90"});
    return n().Cli(args, 100000ms);
  }

  // A component whose Run is `docker run --rm OPTIONS IMAGE COMMAND`, with the image as its
  // docker: artifact.
  void WriteDockerRunRecipe(const std::string& name, const std::string& version,
                            const std::string& options, const std::string& image,
                            const std::string& command) {
    WriteRecipe(name, version,
                kManager + "Manifests:\n  - Lifecycle:\n      Run: docker run --rm " +
                    (options.empty() ? "" : options + " ") + image + " " + command +
                    "\n    Artifacts:\n      - URI: docker:" + image + "\n");
  }

  // Submits one root (as root) without waiting; its deployment id, or empty (reported).
  std::string Submit(const std::string& root) {
    auto r = n().Cli({"deployment", "create", "-r", recipes_, "-m", root, "--runWith",
                      root.substr(0, root.find('=')) + ":posixUser=root"});
    const std::string marker = "Deployment Id: ";
    const auto at = r.out.find(marker);
    if (at == std::string::npos) {
      ADD_FAILURE() << "no deployment id: " << r.Describe();
      return "";
    }
    const std::string rest = r.out.substr(at + marker.size());
    return rest.substr(0, rest.find('\n'));
  }

  static bool Succeeded(const CommandResult& r) {
    auto rows = ParseDeployments(r.out);
    return r.exit_code == 0 && !rows.empty() && rows.back().status == "SUCCEEDED";
  }

  std::string Name(const std::string& what) const { return tag_ + "-" + what; }

  static inline int counter_ = 0;
  std::string tag_;
  std::unique_ptr<Nucleus> n_;
  std::string recipes_;
};

// --- images as artifacts, containers removed on stop ---------------------------------

TEST_F(DockerE2E, PullsTheImageRunsItAndRemovesContainerAndImageWithTheComponent) {
  Start();
  const std::string image = Push(kOpen, "app");
  ASSERT_FALSE(ImageExists(image));
  const std::string container = Name("fg");
  // The guide's shape: Run is `docker run` in the foreground, no Shutdown step. PID 1 of
  // the container ignores SIGTERM, so only the cleanup can remove it.
  WriteRecipe("com.example.Fg", "1.0.0",
              kManager + R"(Manifests:
  - Lifecycle:
      Run: docker run --name )" +
                  container + " " + image +
                  R"( sh -c 'echo hello-from-container; exec sleep 600'
    Artifacts:
      - URI: docker:)" +
                  image + "\n");
  auto d = Deploy({"com.example.Fg=1.0.0"});
  ASSERT_TRUE(Succeeded(d)) << d.Describe() << "\n" << n().Log();
  EXPECT_TRUE(ImageExists(image));
  ASSERT_TRUE(n().WaitLog("com.example.Fg", "hello-from-container", 30000ms))
      << n().Log("com.example.Fg");
  ASSERT_TRUE(ContainerExists(container));
  auto label =
      Docker({"inspect", "-f", "{{index .Config.Labels \"lichen.component\"}}", container});
  EXPECT_EQ(label.out, "com.example.Fg");
  EXPECT_TRUE(n().WaitLog("", "docker-image"));  // pull progress logged (flushed every 100 ms)

  auto removed = Deploy({}, {"--remove", "com.example.Fg"});
  ASSERT_TRUE(Succeeded(removed)) << removed.Describe();
  EXPECT_TRUE(WaitFor([&] { return !ContainerExists(container); }, 30000ms))
      << "the container outlived its component\n"
      << n().Log();
  // The last recipe naming the image is gone, so the image goes too.
  EXPECT_TRUE(WaitFor([&] { return !ImageExists(image); }, 30000ms)) << n().Log();
}

TEST_F(DockerE2E, DetachedContainersGoOnRestartAndOnShutdown) {
  Start();
  const std::string container = Name("bg");
  WriteRecipe("com.example.Bg", "1.0.0",
              R"(Manifests:
  - Lifecycle:
      Startup: docker run -d --name )" +
                  container + " " + kBase + R"( sh -c 'echo detached-says-hi; exec sleep 600'
)");
  auto d = Deploy({"com.example.Bg=1.0.0"});
  ASSERT_TRUE(Succeeded(d)) << d.Describe() << "\n" << n().Log();
  // No client shows a detached container's output: Lichen follows it into the log.
  EXPECT_TRUE(n().WaitLog("com.example.Bg", "detached-says-hi", 20000ms))
      << n().Log("com.example.Bg");
  const std::string first = ContainerId(container);
  ASSERT_FALSE(first.empty());

  // A restart re-runs Startup with the same --name: it only succeeds because the first
  // container was removed in between.
  auto restart = n().Cli({"component", "restart", "--names", "com.example.Bg"});
  ASSERT_EQ(restart.exit_code, 0) << restart.Describe();
  ASSERT_TRUE(WaitFor(
      [&] {
        const std::string id = ContainerId(container);
        return !id.empty() && id != first && n().ComponentState("com.example.Bg") == "RUNNING";
      },
      30000ms))
      << n().Log("com.example.Bg") << n().Log();

  ASSERT_TRUE(n().Stop().has_value());
  EXPECT_FALSE(ContainerExists(container)) << "nucleus shutdown left the container\n" << n().Log();
}

TEST_F(DockerE2E, ABrokenComponentLeavesNoContainer) {
  Start();
  const std::string prefix = Name("crash");
  // Every attempt starts a detached container, then fails.
  WriteRecipe("com.example.Crash", "1.0.0",
              R"(Manifests:
  - Lifecycle:
      Run: docker run -d --name )" +
                  prefix + R"(-$$ )" + kBase + R"( sleep 600 && exit 3
)");
  // The deployment may count it RUNNING first (a `docker run -d` slower than the 1 s
  // run-stable window): what matters is where it ends, BROKEN, and what it leaves.
  (void)Deploy({"com.example.Crash=1.0.0"});
  ASSERT_TRUE(WaitFor([&] { return n().ComponentState("com.example.Crash") == "BROKEN"; }, 60000ms))
      << n().Log();
  auto left = Docker({"ps", "-aq", "--filter", "name=" + prefix});
  EXPECT_TRUE(WaitFor(
      [&] {
        return Docker({"ps", "-aq", "--filter", "name=" + prefix}).out.empty();
      },
      30000ms))
      << "containers left by a BROKEN component: " << left.out;
}

TEST_F(DockerE2E, ContainersOfAKilledNucleusAreRemovedAtItsNextStart) {
  Start();
  const std::string container = Name("orphan");
  WriteRecipe("com.example.Orphan", "1.0.0",
              R"(Manifests:
  - Lifecycle:
      Startup: docker run -d --name )" +
                  container + " " + kBase + R"( sleep 600
)");
  auto d = Deploy({"com.example.Orphan=1.0.0"});
  ASSERT_TRUE(Succeeded(d)) << d.Describe() << "\n" << n().Log();
  const std::string first = ContainerId(container);
  ASSERT_FALSE(first.empty());
  n().Kill9();
  ASSERT_TRUE(ContainerExists(container));  // nobody was there to remove it
  ASSERT_TRUE(n().Start());
  // The leftover goes before the component starts again with the same name.
  ASSERT_TRUE(WaitFor(
      [&] {
        const std::string id = ContainerId(container);
        return id != first && !id.empty() && n().ComponentState("com.example.Orphan") == "RUNNING";
      },
      30000ms))
      << n().Log();
  EXPECT_TRUE(n().WaitLog("", "leftover-containers")) << n().Log();
}

// --- bad input: clear errors, and what runs keeps running -----------------------------

TEST_F(DockerE2E, BadImagesFailClearlyAndTheRunningVersionKeepsRunning) {
  Start("        docker:\n          pullAttempts: 2\n");
  const std::string image = Push(kOpen, "keep");
  const std::string container = Name("keep");
  auto recipe = [&](const std::string& version, const std::string& uri) {
    WriteRecipe("com.example.Keep", version,
                kManager + R"(Manifests:
  - Lifecycle:
      Run: docker run --rm --name )" +
                    container + "-" + version + " " + image +
                    R"( sleep 600
    Artifacts:
      - URI: )" + uri +
                    "\n");
  };
  recipe("1.0.0", "docker:" + image);
  auto d = Deploy({"com.example.Keep=1.0.0"});
  ASSERT_TRUE(Succeeded(d)) << d.Describe() << "\n" << n().Log();
  ASSERT_TRUE(WaitFor([&] { return ContainerExists(container + "-1.0.0"); }, 30000ms));
  const std::string running = ContainerId(container + "-1.0.0");

  struct Case {
    std::string uri, code, mention;
  };
  const std::vector<Case> cases = {
      {"docker:" + kOpen + "/" + tag_ + "/keep:no-such-tag", "DOCKER_PULL_ERROR", "no-such-tag"},
      {"docker:" + kOpen + "/" + tag_ + "/Upper:1", "DOCKER_ARTIFACT_URI_NOT_VALID", "Upper"},
      {"docker:127.0.0.1:1/" + tag_ + "/x:1", "DOCKER_PULL_ERROR", "127.0.0.1:1"},
      {"docker:123456789012.dkr.ecr.us-west-2.amazonaws.com/app:1",
       "MISSING_TOKEN_EXCHANGE_SERVICE", "TokenExchangeService"},
  };
  int v = 1;
  for (const auto& c : cases) {
    const std::string version = "1.0." + std::to_string(v++);
    recipe(version, c.uri);
    auto bad = Deploy({"com.example.Keep=" + version});
    EXPECT_FALSE(Succeeded(bad)) << c.uri;
    EXPECT_NE(bad.out.find(c.code), std::string::npos) << c.uri << "\n" << bad.Describe();
    EXPECT_NE(bad.out.find(c.mention), std::string::npos) << c.uri << "\n" << bad.Describe();
    EXPECT_EQ(ContainerId(container + "-1.0.0"), running) << c.uri;
    EXPECT_EQ(n().Component("com.example.Keep")->version, "1.0.0");
    // A recipe that cannot load fails every deployment from its folder.
    fs::remove(recipes_ + "/com.example.Keep-" + version + ".yaml");
  }
}

// The check is deployment-wide, as the nucleus's: here nothing depends on the manager.
TEST_F(DockerE2E, ADockerArtifactWithoutTheManagerIsRefused) {
  Start();
  WriteRecipe("com.example.NoManager", "1.0.0", R"(Manifests:
  - Lifecycle:
      Run: sleep 600
    Artifacts:
      - URI: docker:)" + kBase + "\n");
  auto no_manager = Deploy({"com.example.NoManager=1.0.0"});
  EXPECT_FALSE(Succeeded(no_manager));
  EXPECT_NE(no_manager.out.find("MISSING_DOCKER_APPLICATION_MANAGER"), std::string::npos)
      << no_manager.Describe();
}

TEST_F(DockerE2E, AUserOutsideTheDockerGroupIsToldSo) {
  Start();
  const std::string image = Push(kOpen, "user");
  WriteRecipe("com.example.User", "1.0.0", kManager + R"(Manifests:
  - Lifecycle:
      Run: docker run --rm )" + image + R"( true
    Artifacts:
      - URI: docker:)" + image + "\n");
  // The default user, ggc_user, is not in the socket's group.
  auto d = Deploy({"com.example.User=1.0.0"}, {}, /*as_root=*/false);
  EXPECT_FALSE(Succeeded(d));
  EXPECT_NE(d.out.find("USER_NOT_AUTHORIZED_FOR_DOCKER"), std::string::npos) << d.Describe();
  EXPECT_NE(d.out.find("ggc_user"), std::string::npos) << d.Describe();
  EXPECT_FALSE(ImageExists(image));  // refused before pulling
}

// --- the AWS guide's workflows ------------------------------------------------------

TEST_F(DockerE2E, PrivateRegistryWithCredentialsFromTheRuntimeConfiguration) {
  const std::string image = Push(kPrivate, "private");
  Start("        docker:\n          pullAttempts: 1\n          registries:\n            \"" +
        kPrivate + "\":\n              username: lichen\n              password: lichen-secret\n");
  WriteRecipe("com.example.Private", "1.0.0", kManager + R"(Manifests:
  - Lifecycle:
      Run: docker run --rm )" + image + R"( echo private-image-ran
    Artifacts:
      - URI: docker:)" + image + "\n");
  auto d = Deploy({"com.example.Private=1.0.0"});
  ASSERT_TRUE(Succeeded(d)) << d.Describe() << "\n" << n().Log();
  EXPECT_TRUE(n().WaitLog("com.example.Private", "private-image-ran", 30000ms))
      << n().Log("com.example.Private");
  // Nothing written to a docker CLI configuration.
  EXPECT_FALSE(fs::exists("/root/.docker/config.json") &&
               ReadFile("/root/.docker/config.json").find(kPrivate) != std::string::npos);
  EXPECT_EQ(n().Log().find("lichen-secret"), std::string::npos);
}

TEST_F(DockerE2E, WrongRegistryPasswordIsALoginError) {
  const std::string image = Push(kPrivate, "wrong");
  Start("        docker:\n          pullAttempts: 1\n          registries:\n            \"" +
        kPrivate + "\":\n              username: lichen\n              password: not-it\n");
  WriteRecipe("com.example.Wrong", "1.0.0", kManager + R"(Manifests:
  - Lifecycle:
      Run: docker run --rm )" + image + R"( true
    Artifacts:
      - URI: docker:)" + image + "\n");
  auto d = Deploy({"com.example.Wrong=1.0.0"});
  EXPECT_FALSE(Succeeded(d));
  EXPECT_NE(d.out.find("DOCKER_LOGIN_ERROR"), std::string::npos) << d.Describe();
}

// The S3 server of scripts/services.sh; anonymous writes (s3rver accepts them).
class S3Bucket {
 public:
  explicit S3Bucket(std::string name) : name_(std::move(name)) {
    auto r = RunCommand({"/usr/bin/curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X",
                         "PUT", kS3 + "/" + name_},
                        20000ms);
    ok_ = r.exit_code == 0 && (r.out == "200" || r.out == "409");
  }
  bool ok() const { return ok_; }
  const std::string& name() const { return name_; }
  ::testing::AssertionResult Put(const std::string& key, const std::string& file) const {
    auto r = RunCommand({"/usr/bin/curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X",
                         "PUT", "--data-binary", "@" + file, kS3 + "/" + name_ + "/" + key},
                        120000ms);
    if (r.exit_code == 0 && r.out == "200") return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "PUT " << key << ": " << r.Describe();
  }

 private:
  std::string name_;
  bool ok_ = false;
};

// The runtime configuration's part for S3: s3rver's built-in account.
std::string S3Config() {
  return "        s3:\n          endpoint: \"" + kS3 +
         "\"\n        credentials:\n          accessKeyId: S3RVER\n"
         "          secretAccessKey: S3RVER\n";
}

// Workflow 3 of the guide: an image saved with `docker save` to S3, `docker load` in
// Install, `docker run --rm` in Run; no Docker dependency in the recipe.
TEST_F(DockerE2E, ADockerSaveTarballFromS3IsLoadedAtInstallAndRun) {
  S3Bucket bucket("lichen-e2e-" + tag_);
  ASSERT_TRUE(bucket.ok()) << "s3rver is not answering on " << kS3
                           << ": run scripts/services.sh start";
  const std::string image = tag_ + "-app:1";
  const std::string tarball = n().dir() + "/my-app-image.tar";
  auto saved = Bash("set -e; docker tag " + kBase + " " + image + "; docker save -o " + tarball +
                    " " + image + "; docker rmi " + image + " >/dev/null");
  ASSERT_EQ(saved.exit_code, 0) << saved.Describe();
  ASSERT_TRUE(bucket.Put("folder/my-app-image.tar", tarball));
  WriteFile(n().dir() + "/corrupt.tar", "this is not a tar file\n");
  ASSERT_TRUE(bucket.Put("folder/corrupt.tar", n().dir() + "/corrupt.tar"));
  Start(S3Config());

  WriteRecipe("com.example.MyS3DockerComponent", "1.0.0", R"(Manifests:
  - Platform:
      os: linux
    Lifecycle:
      Install:
        Script: docker load -i {artifacts:path}/my-app-image.tar
      Run:
        Script: docker run --rm )" + image + R"( echo loaded-image-ran
    Artifacts:
      - URI: s3://)" + bucket.name() + "/folder/my-app-image.tar\n");
  auto d = Deploy({"com.example.MyS3DockerComponent=1.0.0"});
  ASSERT_TRUE(Succeeded(d)) << d.Describe() << "\n" << n().Log();
  EXPECT_TRUE(n().WaitLog("com.example.MyS3DockerComponent", "loaded-image-ran", 30000ms))
      << n().Log("com.example.MyS3DockerComponent");
  EXPECT_TRUE(ImageExists(image));

  // A corrupt tarball: Install fails, the deployment fails and rolls back to version 1.
  WriteRecipe("com.example.MyS3DockerComponent", "2.0.0", R"(Manifests:
  - Lifecycle:
      Install: docker load -i {artifacts:path}/corrupt.tar
      Run: docker run --rm )" + image + R"( echo never
    Artifacts:
      - URI: s3://)" + bucket.name() + "/folder/corrupt.tar\n");
  auto bad =
      Deploy({"com.example.MyS3DockerComponent=2.0.0"}, {"--failure-handling-policy", "ROLLBACK"});
  EXPECT_FALSE(Succeeded(bad)) << bad.Describe();
  EXPECT_TRUE(
      WaitFor([&] { return n().Component("com.example.MyS3DockerComponent")->version == "1.0.0"; },
              60000ms))
      << n().Log();
}

// Workflow 1: the Compose file is an S3 artifact, its images are docker: artifacts, Run
// is `docker-compose up` in the foreground. Removing the component removes its
// containers even though Compose was only sent SIGTERM.
TEST_F(DockerE2E, ComposeFromS3RunsItsServicesAndTheyGoWithTheComponent) {
  if (::access("/usr/bin/docker-compose", X_OK) != 0) {
    FAIL() << "docker-compose is missing: run scripts/setup.sh";
  }
  S3Bucket bucket("lichen-e2e-" + tag_);
  ASSERT_TRUE(bucket.ok()) << "s3rver is not answering on " << kS3;
  const std::string web = Push(kOpen, "web");
  const std::string db = Push(kOpen, "db");
  const std::string compose = n().dir() + "/docker-compose.yaml";
  WriteFile(compose, "version: '3'\nservices:\n  web:\n    image: " + web +
                         "\n    command: sh -c 'echo web-service-up; exec sleep 600'\n"
                         "  db:\n    image: " +
                         db + "\n    command: sh -c 'echo db-service-up; exec sleep 600'\n");
  ASSERT_TRUE(bucket.Put("folder/docker-compose.yaml", compose));
  Start(S3Config());
  WriteRecipe("com.example.MyDockerComposeComponent", "1.0.0", kManager + R"(Manifests:
  - Platform:
      os: all
    Lifecycle:
      Run: docker-compose -p )" + tag_ + R"( -f {artifacts:path}/docker-compose.yaml up
    Artifacts:
      - URI: "docker:)" + web + R"("
      - URI: "docker:)" + db + R"("
      - URI: "s3://)" + bucket.name() + R"(/folder/docker-compose.yaml"
)");
  auto d = Deploy({"com.example.MyDockerComposeComponent=1.0.0"});
  ASSERT_TRUE(Succeeded(d)) << d.Describe() << "\n" << n().Log();
  ASSERT_TRUE(n().WaitLog("com.example.MyDockerComposeComponent", "web-service-up", 60000ms))
      << n().Log("com.example.MyDockerComposeComponent");
  ASSERT_TRUE(n().WaitLog("com.example.MyDockerComposeComponent", "db-service-up", 30000ms))
      << n().Log("com.example.MyDockerComposeComponent");
  auto ours = Docker({"ps", "-aq", "--filter",
                      "label=lichen.component=com.example.MyDockerComposeComponent", "--filter",
                      "label=com.docker.compose.project=" + tag_});
  EXPECT_EQ(std::count(ours.out.begin(), ours.out.end(), '\n') + (ours.out.empty() ? 0 : 1), 2)
      << ours.out;

  auto removed = Deploy({}, {"--remove", "com.example.MyDockerComposeComponent"});
  ASSERT_TRUE(Succeeded(removed)) << removed.Describe();
  EXPECT_TRUE(WaitFor(
      [&] {
        return Docker({"ps", "-aq", "--filter", "label=com.docker.compose.project=" + tag_})
            .out.empty();
      },
      30000ms))
      << n().Log();
  // And the project's network, as `docker-compose down` would.
  EXPECT_TRUE(WaitFor(
      [&] {
        return Docker({"network", "ls", "-q", "--filter", "name=" + tag_ + "_default"})
            .out.empty();
      },
      30000ms))
      << n().Log();
  Bash("docker network rm " + tag_ + "_default >/dev/null 2>&1; true");
}

// Workflow 2: a private ECR image. GetAuthorizationToken goes to a local stand-in that
// checks the SigV4 signature (made with the runtime's credentials) and hands out the
// htpasswd registry's login; the registry answers under an ECR-style name through the
// hosts entry scripts/services.sh adds (127.0.0.0/8 registries are plain HTTP to dockerd).
TEST_F(DockerE2E, APrivateEcrImageIsPulledWithGetAuthorizationToken) {
  const std::string ecr_host = "123456789012.dkr.ecr.us-west-2.amazonaws.com";
  ASSERT_NE(ReadFile("/etc/hosts").find(ecr_host), std::string::npos)
      << "no hosts entry for " << ecr_host << ": run scripts/services.sh start";
  const std::string pushed = Push(kPrivate, "ecr-app");
  const std::string image = ecr_host + ":5001/" + tag_ + "/ecr-app:1";
  ASSERT_FALSE(ImageExists(image));
  const std::string port_file = n().dir() + "/ecr.port";
  auto standin = RunningCommand::Start(
      {"/bin/bash", "-c",
       "exec node " + SourceDir() +
           "/tools/sigv4-oracle/ecr-standin.js --stay --access-key "
           "AKIDLICHENE2E --secret lichen-e2e-secret --region us-west-2 --user lichen --password "
           "lichen-secret --account 123456789012 >" +
           port_file + " 2>" + n().dir() + "/ecr.log"});
  ASSERT_TRUE(WaitFor([&] { return ReadFile(port_file).find('\n') != std::string::npos; }, 20000ms))
      << ReadFile(n().dir() + "/ecr.log");
  std::string port = ReadFile(port_file);
  port = port.substr(0, port.find('\n'));
  Start(
      "        credentials:\n          accessKeyId: AKIDLICHENE2E\n"
      "          secretAccessKey: lichen-e2e-secret\n"
      "        ecr:\n          endpoint: \"http://127.0.0.1:" +
      port +
      "\"\n"
      "        docker:\n          pullAttempts: 1\n");
  WriteRecipe("com.example.MyPrivateDockerComponent", "1.0.0", R"(ComponentDependencies:
  aws.greengrass.DockerApplicationManager:
    VersionRequirement: ~2.0.0
  aws.greengrass.TokenExchangeService:
    VersionRequirement: ~2.0.0
Manifests:
  - Platform:
      os: all
    Lifecycle:
      Run: docker run --rm )" + image + R"( echo private-ecr-image-ran
    Artifacts:
      - URI: "docker:)" + image + R"("
)");
  auto d = Deploy({"com.example.MyPrivateDockerComponent=1.0.0"});
  ASSERT_TRUE(Succeeded(d)) << d.Describe() << "\n"
                            << n().Log() << ReadFile(n().dir() + "/ecr.log");
  EXPECT_TRUE(n().WaitLog("com.example.MyPrivateDockerComponent", "private-ecr-image-ran", 30000ms))
      << n().Log("com.example.MyPrivateDockerComponent");
  EXPECT_NE(ReadFile(n().dir() + "/ecr.log").find("200"), std::string::npos)
      << ReadFile(n().dir() + "/ecr.log");
  (void)standin.Finish(0ms);
}

// A registry that answers 500 to everything: retried, then a clear failure naming it.
TEST_F(DockerE2E, ARegistryAnswering500IsRetriedThenFailsNamingIt) {
  const std::string port_file = n().dir() + "/broken-registry.port";
  auto broken = RunningCommand::Start(
      {"/usr/bin/python3", "-c",
       "import http.server, sys\n"
       "class H(http.server.BaseHTTPRequestHandler):\n"
       "  def answer(self):\n"
       "    self.send_response(500); self.send_header('Content-Length', '0'); self.end_headers()\n"
       "  do_GET = do_HEAD = do_POST = answer\n"
       "  def log_message(self, *a): pass\n"
       "s = http.server.HTTPServer(('127.0.0.1', 0), H)\n"
       "open(sys.argv[1], 'w').write(str(s.server_address[1]) + '\\n')\n"
       "s.serve_forever()\n",
       port_file});
  ASSERT_TRUE(
      WaitFor([&] { return ReadFile(port_file).find('\n') != std::string::npos; }, 20000ms));
  std::string port = ReadFile(port_file);
  port = port.substr(0, port.find('\n'));
  Start("        docker:\n          pullAttempts: 2\n");
  const std::string image = "127.0.0.1:" + port + "/" + tag_ + "/app:1";
  WriteRecipe("com.example.Broken", "1.0.0", kManager + R"(Manifests:
  - Lifecycle:
      Run: docker run --rm )" + image + R"( true
    Artifacts:
      - URI: docker:)" + image + "\n");
  auto d = Deploy({"com.example.Broken=1.0.0"});
  EXPECT_FALSE(Succeeded(d));
  EXPECT_NE(d.out.find("DOCKER_PULL_ERROR"), std::string::npos) << d.Describe();
  EXPECT_NE(d.out.find("127.0.0.1:" + port), std::string::npos) << d.Describe();
  EXPECT_TRUE(n().WaitLog("", "attempt 2 of 2")) << n().Log();  // retried
  (void)broken.Finish(0ms);
}

// A Compose file with errors: docker-compose fails, the component goes BROKEN, the
// deployment fails and rolls back, and the version that ran runs again.
TEST_F(DockerE2E, AComposeFileWithErrorsFailsTheDeploymentAndRollsBack) {
  S3Bucket bucket("lichen-e2e-" + tag_);
  ASSERT_TRUE(bucket.ok()) << "s3rver is not answering on " << kS3;
  const std::string good = n().dir() + "/good.yaml";
  const std::string bad = n().dir() + "/bad.yaml";
  WriteFile(good, "version: '3'\nservices:\n  app:\n    image: " + kBase +
                      "\n    command: sh -c 'echo compose-v1-up; exec sleep 600'\n");
  WriteFile(bad, "version: '3'\nservices:\n  app:\n    image: " + kBase +
                     "\n    no_such_option: [1, 2\n");
  ASSERT_TRUE(bucket.Put("v1/docker-compose.yaml", good));
  ASSERT_TRUE(bucket.Put("v2/docker-compose.yaml", bad));
  // docker-compose takes about a second to reject the file under the sanitizer build with
  // other tests running: the 1 s default window for a Run to count as up is too close.
  Start(S3Config() + "        runStableMs: 5000\n");
  for (const std::string v : {"1", "2"}) {
    WriteRecipe("com.example.Compose", v + ".0.0", kManager + R"(Manifests:
  - Lifecycle:
      Run: docker-compose -p )" + tag_ + R"( -f {artifacts:path}/docker-compose.yaml up
    Artifacts:
      - URI: "s3://)" + bucket.name() + "/v" + v + R"(/docker-compose.yaml"
)");
  }
  auto d = Deploy({"com.example.Compose=1.0.0"});
  ASSERT_TRUE(Succeeded(d)) << d.Describe() << "\n" << n().Log();
  ASSERT_TRUE(n().WaitLog("com.example.Compose", "compose-v1-up", 60000ms))
      << n().Log("com.example.Compose");

  auto bad_deploy =
      Deploy({"com.example.Compose=2.0.0"}, {"--failure-handling-policy", "ROLLBACK"});
  EXPECT_FALSE(Succeeded(bad_deploy)) << bad_deploy.Describe();
  EXPECT_TRUE(WaitFor(
      [&] {
        auto c = n().Component("com.example.Compose");
        return c && c->version == "1.0.0" && c->state == "RUNNING";
      },
      60000ms))
      << n().Log();
  // Version 1 printed again; once per run: Compose shows it, nothing else copies it.
  EXPECT_TRUE(WaitFor(
      [&] { return CountOccurrences(n().Log("com.example.Compose"), "compose-v1-up") >= 2; },
      30000ms))
      << n().Log("com.example.Compose");
  EXPECT_EQ(CountOccurrences(n().Log("com.example.Compose"), "compose-v1-up"), 2u)
      << n().Log("com.example.Compose");
  Bash("docker network rm " + tag_ + "_default >/dev/null 2>&1; true");
}


// --- a registry that hangs, a daemon that restarts ------------------------------------

// tests/docker/hanging_registry.py: forwards to the open registry, but holds every blob
// download while its hold file exists.
class HangingRegistry {
 public:
  explicit HangingRegistry(const std::string& dir)
      : port_file_(dir + "/hanging.port"),
        hold_(dir + "/hanging.hold"),
        hits_(dir + "/hanging.hits") {
    WriteFile(hold_, "");
    proc_ = RunningCommand::Start({"/usr/bin/python3",
                                   SourceDir() + "/tests/docker/hanging_registry.py", port_file_,
                                   kOpen, hold_, hits_});
    if (WaitFor([&] { return ReadFile(port_file_).find('\n') != std::string::npos; }, 20000ms)) {
      port_ = ReadFile(port_file_);
      port_ = port_.substr(0, port_.find('\n'));
    }
  }
  ~HangingRegistry() { (void)proc_.Finish(0ms); }
  // "127.0.0.1:PORT", or empty when it did not start.
  std::string address() const { return port_.empty() ? "" : "127.0.0.1:" + port_; }
  // `image` of the open registry, as this one serves it.
  std::string Serving(const std::string& image) const {
    return address() + image.substr(kOpen.size());
  }
  // A blob download is being held.
  bool Holding() const { return !ReadFile(hits_).empty(); }
  void Release() { fs::remove(hold_); }

 private:
  std::string port_file_, hold_, hits_, port_;
  RunningCommand proc_;
};

// A dockerd of the test's own (data, exec root and socket in a scratch folder, its own
// bridge, no iptables), so that a test can stop and restart it while the shared daemon
// serves the tests running in parallel. Not `--bridge=none`: with it dockerd deletes the
// docker0 interface, the shared daemon's bridge, at start.
class PrivateDockerd {
 public:
  PrivateDockerd() {
    char tmpl[] = "/tmp/lichen-dockerd-XXXXXX";
    if (::mkdtemp(tmpl) != nullptr) dir_ = tmpl;
    socket_ = dir_ + "/docker.sock";
    static int made = 0;
    const int pid = static_cast<int>(::getpid());
    bridge_ = "ldd" + std::to_string(pid) + "-" + std::to_string(++made % 10);  // <= 15 chars
    // A /24 no other bridge routes (two tests may run at once), from 10.213.0.0/16.
    bridge_ok_ = Bash("ip link add name " + bridge_ +
                      " type bridge || exit 1; for k in $(seq 0 249); do x=$(( (" +
                      std::to_string(pid) +
                      " + k) % 250 )); [ -z \"$(ip -4 route show 10.213.$x.0/24)\" ] || continue; "
                      "ip addr add 10.213.$x.1/24 dev " + bridge_ + " && ip link set " + bridge_ +
                      " up && exit 0; done; exit 1")
                     .exit_code == 0;
  }
  ~PrivateDockerd() {
    Stop();
    // A daemon that had to be killed leaves its overlay mounts behind.
    Bash("grep -o ' " + dir_ + "/[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l; rm -rf " +
         dir_ + "; ip link del " + bridge_ + " 2>/dev/null; true");
  }
  const std::string& socket() const { return socket_; }

  bool Start() {
    if (!bridge_ok_) return false;
    // Its log goes to a file: nobody drains a pipe while it runs.
    daemon_ = RunningCommand::Start(
        {"/bin/bash", "-c",
         "exec dockerd --data-root " + dir_ + "/data --exec-root " + dir_ + "/exec --pidfile " +
             dir_ + "/dockerd.pid -H unix://" + socket_ + " --bridge " + bridge_ +
             " --iptables=false --ip6tables=false --shutdown-timeout 2 >>" + dir_ +
             "/dockerd.log 2>&1"});
    return WaitFor([&] { return Ping(); }, 60000ms, 50ms);
  }
  // SIGTERM, as a service manager restarting it does; bounded.
  void Stop() {
    if (daemon_.pid() <= 0) return;
    ::kill(daemon_.pid(), SIGTERM);
    (void)daemon_.Finish(30000ms);
  }
  bool Ping() const {
    return RunCommand(
               {"/usr/bin/curl", "-s", "-m", "2", "--unix-socket", socket_, "http://d/_ping"},
               5000ms)
               .out == "OK";
  }
  CommandResult Cli(std::vector<std::string> args) const {
    args.insert(args.begin(), {"-H", "unix://" + socket_});
    return Docker(args);
  }
  std::string Log() const { return ReadFile(dir_ + "/dockerd.log"); }

 private:
  std::string dir_, socket_, bridge_;
  bool bridge_ok_ = false;
  RunningCommand daemon_;
};

// A registry that accepts the connection and then sends nothing: dockerd would wait for
// ever. The pull is abandoned after lichen.docker.pullStallSeconds, retried, and the
// deployment fails naming the stall; the version running before keeps running. While the
// pull hangs, the deployment's status says where it stands. (A daemon of its own: the
// shared one has the test image's layers already, and would not ask for them.)
TEST_F(DockerE2E, ARegistryThatHangsFailsThePullAndTheRunningVersionStays) {
  PrivateDockerd daemon;
  ASSERT_TRUE(daemon.Start()) << daemon.Log();
  HangingRegistry registry(n().dir());
  ASSERT_FALSE(registry.address().empty()) << "the hanging registry did not start";
  const std::string held = registry.Serving(Push(kOpen, "hang"));
  Start("        docker:\n          socket: " + daemon.socket() +
        "\n          pullAttempts: 2\n          pullStallSeconds: 3\n");
  WriteRecipe("com.example.Hang", "1.0.0", R"(Manifests:
  - Lifecycle:
      Run: "echo v1-up; exec sleep 600"
)");
  WriteDockerRunRecipe("com.example.Hang", "2.0.0", "", held, "true");
  auto d1 = Deploy({"com.example.Hang=1.0.0"});
  ASSERT_TRUE(Succeeded(d1)) << d1.Describe() << "\n" << n().Log();

  const std::string id = Submit("com.example.Hang=2.0.0");
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(WaitFor([&] { return registry.Holding(); }, 30000ms)) << n().Log();
  std::string progress;
  EXPECT_TRUE(WaitFor(
      [&] {
        progress = n().DeploymentStatus(id).value("progress", "");
        return progress.find("docker:" + held + " pulling") != std::string::npos;
      },
      10000ms))
      << "progress: " << progress << "\n" << n().Log();
  auto status = n().Cli({"deployment", "status", "-i", id});
  EXPECT_NE(status.out.find("Progress: docker:" + held), std::string::npos) << status.Describe();

  auto row = n().WaitDeployment(id, 60000ms);
  ASSERT_TRUE(row.has_value()) << n().Log();
  EXPECT_EQ(row->status, "FAILED");
  const std::string described = n().Cli({"deployment", "status", "-i", id}).out;
  EXPECT_NE(described.find("DOCKER_PULL_ERROR"), std::string::npos) << described;
  EXPECT_NE(described.find("reported nothing for 3 s"), std::string::npos) << described;
  EXPECT_TRUE(n().WaitLog("", "attempt 2 of 2")) << n().Log();
  auto c = n().Component("com.example.Hang");
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->version, "1.0.0");
  EXPECT_EQ(c->state, "RUNNING");
  registry.Release();
  (void)n().Stop();  // before its daemon goes
}

// The daemon restarts while it pulls for a deployment: the broken transfer is retried
// once the daemon is back, and the deployment succeeds.
TEST_F(DockerE2E, ADaemonRestartedInTheMiddleOfAPullIsRetried) {
  PrivateDockerd daemon;
  ASSERT_TRUE(daemon.Start()) << daemon.Log();
  HangingRegistry registry(n().dir());
  ASSERT_FALSE(registry.address().empty()) << "the hanging registry did not start";
  const std::string held = registry.Serving(Push(kOpen, "midpull"));
  Start("        docker:\n          socket: " + daemon.socket() + "\n");
  WriteDockerRunRecipe("com.example.MidPull", "1.0.0", "", held, "echo pulled-after-restart");
  const std::string id = Submit("com.example.MidPull=1.0.0");
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(WaitFor([&] { return registry.Holding(); }, 30000ms)) << n().Log();

  daemon.Stop();
  ASSERT_TRUE(daemon.Start()) << daemon.Log();
  registry.Release();
  auto row = n().WaitDeployment(id, 90000ms);
  ASSERT_TRUE(row.has_value()) << n().Log();
  EXPECT_EQ(row->status, "SUCCEEDED") << n().Log();
  EXPECT_TRUE(n().WaitLog("", "retrying in")) << n().Log();
  EXPECT_TRUE(n().WaitLog("com.example.MidPull", "pulled-after-restart", 30000ms))
      << n().Log("com.example.MidPull") << n().Log();
  (void)n().Stop();  // before its daemon goes
}

// The nucleus is stopped while a pull hangs: the pull is cancelled, so the stop is quick
// (not held by the pull's stall bound and retries), and the deployment, prepared again at
// the next start, succeeds once the registry answers.
TEST_F(DockerE2E, StoppingTheNucleusCancelsAPullAndTheDeploymentResumesAtTheNextStart) {
  PrivateDockerd daemon;
  ASSERT_TRUE(daemon.Start()) << daemon.Log();
  HangingRegistry registry(n().dir());
  ASSERT_FALSE(registry.address().empty()) << "the hanging registry did not start";
  const std::string held = registry.Serving(Push(kOpen, "cancelled"));
  // Without the cancel, a stop would wait 5 attempts of 60 s.
  Start("        docker:\n          socket: " + daemon.socket() + "\n");
  WriteDockerRunRecipe("com.example.Cancelled", "1.0.0", "", held, "echo ran-after-resume");
  const std::string id = Submit("com.example.Cancelled=1.0.0");
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(WaitFor([&] { return registry.Holding(); }, 30000ms)) << n().Log();

  auto code = n().Stop(20000ms);
  ASSERT_TRUE(code.has_value()) << "the nucleus did not stop within 20 s\n" << n().Log();
  EXPECT_EQ(*code, 0) << n().Log();
  EXPECT_TRUE(n().WaitLog("", "cancelled")) << n().Log();

  registry.Release();
  ASSERT_TRUE(n().Start());
  auto row = n().WaitDeployment(id, 90000ms);
  ASSERT_TRUE(row.has_value()) << n().Log();
  EXPECT_EQ(row->status, "SUCCEEDED") << n().Log();
  EXPECT_TRUE(n().WaitLog("com.example.Cancelled", "ran-after-resume", 30000ms))
      << n().Log("com.example.Cancelled");
  (void)n().Stop();  // before its daemon goes
}

// The daemon restarts under a running container component: its `docker run` fails, and
// the restart waits for the daemon (instead of failing three times and going BROKEN),
// removes what the last run left (the --rm container may survive a daemon shutdown and
// its name would clash), and the component runs again.
TEST_F(DockerE2E, ADaemonRestartedUnderARunningContainerBringsTheComponentBack) {
  PrivateDockerd daemon;
  ASSERT_TRUE(daemon.Start()) << daemon.Log();
  const std::string image = Push(kOpen, "underrun");
  const std::string container = Name("underrun");
  Start("        docker:\n          socket: " + daemon.socket() + "\n");
  WriteDockerRunRecipe("com.example.UnderRun", "1.0.0", "--stop-timeout 1 --name " + container,
                       image, "sh -c 'echo container-up; exec sleep 600'");
  auto d = Deploy({"com.example.UnderRun=1.0.0"});
  ASSERT_TRUE(Succeeded(d)) << d.Describe() << "\n" << n().Log();
  ASSERT_TRUE(n().WaitLog("com.example.UnderRun", "container-up", 30000ms))
      << n().Log("com.example.UnderRun");

  daemon.Stop();
  // The component's Run failed; its next start waits for the daemon.
  ASSERT_TRUE(n().WaitLog("", "the start waits up to", 30000ms)) << n().Log();
  auto waiting = n().Component("com.example.UnderRun");
  ASSERT_TRUE(waiting.has_value());
  EXPECT_NE(waiting->state, "BROKEN") << n().Log();
  ASSERT_TRUE(daemon.Start()) << daemon.Log();
  EXPECT_TRUE(WaitFor(
      [&] { return CountOccurrences(n().Log("com.example.UnderRun"), "container-up") >= 2; },
      60000ms))
      << n().Log("com.example.UnderRun") << n().Log();
  EXPECT_TRUE(WaitFor(
      [&] {
        auto c = n().Component("com.example.UnderRun");
        return c && c->state == "RUNNING";
      },
      30000ms))
      << n().Log();
  auto running =
      daemon.Cli({"ps", "-q", "--filter", "label=lichen.component=com.example.UnderRun"});
  EXPECT_EQ(running.exit_code, 0) << running.Describe();
  EXPECT_FALSE(running.out.empty()) << "no container of the component runs\n" << n().Log();
  EXPECT_EQ(running.out.find('\n'), std::string::npos) << "more than one: " << running.out;
  (void)n().Stop();  // before its daemon goes
}

}  // namespace
}  // namespace lichen::harness
