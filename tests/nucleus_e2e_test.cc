// The daemon end to end, driven by the `lichen` CLI the way a Greengrass user types it:
// each test starts `lichen nucleus` on its own temporary root and checks one behaviour.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "nucleus_harness.h"

namespace lichen::harness {
namespace {

const std::string kSvc = "lichen.e2e.Svc";
const std::string kHello = "com.example.HelloWorld";
const std::string kGreeter = "com.example.Greeter";

std::string Recipes() { return SourceDir() + "/tests/data/nucleus/e2e/recipes"; }
std::string HelloRecipes() { return SourceDir() + "/examples/hello/recipes"; }
std::string HelloArtifacts() { return SourceDir() + "/examples/hello/artifacts"; }

mode_t ModeOf(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? (st.st_mode & 07777) : 0;
}
uid_t OwnerOf(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? st.st_uid : static_cast<uid_t>(-1);
}

class NucleusE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "the daemon tests run as root";
    n_ = std::make_unique<Nucleus>(Options());
  }
  virtual NucleusOptions Options() { return {}; }

  Nucleus& n() { return *n_; }

  // `deployment create ... --wait`: the CLI's result and the final status it printed.
  struct Deployed {
    CommandResult cli;
    DeploymentRow row;
  };
  Deployed Deploy(std::vector<std::string> args) {
    std::vector<std::string> full = {"deployment", "create"};
    full.insert(full.end(), args.begin(), args.end());
    full.insert(full.end(), {"--wait", "--timeout", "40"});
    Deployed d;
    d.cli = n().Cli(full, 50000ms);
    auto rows = ParseDeployments(d.cli.out);
    if (!rows.empty()) d.row = rows.back();
    return d;
  }
  // Deploys and requires success.
  void DeployOk(std::vector<std::string> args) {
    auto d = Deploy(std::move(args));
    ASSERT_EQ(d.cli.exit_code, 0) << d.cli.Describe() << "\ngreengrass.log:\n" << n().Log();
    ASSERT_EQ(d.row.status, "SUCCEEDED") << d.cli.Describe();
    ASSERT_EQ(d.row.detailed, "SUCCESSFUL") << d.cli.Describe();
  }

  // From greengrass.log: `dependency` reached RUNNING before `dependent` left INSTALLED
  // (waits, bounded, for the dependent to be RUNNING first).
  void ExpectRunningBeforeStarting(const std::string& dependency, const std::string& dependent) {
    const auto running = [](const std::string& name) {
      return "serviceName=" + name + ", currentState=STARTING, newState=RUNNING";
    };
    std::string log;
    ASSERT_TRUE(WaitFor(
        [&] { return (log = n().Log()).find(running(dependent)) != std::string::npos; }, 5000ms))
        << log;
    const auto dependency_running = log.find(running(dependency));
    const auto dependent_starting =
        log.find("serviceName=" + dependent + ", currentState=INSTALLED, newState=STARTING");
    ASSERT_NE(dependency_running, std::string::npos) << log;
    ASSERT_NE(dependent_starting, std::string::npos) << log;
    EXPECT_LT(dependency_running, dependent_starting) << log;
  }

  // The one Run process (`sleep 600`) of Svc.
  std::optional<ProcInfo> SvcProcess() { return n().ProcessOf(kSvc, "sleep 600"); }

  // Deploys Svc 1.0.0 and returns its Run process: the baseline a bad deployment must
  // leave alone.
  ProcInfo DeployBaseline() {
    DeployOk({"-r", Recipes(), "-m", kSvc + "=1.0.0"});
    std::optional<ProcInfo> p;
    EXPECT_TRUE(WaitFor([&] { return (p = SvcProcess()).has_value(); }, 5000ms));
    return p.value_or(ProcInfo{});
  }

  // A deployment that must fail before changing anything, with `code` in its error stack
  // and every `needle` in its failure cause; the baseline keeps running untouched.
  void ExpectRejected(const ProcInfo& baseline, std::vector<std::string> args,
                      const std::string& code, const std::vector<std::string>& needles) {
    auto d = Deploy(std::move(args));
    EXPECT_NE(d.cli.exit_code, 0) << d.cli.Describe();
    EXPECT_EQ(d.row.status, "FAILED") << d.cli.Describe();
    EXPECT_EQ(d.row.detailed, "FAILED_NO_STATE_CHANGE") << d.cli.Describe();
    EXPECT_NE(d.row.error_stack.find(code), std::string::npos) << d.cli.Describe();
    for (const auto& needle : needles) {
      EXPECT_NE(d.row.cause.find(needle), std::string::npos)
          << "the cause does not name " << needle << "\n"
          << d.cli.Describe();
    }
    // The previous component still runs, the same process, alone.
    auto rows = n().Components();
    EXPECT_EQ(rows.size(), 1u) << n().Cli({"component", "list"}).out;
    ASSERT_TRUE(rows.count(kSvc));
    EXPECT_EQ(rows[kSvc].state, "RUNNING");
    EXPECT_EQ(rows[kSvc].version, "1.0.0");
    auto p = SvcProcess();
    ASSERT_TRUE(p.has_value()) << DescribeProcesses(n().Processes());
    EXPECT_EQ(p->pid, baseline.pid);
    EXPECT_TRUE(StillRunning(baseline));
  }

  std::unique_ptr<Nucleus> n_;
};

class NucleusE2EStarted : public NucleusE2E {
 protected:
  void SetUp() override {
    NucleusE2E::SetUp();
    if (IsSkipped()) return;
    ASSERT_TRUE(n().Start());
  }
};

// --- deploying the examples ------------------------------------------------------------

TEST_F(NucleusE2E, HelloExampleRunsBothComponents) {
  // With the example's own runtime configuration, as its README runs it.
  n().WriteConfig(ReadFile(SourceDir() + "/examples/hello/config.yaml"));
  ASSERT_TRUE(n().Start());
  DeployOk({"-r", HelloRecipes(), "-a", HelloArtifacts(), "-m", kHello + "=1.0.0", "-m",
            kGreeter + "=1.0.0"});

  auto rows = n().Components();
  ASSERT_EQ(rows.size(), 2u) << n().Cli({"component", "list"}).out;
  EXPECT_EQ(rows[kHello].state, "RUNNING");
  EXPECT_EQ(rows[kHello].version, "1.0.0");
  EXPECT_EQ(rows[kGreeter].state, "RUNNING");
  EXPECT_EQ(rows[kGreeter].version, "1.0.0");

  EXPECT_TRUE(n().WaitLog(kHello, "Hello, world! (from LichenDemoThing)")) << n().Log(kHello);
  const std::string greeting = n().WorkDir(kGreeter) + "/greeting.txt";
  EXPECT_EQ(ReadFile(greeting), "Hi, Ada, Linus! HelloWorld is running next to me.\n");
  EXPECT_EQ(OwnerOf(greeting), UidOf("ggc_user"));
  EXPECT_TRUE(n().WaitLog(kGreeter, "Hi, Ada, Linus! HelloWorld is running next to me."));

  // Artifacts carry the recipe's Permission (Read/Execute: OWNER) and belong to the user.
  const std::string hello_sh = n().root() + "/packages/artifacts/" + kHello + "/1.0.0/hello.sh";
  const std::string greet_sh = n().root() + "/packages/artifacts/" + kGreeter + "/1.0.0/greet.sh";
  EXPECT_EQ(ModeOf(hello_sh), 0500u) << hello_sh;
  EXPECT_EQ(ModeOf(greet_sh), 0400u) << greet_sh;
  EXPECT_EQ(OwnerOf(hello_sh), UidOf("ggc_user"));
  EXPECT_EQ(OwnerOf(greet_sh), UidOf("ggc_user"));
  // HelloWorld's Run process runs as ggc_user in its work folder.
  auto p = n().ProcessOf(kHello, "hello.sh");
  ASSERT_TRUE(p.has_value()) << DescribeProcesses(n().Processes());
  EXPECT_EQ(p->uid, UidOf("ggc_user"));
}

TEST_F(NucleusE2EStarted, DependentStartsOnlyAfterItsHardDependencyRuns) {
  DeployOk({"-r", HelloRecipes(), "-a", HelloArtifacts(), "-m", kHello + "=1.0.0", "-m",
            kGreeter + "=1.0.0"});
  ExpectRunningBeforeStarting(kHello, kGreeter);
}

// A dependent without an Install step that sorts before its dependency once started in
// the same pass as it, before the dependency existed.
TEST_F(NucleusE2EStarted, ADependentWithoutInstallWaitsForADependencyDeployedWithIt) {
  DeployOk({"-r", Recipes(), "-m", "lichen.e2e.AaDependent=1.0.0"});
  ExpectRunningBeforeStarting("lichen.e2e.ZzDependency", "lichen.e2e.AaDependent");
}

// --- configuration updates and removal -------------------------------------------------

TEST_F(NucleusE2EStarted, UpdateConfigMergeThenResetRestartsTheRunProcess) {
  DeployOk({"-r", HelloRecipes(), "-a", HelloArtifacts(), "-m", kHello + "=1.0.0"});
  std::optional<ProcInfo> first, second, third;
  ASSERT_TRUE(
      WaitFor([&] { return (first = n().ProcessOf(kHello, "hello.sh")).has_value(); }, 5000ms));
  EXPECT_NE(first->cmdline.find("world"), std::string::npos) << first->cmdline;

  DeployOk({"-c", R"({")" + kHello + R"(":{"MERGE":{"Message":"Lichen"}}})"});
  auto details = n().Component(kHello);
  ASSERT_TRUE(details.has_value());
  EXPECT_EQ(details->configuration.value("Message", ""), "Lichen") << details->configuration;
  EXPECT_EQ(details->configuration.value("IntervalSeconds", 0), 5) << details->configuration;
  EXPECT_EQ(details->state, "RUNNING");
  ASSERT_TRUE(WaitFor(
      [&] {
        second = n().ProcessOf(kHello, "hello.sh");
        return second && second->pid != first->pid;
      },
      5000ms))
      << DescribeProcesses(n().Processes());
  EXPECT_NE(second->cmdline.find("Lichen"), std::string::npos) << second->cmdline;
  EXPECT_FALSE(StillRunning(*first));
  EXPECT_TRUE(n().WaitLog(kHello, "Hello, Lichen!"));

  DeployOk({"-c", R"({")" + kHello + R"(":{"RESET":["/Message"]}})"});
  details = n().Component(kHello);
  ASSERT_TRUE(details.has_value());
  EXPECT_EQ(details->configuration.value("Message", ""), "world") << details->configuration;
  ASSERT_TRUE(WaitFor(
      [&] {
        third = n().ProcessOf(kHello, "hello.sh");
        return third && third->pid != second->pid;
      },
      5000ms))
      << DescribeProcesses(n().Processes());
  EXPECT_NE(third->cmdline.find("world"), std::string::npos) << third->cmdline;
  EXPECT_FALSE(StillRunning(*second));
  EXPECT_TRUE(WaitFor(
      [&] {
        const std::string log = n().Log(kHello);
        return log.rfind("Hello, world!") != std::string::npos &&
               log.rfind("Hello, world!") > log.rfind("Hello, Lichen!");
      },
      5000ms))
      << n().Log(kHello);
}

TEST_F(NucleusE2EStarted, RemoveStopsTheComponentAndItsProcesses) {
  DeployOk({"-r", HelloRecipes(), "-a", HelloArtifacts(), "-m", kHello + "=1.0.0"});
  DeployOk({"-r", Recipes(), "-m", kSvc + "=1.0.0"});
  std::optional<ProcInfo> hello;
  ASSERT_TRUE(
      WaitFor([&] { return (hello = n().ProcessOf(kHello, "hello.sh")).has_value(); }, 5000ms));
  const auto before = n().ProcessesOf(kHello);

  DeployOk({"--remove", kHello});
  auto rows = n().Components();
  EXPECT_FALSE(rows.count(kHello)) << n().Cli({"component", "list"}).out;
  EXPECT_TRUE(rows.count(kSvc));
  EXPECT_TRUE(n().ProcessesOf(kHello).empty()) << DescribeProcesses(n().ProcessesOf(kHello));
  for (const auto& p : before) EXPECT_FALSE(StillRunning(p)) << DescribeProcesses({p});
  auto details = n().Cli({"component", "details", "-n", kHello});
  EXPECT_NE(details.exit_code, 0) << details.Describe();
  EXPECT_TRUE(SvcProcess().has_value());
}

// --- failures and failure handling -----------------------------------------------------

TEST_F(NucleusE2EStarted, RunThatKeepsFailingGoesBrokenAndFailsTheDeployment) {
  const std::string name = "lichen.e2e.RunCrasher";
  auto d = Deploy({"-r", Recipes(), "-m", name + "=1.0.0"});
  EXPECT_NE(d.cli.exit_code, 0) << d.cli.Describe();
  EXPECT_EQ(d.row.status, "FAILED") << d.cli.Describe();
  EXPECT_EQ(d.row.detailed, "FAILED_ROLLBACK_NOT_REQUESTED") << d.cli.Describe();
  EXPECT_NE(d.row.error_stack.find("COMPONENT_BROKEN"), std::string::npos) << d.cli.Describe();
  EXPECT_NE(d.row.cause.find(name), std::string::npos) << d.cli.Describe();
  EXPECT_TRUE(n().WaitState(name, "BROKEN"));
  EXPECT_TRUE(WaitFor([&] { return CountOccurrences(n().Log(name), "run crashing") == 3; }, 3000ms))
      << n().Log(name);
}

// A Run that failed during the deployment must then outlive its longest failed run twice
// over: here attempt 1 dies after 3 s (inside the 4 s window), attempt 2 at once, attempt
// 3 after 5 s (past the window, inside twice 3 s) and the component is BROKEN. Counting
// attempt 3 as up at 4 s (the plain window, or a rule that kept only attempt 2's 0 s)
// would report success for a component about to be BROKEN.
TEST_F(NucleusE2E, ARunThatFailedMustOutliveItsFailedRunBeforeTheDeploymentSucceeds) {
  n().WriteConfig(n().DefaultConfig() + "        runStableMs: 4000\n");
  ASSERT_TRUE(n().Start());
  const std::string name = "lichen.e2e.SlowCrasher";
  auto d = Deploy({"-r", Recipes(), "-m", name + "=1.0.0"});
  EXPECT_EQ(d.row.status, "FAILED") << d.cli.Describe() << "\n" << n().Log();
  EXPECT_NE(d.row.error_stack.find("COMPONENT_BROKEN"), std::string::npos) << d.cli.Describe();
  EXPECT_TRUE(n().WaitLog(name, "slow crash attempt 3")) << n().Log(name);
  EXPECT_EQ(n().ComponentState(name), "BROKEN");
}

TEST_F(NucleusE2EStarted, StartupThatKeepsFailingGoesBrokenAndFailsTheDeployment) {
  const std::string name = "lichen.e2e.StartupCrasher";
  auto d = Deploy({"-r", Recipes(), "-m", name + "=1.0.0"});
  EXPECT_NE(d.cli.exit_code, 0) << d.cli.Describe();
  EXPECT_EQ(d.row.status, "FAILED") << d.cli.Describe();
  EXPECT_EQ(d.row.detailed, "FAILED_ROLLBACK_NOT_REQUESTED") << d.cli.Describe();
  EXPECT_NE(d.row.error_stack.find("COMPONENT_BROKEN"), std::string::npos) << d.cli.Describe();
  EXPECT_NE(d.row.cause.find(name), std::string::npos) << d.cli.Describe();
  EXPECT_EQ(n().ComponentState(name), "BROKEN");
  EXPECT_TRUE(
      WaitFor([&] { return CountOccurrences(n().Log(name), "startup crashing") == 3; }, 3000ms))
      << n().Log(name);
}

TEST_F(NucleusE2EStarted, RollbackRestoresThePreviousVersionAndConfiguration) {
  DeployOk({"-r", Recipes(), "-m", kSvc + "=1.0.0", "-c",
            R"({")" + kSvc + R"(":{"MERGE":{"Message":"first"}}})"});
  ASSERT_TRUE(n().WaitLog(kSvc, "svc version=1.0.0 message=first"));

  auto d = Deploy({"-r", Recipes(), "-m", kSvc + "=2.0.0", "-c",
                   R"({")" + kSvc + R"(":{"MERGE":{"Message":"second"}}})",
                   "--failure-handling-policy", "ROLLBACK"});
  EXPECT_NE(d.cli.exit_code, 0) << d.cli.Describe();
  EXPECT_EQ(d.row.status, "FAILED") << d.cli.Describe();
  EXPECT_EQ(d.row.detailed, "FAILED_ROLLBACK_COMPLETE") << d.cli.Describe();
  EXPECT_NE(d.row.error_stack.find("COMPONENT_BROKEN"), std::string::npos) << d.cli.Describe();

  auto details = n().Component(kSvc);
  ASSERT_TRUE(details.has_value());
  EXPECT_EQ(details->version, "1.0.0");
  EXPECT_EQ(details->state, "RUNNING");
  EXPECT_EQ(details->configuration, Json({{"Message", "first"}})) << details->configuration;
  // The 1.0.0 Run runs again, with the old configuration, once.
  EXPECT_TRUE(WaitFor(
      [&] {
        const std::string log = n().Log(kSvc);
        return log.rfind("svc version=1.0.0 message=first") > log.rfind("svc 2.0.0 install fails");
      },
      5000ms))
      << n().Log(kSvc);
  EXPECT_TRUE(WaitFor([&] { return n().ProcessesOf(kSvc).size() == 1; }, 5000ms))
      << DescribeProcesses(n().Processes());
}

TEST_F(NucleusE2EStarted, DoNothingLeavesTheFailedVersionInPlace) {
  DeployOk({"-r", Recipes(), "-m", kSvc + "=1.0.0", "-c",
            R"({")" + kSvc + R"(":{"MERGE":{"Message":"first"}}})"});
  auto d = Deploy({"-r", Recipes(), "-m", kSvc + "=2.0.0", "-c",
                   R"({")" + kSvc + R"(":{"MERGE":{"Message":"second"}}})",
                   "--failure-handling-policy", "DO_NOTHING"});
  EXPECT_NE(d.cli.exit_code, 0) << d.cli.Describe();
  EXPECT_EQ(d.row.status, "FAILED") << d.cli.Describe();
  EXPECT_EQ(d.row.detailed, "FAILED_ROLLBACK_NOT_REQUESTED") << d.cli.Describe();
  EXPECT_NE(d.row.error_stack.find("COMPONENT_BROKEN"), std::string::npos) << d.cli.Describe();
  auto details = n().Component(kSvc);
  ASSERT_TRUE(details.has_value());
  EXPECT_EQ(details->version, "2.0.0");
  EXPECT_EQ(details->state, "BROKEN");
  EXPECT_EQ(details->configuration.value("Message", ""), "second") << details->configuration;
  EXPECT_TRUE(n().ProcessesOf(kSvc).empty()) << DescribeProcesses(n().Processes());
}

// --- bad inputs: each fails with its code, names the culprit, changes nothing ----------

TEST_F(NucleusE2EStarted, InvalidRecipeIsRecipeParseError) {
  const ProcInfo baseline = DeployBaseline();
  const std::string dir = n().dir() + "/bad-recipe";
  const std::string file = dir + "/lichen.e2e.Bad-1.0.0.yaml";
  WriteFile(file,
            "RecipeFormatVersion: \"2020-01-25\"\n"
            "ComponentName: lichen.e2e.Bad\n"
            "ComponentVersion: \"1.0.0\"\n"
            "Manifests:\n"
            "  - Platform:\n"
            "      os: linux\n"
            "    Lifecycle:\n"
            "      Run:\n"
            "        Script: \"echo hi\"\n"
            "        Timeout: \"soon\"\n");
  ExpectRejected(baseline, {"-r", dir, "-m", "lichen.e2e.Bad=1.0.0"}, "RECIPE_PARSE_ERROR",
                 {file, "Manifests[0].Lifecycle.Run.Timeout"});
}

TEST_F(NucleusE2EStarted, MissingArtifactIsLocalArtifactNotFound) {
  const ProcInfo baseline = DeployBaseline();
  const std::string recipes = n().dir() + "/missing/recipes";
  const std::string artifacts = n().dir() + "/missing/artifacts";
  fs::create_directories(artifacts);
  WriteFile(recipes + "/lichen.e2e.NeedsFile-1.0.0.yaml",
            "RecipeFormatVersion: \"2020-01-25\"\n"
            "ComponentName: lichen.e2e.NeedsFile\n"
            "ComponentVersion: \"1.0.0\"\n"
            "Manifests:\n"
            "  - Platform:\n"
            "      os: linux\n"
            "    Lifecycle:\n"
            "      Run: \"cat {artifacts:path}/missing.sh\"\n"
            "    Artifacts:\n"
            "      - URI: greengrass:missing.sh\n");
  ExpectRejected(baseline, {"-r", recipes, "-a", artifacts, "-m", "lichen.e2e.NeedsFile=1.0.0"},
                 "LOCAL_ARTIFACT_NOT_FOUND",
                 {"missing.sh", artifacts + "/lichen.e2e.NeedsFile/1.0.0/missing.sh"});
}

TEST_F(NucleusE2EStarted, DigestMismatchIsArtifactChecksumMismatch) {
  const ProcInfo baseline = DeployBaseline();
  const std::string recipes = n().dir() + "/digest/recipes";
  const std::string artifacts = n().dir() + "/digest/artifacts";
  WriteFile(artifacts + "/lichen.e2e.Digest/1.0.0/run.sh", "echo not what the recipe hashed\n");
  const std::string empty_sha256 = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
  WriteFile(recipes + "/lichen.e2e.Digest-1.0.0.yaml",
            "RecipeFormatVersion: \"2020-01-25\"\n"
            "ComponentName: lichen.e2e.Digest\n"
            "ComponentVersion: \"1.0.0\"\n"
            "Manifests:\n"
            "  - Platform:\n"
            "      os: linux\n"
            "    Lifecycle:\n"
            "      Run: \"sh {artifacts:path}/run.sh\"\n"
            "    Artifacts:\n"
            "      - URI: s3://bucket/digest/run.sh\n"
            "        Digest: \"" +
                empty_sha256 +
                "\"\n"
                "        Algorithm: SHA-256\n");
  ExpectRejected(baseline, {"-r", recipes, "-a", artifacts, "-m", "lichen.e2e.Digest=1.0.0"},
                 "ARTIFACT_CHECKSUM_MISMATCH", {"run.sh", empty_sha256});
}

TEST_F(NucleusE2EStarted, ZipWithParentEntryIsArtifactUnarchiveError) {
  const ProcInfo baseline = DeployBaseline();
  const std::string recipes = n().dir() + "/zip/recipes";
  const std::string artifacts = n().dir() + "/zip/artifacts";
  const std::string zip = artifacts + "/lichen.e2e.Zip/1.0.0/payload.zip";
  fs::create_directories(fs::path(zip).parent_path());
  auto made = RunCommand({"/bin/sh", "-c",
                          "python3 -c \"import sys, zipfile\n"
                          "with zipfile.ZipFile(sys.argv[1], 'w') as z:\n"
                          "    z.writestr('ok.txt', 'fine')\n"
                          "    z.writestr('../evil.txt', 'escaped')\n\" '" +
                              zip + "'"},
                         20000ms);
  if (made.exit_code != 0) GTEST_SKIP() << "cannot build a zip with python3: " << made.Describe();
  WriteFile(recipes + "/lichen.e2e.Zip-1.0.0.yaml",
            "RecipeFormatVersion: \"2020-01-25\"\n"
            "ComponentName: lichen.e2e.Zip\n"
            "ComponentVersion: \"1.0.0\"\n"
            "Manifests:\n"
            "  - Platform:\n"
            "      os: linux\n"
            "    Lifecycle:\n"
            "      Run: \"cat {artifacts:decompressedPath}/payload/ok.txt\"\n"
            "    Artifacts:\n"
            "      - URI: s3://bucket/zip/payload.zip\n"
            "        Unarchive: ZIP\n");
  ExpectRejected(baseline, {"-r", recipes, "-a", artifacts, "-m", "lichen.e2e.Zip=1.0.0"},
                 "ARTIFACT_UNARCHIVE_ERROR", {"payload.zip", "../evil.txt"});
  // Nothing was written outside the unarchive folder.
  const std::string unarchived = n().root() + "/packages/artifacts-unarchived/lichen.e2e.Zip";
  for (const std::string& p : {unarchived + "/1.0.0/evil.txt", unarchived + "/evil.txt",
                               unarchived + "/1.0.0/payload/../evil.txt"}) {
    EXPECT_FALSE(fs::exists(p)) << p;
  }
}

TEST_F(NucleusE2EStarted, UnknownComponentIsNoAvailableComponentVersion) {
  const ProcInfo baseline = DeployBaseline();
  ExpectRejected(baseline, {"-r", Recipes(), "-m", "lichen.e2e.Nope=1.0.0"},
                 "NO_AVAILABLE_COMPONENT_VERSION", {"lichen.e2e.Nope"});
}

TEST_F(NucleusE2EStarted, DependencyCycleIsRefused) {
  const ProcInfo baseline = DeployBaseline();
  const std::string dir = n().dir() + "/cycle";
  for (const auto& [self, other] : {std::pair{"A", "B"}, std::pair{"B", "A"}}) {
    WriteFile(dir + "/lichen.e2e.Cyc" + self + "-1.0.0.yaml",
              std::string("RecipeFormatVersion: \"2020-01-25\"\n") +
                  "ComponentName: lichen.e2e.Cyc" + self +
                  "\n"
                  "ComponentVersion: \"1.0.0\"\n"
                  "ComponentDependencies:\n"
                  "  lichen.e2e.Cyc" +
                  other +
                  ":\n"
                  "    VersionRequirement: \">=1.0.0\"\n"
                  "Manifests:\n"
                  "  - Platform:\n"
                  "      os: linux\n"
                  "    Lifecycle:\n"
                  "      Run: \"echo cycle\"\n");
  }
  ExpectRejected(baseline, {"-r", dir, "-m", "lichen.e2e.CycA=1.0.0"},
                 "COMPONENT_CIRCULAR_DEPENDENCY_ERROR", {"lichen.e2e.CycA", "lichen.e2e.CycB"});
}

TEST_F(NucleusE2EStarted, DockerArtifactWithoutDockerManagerIsRefused) {
  const ProcInfo baseline = DeployBaseline();
  const std::string dir = n().dir() + "/docker";
  WriteFile(dir + "/lichen.e2e.Docker-1.0.0.yaml",
            "RecipeFormatVersion: \"2020-01-25\"\n"
            "ComponentName: lichen.e2e.Docker\n"
            "ComponentVersion: \"1.0.0\"\n"
            "Manifests:\n"
            "  - Platform:\n"
            "      os: linux\n"
            "    Lifecycle:\n"
            "      Run: \"docker run --rm public.ecr.aws/docker/library/alpine:3.19 true\"\n"
            "    Artifacts:\n"
            "      - URI: docker:public.ecr.aws/docker/library/alpine:3.19\n");
  ExpectRejected(baseline, {"-r", dir, "-m", "lichen.e2e.Docker=1.0.0"},
                 "MISSING_DOCKER_APPLICATION_MANAGER",
                 {"lichen.e2e.Docker", "aws.greengrass.DockerApplicationManager"});
}

// --- component restart / stop ----------------------------------------------------------

TEST_F(NucleusE2EStarted, ComponentRestartReplacesTheProcess) {
  const ProcInfo first = DeployBaseline();
  auto r = n().Cli({"component", "restart", "-n", kSvc});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  std::optional<ProcInfo> second;
  ASSERT_TRUE(WaitFor(
      [&] {
        second = SvcProcess();
        return second && second->pid != first.pid && n().ComponentState(kSvc) == "RUNNING";
      },
      10000ms))
      << DescribeProcesses(n().Processes());
  EXPECT_FALSE(StillRunning(first));
  EXPECT_EQ(n().ProcessesOf(kSvc).size(), 1u);
  EXPECT_TRUE(WaitFor(
      [&] { return CountOccurrences(n().Log(kSvc), "svc version=1.0.0 message=svc-default") == 2; },
      5000ms))
      << n().Log(kSvc);
}

TEST_F(NucleusE2EStarted, ComponentStopEndsTheProcess) {
  const ProcInfo first = DeployBaseline();
  auto r = n().Cli({"component", "stop", "-n", kSvc});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_TRUE(n().WaitState(kSvc, "FINISHED", 10000ms)) << n().ComponentState(kSvc);
  EXPECT_TRUE(WaitFor([&] { return n().ProcessesOf(kSvc).empty(); }, 5000ms))
      << DescribeProcesses(n().Processes());
  EXPECT_FALSE(StillRunning(first));
  // Still deployed, just stopped.
  auto rows = n().Components();
  ASSERT_TRUE(rows.count(kSvc));
  EXPECT_EQ(rows[kSvc].state, "FINISHED");
  // A stop of something not deployed is an error.
  auto missing = n().Cli({"component", "stop", "-n", "lichen.e2e.NotDeployed"});
  EXPECT_NE(missing.exit_code, 0) << missing.Describe();
}

// --- deployments: status and queue -----------------------------------------------------

TEST_F(NucleusE2EStarted, StatusOfAnUnknownDeploymentFails) {
  const std::string id = "00000000-0000-4000-8000-000000000000";
  auto r = n().Cli({"deployment", "status", "-i", id});
  EXPECT_NE(r.exit_code, 0) << r.Describe();
  EXPECT_NE(r.err.find(id), std::string::npos) << r.Describe();
  EXPECT_NE(r.err.find("no deployment"), std::string::npos) << r.Describe();
  EXPECT_TRUE(r.out.empty()) << r.Describe();
}

TEST_F(NucleusE2EStarted, QueuedDeploymentsFinishInSubmissionOrder) {
  std::vector<std::string> ids;
  for (const std::string value : {"q1", "q2", "q3"}) {
    auto r = n().Cli({"deployment", "create", "-r", Recipes(), "-m", kSvc + "=1.0.0", "-c",
                      R"({")" + kSvc + R"(":{"MERGE":{"Message":")" + value + R"("}}})"});
    ASSERT_EQ(r.exit_code, 0) << r.Describe();
    ids.push_back(SubmittedId(r.out));
    ASSERT_FALSE(ids.back().empty()) << r.Describe();
  }
  for (const auto& id : ids) {
    auto row = n().WaitDeployment(id);
    ASSERT_TRUE(row.has_value()) << id;
    EXPECT_EQ(row->status, "SUCCEEDED") << id;
  }
  // One at a time, in order: each starts after the previous one finished.
  ASSERT_TRUE(
      n().WaitLog("", "deployment-finished. deployment finished. {deploymentId=" + ids.back()));
  const std::string log = n().Log();
  size_t previous_finish = 0;
  for (const auto& id : ids) {
    const auto start = log.find("deployment-start. deployment started. {deploymentId=" + id);
    const auto finish = log.find("deployment-finished. deployment finished. {deploymentId=" + id);
    ASSERT_NE(start, std::string::npos) << id << "\n" << log;
    ASSERT_NE(finish, std::string::npos) << id << "\n" << log;
    EXPECT_GT(start, previous_finish) << id;
    EXPECT_GT(finish, start) << id;
    previous_finish = finish;
  }
  // `deployment list` shows them in submission order, all final.
  std::vector<std::string> listed;
  for (const auto& row : ParseDeployments(n().Cli({"deployment", "list"}).out)) {
    if (std::find(ids.begin(), ids.end(), row.id) != ids.end()) listed.push_back(row.id);
    EXPECT_TRUE(IsFinalStatus(row.status)) << row.id;
  }
  EXPECT_EQ(listed, ids);
  auto details = n().Component(kSvc);
  ASSERT_TRUE(details.has_value());
  EXPECT_EQ(details->configuration.value("Message", ""), "q3");
  EXPECT_TRUE(n().WaitLog(kSvc, "svc version=1.0.0 message=q3"));
}

// --- the CLI's access -------------------------------------------------------------------

TEST_F(NucleusE2EStarted, CliTokenFileIsPrivateAndAWrongTokenIsRefused) {
  const std::string path = n().root() + "/cli_ipc_info/lichen_cli";
  EXPECT_EQ(ModeOf(path), 0640u) << path;
  EXPECT_EQ(OwnerOf(path), 0u);
  auto info = nucleus::ReadCliIpcInfo(n().root());
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->socket_path, n().root() + "/ipc.socket");

  ipc::IpcClient bad;
  auto refused = bad.Connect(info->socket_path, "not-the-token-" + info->auth_token, 5000ms);
  EXPECT_FALSE(refused.ok());
  if (bad.connected()) {
    auto call = bad.Call("aws.greengrass#ListComponents", Json::object(), 5000ms);
    EXPECT_FALSE(call.ok()) << "a wrong token could list components";
  }

  ipc::IpcClient good;
  auto accepted = good.Connect(info->socket_path, info->auth_token, 5000ms);
  ASSERT_TRUE(accepted.ok()) << accepted.error().message;
  auto listed = good.Call("aws.greengrass#ListComponents", Json::object(), 5000ms);
  EXPECT_TRUE(listed.ok()) << listed.error().message;
}

// --- what components see ----------------------------------------------------------------

TEST_F(NucleusE2EStarted, ComponentsGetTheGreengrassEnvironment) {
  const std::string name = "lichen.e2e.EnvProbe";
  DeployOk({"-r", Recipes(), "-m", name + "=1.0.0"});
  ASSERT_TRUE(n().WaitState(name, "FINISHED"));
  ASSERT_TRUE(n().WaitLog(name, "user="));
  const std::string log = n().Log(name);
  EXPECT_NE(log.find("svcuid_len=16."), std::string::npos) << log;
  EXPECT_NE(log.find("token_same=yes"), std::string::npos) << log;
  EXPECT_NE(log.find("socket=" + n().socket_path() + "."), std::string::npos) << log;
  EXPECT_NE(log.find("socket2=" + n().socket_path() + "."), std::string::npos) << log;
  EXPECT_NE(log.find("region=" + n().options().region + "."), std::string::npos) << log;
  EXPECT_NE(log.find("thing=" + n().options().thing_name + "."), std::string::npos) << log;
  EXPECT_NE(log.find("ggc=2."), std::string::npos) << log;
  EXPECT_NE(log.find("cwd=" + n().WorkDir(name) + "."), std::string::npos) << log;
  EXPECT_NE(log.find("user=ggc_user."), std::string::npos) << log;
}

TEST_F(NucleusE2EStarted, RequiresPrivilegeStepRunsAsRootOthersAsTheUser) {
  const std::string name = "lichen.e2e.Privileged";
  DeployOk({"-r", Recipes(), "-m", name + "=1.0.0"});
  ASSERT_TRUE(n().WaitLog(name, "run_uid="));
  const std::string log = n().Log(name);
  EXPECT_NE(log.find("install_uid=0."), std::string::npos) << log;
  EXPECT_NE(log.find("run_uid=" + std::to_string(UidOf("ggc_user")) + "."), std::string::npos)
      << log;
}

TEST_F(NucleusE2EStarted, SkipifOnpathSkipsOnlyWhenTheProgramExists) {
  const std::string name = "lichen.e2e.Skipper";
  DeployOk({"-r", Recipes(), "-m", name + "=1.0.0"});
  ASSERT_TRUE(n().WaitState(name, "FINISHED"));
  ASSERT_TRUE(n().WaitLog(name, "run-ran"));
  const std::string log = n().Log(name);
  EXPECT_EQ(log.find("install-ran"), std::string::npos) << log;
  EXPECT_NE(log.find("Install skipped (Skipif onpath sh)"), std::string::npos) << log;
}

// --- how it is reached ------------------------------------------------------------------

class LongRoot : public NucleusE2EStarted {
 protected:
  NucleusOptions Options() override {
    NucleusOptions o;
    o.min_root_length = 140;
    return o;
  }
};

TEST_F(LongRoot, ALongRootPathWorksThroughAShortSocketLink) {
  ASSERT_GT(n().root().size() + std::string("/ipc.socket").size(), 108u) << n().root();
  EXPECT_EQ(n().socket_path().rfind("/tmp/lichen-", 0), 0u) << n().socket_path();
  EXPECT_LT(n().socket_path().size(), 108u);
  std::error_code ec;
  EXPECT_EQ(fs::canonical(fs::path(n().socket_path()).parent_path(), ec).string(),
            fs::canonical(n().root(), ec).string());
  DeployOk({"-r", Recipes(), "-m", kSvc + "=1.0.0", "-m", "lichen.e2e.EnvProbe=1.0.0"});
  EXPECT_EQ(n().ComponentState(kSvc), "RUNNING");
  ASSERT_TRUE(n().WaitLog("lichen.e2e.EnvProbe", "user="));
  EXPECT_NE(n().Log("lichen.e2e.EnvProbe").find("socket=" + n().socket_path() + "."),
            std::string::npos)
      << n().Log("lichen.e2e.EnvProbe");
  auto code = n().Stop();
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0);
}

TEST_F(NucleusE2EStarted, GreengrassCliSymlinkWorksTheSame) {
  const std::string link = n().dir() + "/bin/greengrass-cli";
  fs::create_directories(fs::path(link).parent_path());
  fs::create_symlink(LichenBinary(), link);
  auto created =
      RunCommand({link, "--ggcRootPath", n().root(), "deployment", "create", "--recipeDir",
                  Recipes(), "--merge", kSvc + "=1.0.0", "--wait", "--timeout", "40"},
                 50000ms);
  ASSERT_EQ(created.exit_code, 0) << created.Describe();
  auto rows = ParseDeployments(created.out);
  ASSERT_FALSE(rows.empty()) << created.Describe();
  EXPECT_EQ(rows.back().status, "SUCCEEDED");

  auto via_link = RunCommand({link, "--ggcRootPath", n().root(), "component", "list"});
  auto via_lichen = n().Cli({"component", "list"});
  EXPECT_EQ(via_link.exit_code, 0) << via_link.Describe();
  EXPECT_EQ(via_link.out, via_lichen.out);
  EXPECT_NE(via_link.out.find("Component Name: " + kSvc), std::string::npos) << via_link.out;

  auto unknown = RunCommand(
      {link, "--ggcRootPath", n().root(), "deployment", "status", "-i", "no-such-deployment"});
  EXPECT_NE(unknown.exit_code, 0);
  EXPECT_EQ(unknown.err.rfind("greengrass-cli: ", 0), 0u) << unknown.Describe();
}

}  // namespace
}  // namespace lichen::harness
