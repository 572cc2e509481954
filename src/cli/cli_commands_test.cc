// The daemon and logs verbs, run in-process through RunCli against an IpcServer with
// fake handlers on a temporary root.
#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "cli/commands.h"
#include "ipc/server.h"
#include "logs/format.h"

namespace lichen::cli {
namespace {

namespace fs = std::filesystem;
using ipc::Json;
using namespace std::chrono_literals;

constexpr char kToken[] = "cli-token-0123456";

struct Outcome {
  int code;
  std::string out;
  std::string err;
};

Outcome RunArgs(std::vector<std::string> args) {
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  std::ostringstream out, err;
  int code = RunCli(static_cast<int>(argv.size()), argv.data(), out, err);
  return {code, out.str(), err.str()};
}

void WriteFile(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static int counter = 0;
    root_ = fs::temp_directory_path() /
            ("lichen-cli-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    fs::remove_all(root_);
    fs::create_directories(root_);
    socket_ = (root_ / "ipc.socket").string();
    WriteInfo(socket_, kToken);

    server_ = std::make_unique<ipc::IpcServer>(
        io_, [](const std::string& token) -> std::optional<std::string> {
          if (token == kToken) return std::string("lichen.cli");
          return std::nullopt;
        });
    for (const char* op : {"CreateLocalDeployment", "ListLocalDeployments",
                           "GetLocalDeploymentStatus", "CancelLocalDeployment", "ListComponents",
                           "GetComponentDetails", "RestartComponent", "StopComponent"}) {
      const std::string name = op;
      server_->Register("aws.greengrass#" + name,
                        [this, name](std::shared_ptr<ipc::Call> call) { Handle(name, call); });
    }
    ASSERT_TRUE(server_->Listen(socket_));
    thread_ = std::thread([this] {
      auto guard = boost::asio::make_work_guard(io_);
      io_.run();
    });
  }

  void TearDown() override {
    boost::asio::post(io_, [this] { server_->Close(); });
    io_.stop();
    thread_.join();
    server_.reset();
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  void WriteInfo(const std::string& socket, const std::string& token) {
    WriteFile(root_ / "cli_ipc_info" / "lichen_cli",
              Json{{"socket_path", socket}, {"cli_auth_token", token}}.dump());
  }

  // A reply or a modeled error for an operation; `replies_` holds a queue per operation
  // (the last one repeats).
  struct Reply {
    Json body;
    std::string error_shape;  // set: a modeled error with body["message"]
  };
  void Answer(const std::string& op, std::vector<Reply> replies) {
    std::lock_guard lock(mu_);
    replies_[op] = std::move(replies);
  }
  std::vector<std::pair<std::string, Json>> Requests() {
    std::lock_guard lock(mu_);
    return requests_;
  }

  Outcome Cli(std::vector<std::string> args) {
    args.insert(args.begin(), "lichen");
    args.push_back("--root");
    args.push_back(root_.string());
    return RunArgs(std::move(args));
  }

  fs::path root_;
  std::string socket_;

 private:
  void Handle(const std::string& op, const std::shared_ptr<ipc::Call>& call) {
    Reply reply{Json::object(), ""};
    {
      std::lock_guard lock(mu_);
      requests_.emplace_back(op, call->request());
      auto& queue = replies_[op];
      if (!queue.empty()) {
        reply = queue.front();
        if (queue.size() > 1) queue.erase(queue.begin());
      }
    }
    if (reply.error_shape.empty()) {
      call->Respond(reply.body);
    } else {
      call->Error(reply.error_shape, reply.body.value("message", ""));
    }
  }

  boost::asio::io_context io_;
  std::unique_ptr<ipc::IpcServer> server_;
  std::thread thread_;
  std::mutex mu_;
  std::map<std::string, std::vector<Reply>> replies_;
  std::vector<std::pair<std::string, Json>> requests_;
};

// ---- deployment ---------------------------------------------------------------------

TEST_F(CliTest, DeploymentCreateSendsEveryFlag) {
  fs::create_directories(root_ / "work" / "recipes");
  fs::create_directories(root_ / "work" / "artifacts");
  WriteFile(root_ / "limits.json", R"({"com.example.A": {"cpus": 0.5, "memory": 10240}})");
  Answer("CreateLocalDeployment", {{Json{{"deploymentId", "dep-1"}}, ""}});

  // Relative folders are sent as absolute paths.
  const fs::path cwd = fs::current_path();
  fs::current_path(root_ / "work");
  Outcome r = Cli({"deployment",
                   "create",
                   "-r",
                   "recipes/",
                   "--artifactDir",
                   "./artifacts",
                   "-m",
                   "com.example.A=1.0.0",
                   "--merge",
                   "com.example.B=2.1.0-beta.1",
                   "--remove",
                   "com.example.C,com.example.D",
                   "--remove",
                   "com.example.E",
                   "-g",
                   "thinggroup/G",
                   "--runWith",
                   "com.example.A:posixUser=ggc_user:ggc_group",
                   "--runWith",
                   "com.example.B:posixUser=nobody",
                   "-c",
                   R"({"com.example.A": {"MERGE": {"k": 1}, "RESET": ["/old"]}})",
                   "--systemLimits",
                   (root_ / "limits.json").string(),
                   "--failure-handling-policy",
                   "ROLLBACK"});
  fs::current_path(cwd);

  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "Local deployment submitted! Deployment Id: dep-1\n");
  EXPECT_EQ(r.err, "");
  auto requests = Requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].first, "CreateLocalDeployment");
  const Json expected = {
      {"groupName", "thinggroup/G"},
      {"rootComponentVersionsToAdd",
       {{"com.example.A", "1.0.0"}, {"com.example.B", "2.1.0-beta.1"}}},
      {"rootComponentsToRemove", {"com.example.C", "com.example.D", "com.example.E"}},
      {"componentToConfiguration",
       {{"com.example.A", {{"MERGE", {{"k", 1}}}, {"RESET", {"/old"}}}}}},
      {"componentToRunWithInfo",
       {{"com.example.A",
         {{"posixUser", "ggc_user:ggc_group"},
          {"systemResourceLimits", {{"cpus", 0.5}, {"memory", 10240}}}}},
        {"com.example.B", {{"posixUser", "nobody"}}}}},
      {"recipeDirectoryPath", (root_ / "work" / "recipes").string()},
      {"artifactsDirectoryPath", (root_ / "work" / "artifacts").string()},
      {"failureHandlingPolicy", "ROLLBACK"},
  };
  EXPECT_EQ(requests[0].second, expected) << requests[0].second.dump(2);
}

TEST_F(CliTest, DeploymentCreateDefaultsAndConfigFromAFile) {
  WriteFile(root_ / "config.json", R"({"com.example.A": {"MERGE": {"x": "y"}}})");
  Answer("CreateLocalDeployment", {{Json{{"deploymentId", "dep-2"}}, ""}});
  Outcome r = Cli({"deployment", "create", "--merge", "com.example.A=1.0.0", "--update-config",
                   (root_ / "config.json").string()});
  ASSERT_EQ(r.code, 0) << r.err;
  auto requests = Requests();
  ASSERT_EQ(requests.size(), 1u);
  const Json& sent = requests[0].second;
  EXPECT_EQ(sent["groupName"], "LOCAL_DEPLOYMENT");
  EXPECT_EQ(sent["failureHandlingPolicy"], "DO_NOTHING");
  EXPECT_EQ(sent["componentToConfiguration"]["com.example.A"]["MERGE"]["x"], "y");
  EXPECT_FALSE(sent.contains("recipeDirectoryPath"));
}

TEST_F(CliTest, DeploymentCreateRefusesBadFlagsBeforeCallingTheNucleus) {
  for (const std::vector<std::string>& args : {
           std::vector<std::string>{"deployment", "create", "-m", "com.example.A"},
           {"deployment", "create", "-m", "com.example.A=one"},
           {"deployment", "create", "--runWith", "com.example.A:windowsUser=x"},
           {"deployment", "create", "-c", "{not json"},
           {"deployment", "create", "-c", R"({"com.example.A": {"MERGE": 1}})"},
           {"deployment", "create", "-m", "com.example.A=1.0.0", "--remove", "com.example.A"},
           {"deployment", "create", "-r", "/no/such/folder"},
       }) {
    Outcome r = Cli(args);
    EXPECT_EQ(r.code, kExitUsage) << args.back() << ": " << r.err;
    EXPECT_TRUE(r.err.starts_with("lichen: ")) << r.err;
  }
  Outcome bad_policy = Cli({"deployment", "create", "--failure-handling-policy", "MAYBE"});
  EXPECT_EQ(bad_policy.code, kExitUsage);
  Outcome timeout_alone = Cli({"deployment", "create", "--timeout", "5"});
  EXPECT_EQ(timeout_alone.code, kExitUsage);
  // One value per flag, as the Greengrass CLI takes them.
  Outcome two_values =
      Cli({"deployment", "create", "-m", "com.example.A=1.0.0", "com.example.B=1.0.0"});
  EXPECT_EQ(two_values.code, kExitUsage);
  EXPECT_TRUE(Requests().empty());
}

TEST_F(CliTest, DeploymentCreateWaitPollsUntilAFinalStatus) {
  Answer("CreateLocalDeployment", {{Json{{"deploymentId", "dep-3"}}, ""}});
  Answer("GetLocalDeploymentStatus",
         {{Json{{"deployment", {{"deploymentId", "dep-3"}, {"status", "QUEUED"}}}}, ""},
          {Json{{"deployment", {{"deploymentId", "dep-3"}, {"status", "IN_PROGRESS"}}}}, ""},
          {Json{{"deployment",
                 {{"deploymentId", "dep-3"},
                  {"status", "SUCCEEDED"},
                  {"deploymentStatusDetails", {{"detailedDeploymentStatus", "SUCCESSFUL"}}}}}},
           ""}});
  Outcome r = Cli({"deployment", "create", "-m", "com.example.A=1.0.0", "--wait"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out,
            "Local deployment submitted! Deployment Id: dep-3\n"
            "dep-3: SUCCEEDED\n"
            "Detailed Status: SUCCESSFUL\n");
  auto requests = Requests();
  ASSERT_EQ(requests.size(), 4u);
  EXPECT_EQ(requests[1].second, (Json{{"deploymentId", "dep-3"}}));
}

TEST_F(CliTest, DeploymentCreateWaitExitsOneWhenTheDeploymentFails) {
  Answer("CreateLocalDeployment", {{Json{{"deploymentId", "dep-4"}}, ""}});
  Answer("GetLocalDeploymentStatus",
         {{Json{{"deployment",
                 {{"deploymentId", "dep-4"},
                  {"status", "FAILED"},
                  {"deploymentStatusDetails",
                   {{"detailedDeploymentStatus", "FAILED_ROLLBACK_COMPLETE"},
                    {"deploymentErrorStack", {"DEPLOYMENT_FAILURE", "COMPONENT_BROKEN"}},
                    {"deploymentErrorTypes", {"USER_COMPONENT_ERROR"}},
                    {"deploymentFailureCause", "com.example.A is broken"}}}}}},
           ""}});
  Outcome r =
      Cli({"deployment", "create", "-m", "com.example.A=1.0.0", "--wait", "--timeout", "30"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("dep-4: FAILED\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Failure Cause: com.example.A is broken\n"), std::string::npos);
}

TEST_F(CliTest, DeploymentCreateWaitIsBounded) {
  Answer("CreateLocalDeployment", {{Json{{"deploymentId", "dep-5"}}, ""}});
  Answer("GetLocalDeploymentStatus",
         {{Json{{"deployment", {{"deploymentId", "dep-5"}, {"status", "IN_PROGRESS"}}}}, ""}});
  Outcome r =
      Cli({"deployment", "create", "-m", "com.example.A=1.0.0", "--wait", "--timeout", "0.3"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("deployment dep-5 is still IN_PROGRESS after 0.3 s"), std::string::npos)
      << r.err;
}

TEST_F(CliTest, DeploymentStatusPrintsTheDetails) {
  Answer("GetLocalDeploymentStatus",
         {{Json{{"deployment",
                 {{"deploymentId", "dep-6"},
                  {"status", "FAILED"},
                  {"createdOn", "1700000000"},
                  {"deploymentStatusDetails",
                   {{"detailedDeploymentStatus", "FAILED_NO_STATE_CHANGE"},
                    {"deploymentErrorStack", {"DEPLOYMENT_FAILURE", "RECIPE_PARSE_ERROR"}},
                    {"deploymentErrorTypes", {"REQUEST_ERROR"}},
                    {"deploymentFailureCause", "bad recipe"}}}}}},
           ""}});
  Outcome r = Cli({"deployment", "status", "-i", "dep-6"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out,
            "dep-6: FAILED\n"
            "Detailed Status: FAILED_NO_STATE_CHANGE\n"
            "Deployment Error Stack: DEPLOYMENT_FAILURE, RECIPE_PARSE_ERROR\n"
            "Deployment Error Types: REQUEST_ERROR\n"
            "Failure Cause: bad recipe\n");
  EXPECT_EQ(Requests().at(0).second, (Json{{"deploymentId", "dep-6"}}));
}

TEST_F(CliTest, DeploymentStatusOfAnUnknownIdIsAnError) {
  Answer("GetLocalDeploymentStatus",
         {{Json{{"message", "no deployment with id nope"}}, "ResourceNotFoundError"}});
  Outcome r = Cli({"deployment", "status", "--deploymentId", "nope"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "lichen: GetLocalDeploymentStatus: no deployment with id nope\n");
}

TEST_F(CliTest, DeploymentListPrintsEachDeployment) {
  Answer("ListLocalDeployments",
         {{Json{{"localDeployments",
                 {{{"deploymentId", "dep-a"}, {"status", "SUCCEEDED"}, {"createdOn", "1"}},
                  {{"deploymentId", "dep-b"},
                   {"status", "FAILED"},
                   {"deploymentStatusDetails",
                    {{"detailedDeploymentStatus", "FAILED_ROLLBACK_NOT_REQUESTED"},
                     {"deploymentErrorStack", {"COMPONENT_BROKEN"}},
                     {"deploymentFailureCause", "broken"}}}}}}},
           ""}});
  Outcome r = Cli({"deployment", "list"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out,
            "dep-a: SUCCEEDED\n"
            "dep-b: FAILED\n"
            "    Detailed Status: FAILED_ROLLBACK_NOT_REQUESTED\n"
            "    Deployment Error Stack: COMPONENT_BROKEN\n"
            "    Failure Cause: broken\n");
  EXPECT_EQ(Requests().at(0).second, Json::object());
}

TEST_F(CliTest, DeploymentCancelPrintsTheNucleusMessage) {
  Answer("CancelLocalDeployment", {{Json{{"message", "Deployment dep-7 canceled"}}, ""}});
  Outcome r = Cli({"deployment", "cancel", "-i", "dep-7"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "Deployment dep-7 canceled\n");
  EXPECT_EQ(Requests().at(0).second, (Json{{"deploymentId", "dep-7"}}));
}

// ---- component ----------------------------------------------------------------------

TEST_F(CliTest, ComponentListPrintsLikeTheGreengrassCli) {
  Answer(
      "ListComponents",
      {{Json{{"components",
              {{{"componentName", "aws.greengrass.Nucleus"},
                {"version", "2.12.0"},
                {"state", "FINISHED"},
                {"configuration", {{"awsRegion", "eu-west-1"}, {"interval", 1.5}}}},
               {{"componentName", "com.example.A"}, {"version", "1.0.0"}, {"state", "RUNNING"}}}}},
        ""}});
  Outcome r = Cli({"component", "list"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out,
            "Components currently running in Greengrass:\n"
            "Component Name: aws.greengrass.Nucleus\n"
            "    Version: 2.12.0\n"
            "    State: FINISHED\n"
            "    Configuration: {\"awsRegion\":\"eu-west-1\",\"interval\":1.5}\n"
            "Component Name: com.example.A\n"
            "    Version: 1.0.0\n"
            "    State: RUNNING\n"
            "    Configuration: null\n");
}

TEST_F(CliTest, ComponentDetailsAndItsErrors) {
  Answer("GetComponentDetails", {{Json{{"componentDetails",
                                        {{"componentName", "com.example.A"},
                                         {"version", "1.0.0"},
                                         {"state", "BROKEN"},
                                         {"configuration", {{"k", "v"}}}}}},
                                  ""},
                                 {Json{{"message", "component com.example.Nope is not running"}},
                                  "ResourceNotFoundError"}});
  Outcome ok = Cli({"component", "details", "-n", "com.example.A"});
  ASSERT_EQ(ok.code, 0) << ok.err;
  EXPECT_EQ(ok.out,
            "Component Name: com.example.A\n"
            "    Version: 1.0.0\n"
            "    State: BROKEN\n"
            "    Configuration: {\"k\":\"v\"}\n");
  Outcome missing = Cli({"component", "details", "--name", "com.example.Nope"});
  EXPECT_EQ(missing.code, 1);
  EXPECT_EQ(missing.err,
            "lichen: GetComponentDetails: component com.example.Nope is not running\n");
  auto requests = Requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[1].second, (Json{{"componentName", "com.example.Nope"}}));
}

TEST_F(CliTest, ComponentRestartAndStopCallOncePerName) {
  Answer("RestartComponent", {{Json{{"restartStatus", "SUCCEEDED"}}, ""}});
  Answer("StopComponent", {{Json{{"stopStatus", "SUCCEEDED"}}, ""},
                           {Json{{"stopStatus", "FAILED"}, {"message", "not running"}}, ""}});
  Outcome restart = Cli({"component", "restart", "-n", "com.example.A,com.example.B"});
  EXPECT_EQ(restart.code, 0) << restart.err;
  EXPECT_EQ(restart.out, "");
  Outcome stop = Cli({"component", "stop", "--names", "com.example.A", "-n", "com.example.B"});
  EXPECT_EQ(stop.code, 1);
  EXPECT_EQ(stop.err, "lichen: StopComponent: com.example.B: FAILED: not running\n");
  auto requests = Requests();
  ASSERT_EQ(requests.size(), 4u);
  EXPECT_EQ(requests[0], std::make_pair(std::string("RestartComponent"),
                                        Json{{"componentName", "com.example.A"}}));
  EXPECT_EQ(requests[1], std::make_pair(std::string("RestartComponent"),
                                        Json{{"componentName", "com.example.B"}}));
  EXPECT_EQ(requests[3],
            std::make_pair(std::string("StopComponent"), Json{{"componentName", "com.example.B"}}));
}

// ---- reaching the nucleus -----------------------------------------------------------

TEST_F(CliTest, GreengrassCliNameWorksTheSame) {
  Answer("ListComponents", {{Json{{"components", Json::array()}}, ""}});
  Outcome r = RunArgs(
      {"/greengrass/v2/bin/greengrass-cli", "--ggcRootPath", root_.string(), "component", "list"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "Components currently running in Greengrass:\n");
  Answer("GetComponentDetails",
         {{Json{{"message", "no such component"}}, "ResourceNotFoundError"}});
  Outcome err =
      RunArgs({"greengrass-cli", "component", "details", "-n", "x", "--root", root_.string()});
  EXPECT_EQ(err.code, 1);
  EXPECT_EQ(err.err, "greengrass-cli: GetComponentDetails: no such component\n");
  Outcome help = RunArgs({"greengrass-cli", "--help"});
  EXPECT_EQ(help.code, 0);
  EXPECT_NE(help.out.find("greengrass-cli"), std::string::npos);
}

TEST_F(CliTest, RootComesFromTheFlagThenTheEnvironment) {
  Answer("ListLocalDeployments", {{Json{{"localDeployments", Json::array()}}, ""}});
  ::setenv("LICHEN_ROOT", root_.c_str(), 1);
  Outcome from_env = RunArgs({"lichen", "deployment", "list"});
  Outcome flag_wins =
      RunArgs({"lichen", "deployment", "list", "--root", (root_ / "nope").string()});
  Outcome before_verb = RunArgs({"lichen", "--root", root_.string(), "deployment", "list"});
  ::unsetenv("LICHEN_ROOT");
  EXPECT_EQ(from_env.code, 0) << from_env.err;
  EXPECT_EQ(flag_wins.code, 1);
  EXPECT_NE(flag_wins.err.find("no nucleus root at " + (root_ / "nope").string()),
            std::string::npos)
      << flag_wins.err;
  EXPECT_EQ(before_verb.code, 0) << before_verb.err;
}

TEST_F(CliTest, MissingIpcInfoNamesTheFile) {
  fs::remove(root_ / "cli_ipc_info" / "lichen_cli");
  Outcome r = Cli({"component", "list"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find((root_ / "cli_ipc_info" / "lichen_cli").string()), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("is the nucleus running"), std::string::npos) << r.err;
}

TEST_F(CliTest, UnreadableIpcInfoSaysWhoMayReadIt) {
  if (::geteuid() == 0) GTEST_SKIP() << "root reads any file";
  fs::permissions(root_ / "cli_ipc_info" / "lichen_cli", fs::perms::none);
  Outcome r = Cli({"component", "list"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("permission denied: run as root or as a member of the group"),
            std::string::npos)
      << r.err;
}

TEST_F(CliTest, MalformedIpcInfoIsReported) {
  WriteFile(root_ / "cli_ipc_info" / "lichen_cli", "{\"socket_path\": 1}");
  Outcome r = Cli({"component", "list"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("is not the nucleus's CLI IPC info"), std::string::npos) << r.err;
}

TEST_F(CliTest, NucleusNotRunningOrRefusingIsAClearError) {
  WriteInfo((root_ / "gone.socket").string(), kToken);
  Outcome gone = Cli({"deployment", "list"});
  EXPECT_EQ(gone.code, 1);
  EXPECT_EQ(gone.err, "lichen: is the nucleus running? no socket at " +
                          (root_ / "gone.socket").string() + "\n");
  WriteInfo(socket_, "stale-token-00000");
  Outcome refused = Cli({"deployment", "list"});
  EXPECT_EQ(refused.code, 1);
  EXPECT_NE(refused.err.find("refused the auth token"), std::string::npos) << refused.err;
}

TEST_F(CliTest, HelpAndUsageErrors) {
  for (const std::vector<std::string>& args : {std::vector<std::string>{"lichen", "--help"},
                                               {"lichen", "deployment", "--help"},
                                               {"lichen", "deployment", "create", "--help"},
                                               {"lichen", "component", "restart", "--help"},
                                               {"lichen", "logs", "get", "--help"},
                                               {"lichen", "recipe", "validate", "--help"}}) {
    Outcome r = RunArgs(args);
    EXPECT_EQ(r.code, 0) << args.back();
    EXPECT_NE(r.out.find("Usage"), std::string::npos) << r.out;
  }
  EXPECT_NE(RunArgs({"lichen", "deployment", "create", "--help"}).out.find("--recipeDir"),
            std::string::npos);
  EXPECT_EQ(RunArgs({"lichen", "deployment", "status"}).code, kExitUsage);  // -i is required
  EXPECT_EQ(RunArgs({"lichen", "component"}).code, kExitUsage);
  EXPECT_EQ(RunArgs({"lichen", "nope"}).code, kExitUsage);
  EXPECT_TRUE(Requests().empty());
}

// ---- logs ---------------------------------------------------------------------------

class LogsTest : public CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    logs_ = root_ / "logs";
    WriteFile(logs_ / "greengrass_2021_01_01_00_0.log",
              "2021-01-01T00:00:01.000Z [INFO] (main) lichen.nucleus: boot. starting. "
              "{root=/greengrass/v2}\n");
    WriteFile(logs_ / "greengrass.log",
              "2021-01-01T00:00:05.000Z [WARN] (main) lichen.deployment: deploy-fail. failed. "
              "{serviceName=DeploymentService, DeploymentId=d1}\n"
              "2021-01-01T00:00:09.000Z [DEBUG] (main) lichen.ipc: connect. client. {}\n");
    WriteFile(logs_ / "com.example.A.log",
              R"({"thread":"Copier","level":"INFO","eventType":"stdout","message":"hello",)"
              R"("contexts":{"serviceName":"com.example.A"},"loggerName":"com.example.A",)"
              R"("timestamp":1609459203000,"cause":null})"
              "\n"
              "2021-01-01T00:00:07.000Z [ERROR] (Copier) com.example.A: stderr. oops. "
              "{serviceName=com.example.A}\n");
  }
  fs::path logs_;
};

TEST_F(LogsTest, ListLogFiles) {
  Outcome r = Cli({"logs", "list-log-files"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, (logs_ / "com.example.A.log").string() + "\n" +
                       (logs_ / "greengrass_2021_01_01_00_0.log").string() + "\n" +
                       (logs_ / "greengrass.log").string() + "\nTotal 3 files found.\n");
  Outcome ld = RunArgs({"greengrass-cli", "logs", "list-log-files", "-ld", logs_.string()});
  EXPECT_EQ(ld.out, r.out);
  Outcome missing = Cli({"logs", "list-log-files", "--log-dir", (root_ / "nope").string()});
  EXPECT_EQ(missing.code, 1);
}

TEST_F(LogsTest, GetPrintsEveryLogOldestFirstAsWritten) {
  Outcome r = Cli({"logs", "get"});
  ASSERT_EQ(r.code, 0) << r.err;
  std::istringstream lines(r.out);
  std::vector<std::string> got;
  for (std::string line; std::getline(lines, line);) got.push_back(line);
  ASSERT_EQ(got.size(), 5u) << r.out;
  EXPECT_TRUE(got[0].find("starting") != std::string::npos);
  EXPECT_TRUE(got[1].starts_with("{\"thread\":\"Copier\""));  // raw JSON, as written
  EXPECT_TRUE(got[2].find("deploy-fail") != std::string::npos);
  EXPECT_TRUE(got[3].find("oops") != std::string::npos);
  EXPECT_TRUE(got[4].find("connect") != std::string::npos);
}

TEST_F(LogsTest, GetFilters) {
  // A component's log only.
  Outcome comp = Cli({"logs", "get", "-n", "com.example.A", "--level", "warn"});
  ASSERT_EQ(comp.code, 0) << comp.err;
  EXPECT_EQ(comp.out,
            "2021-01-01T00:00:07.000Z [ERROR] (Copier) com.example.A: stderr. oops. "
            "{serviceName=com.example.A}\n");
  // key=value alternatives (OR) and plain text (AND with the next --filter).
  Outcome kv = Cli({"logs", "get", "--filter", "serviceName=DeploymentService,eventType=stdout",
                    "--filter", "level=INFO"});
  ASSERT_EQ(kv.code, 0) << kv.err;
  EXPECT_EQ(kv.out.find("deploy-fail"), std::string::npos) << kv.out;  // WARN
  EXPECT_NE(kv.out.find("\"hello\""), std::string::npos) << kv.out;
  Outcome text = Cli({"logs", "get", "-f", "DeploymentId=d1", "-f", "failed"});
  EXPECT_NE(text.out.find("deploy-fail"), std::string::npos);
  EXPECT_EQ(std::count(text.out.begin(), text.out.end(), '\n'), 1);
  // A time window (UTC), and one file read by name.
  Outcome window = Cli({"logs", "get", "--time-window", "2021-01-01T00:00:04,2021-01-01T00:00:07Z",
                        "-lf", (logs_ / "greengrass.log").string()});
  ASSERT_EQ(window.code, 0) << window.err;
  EXPECT_EQ(std::count(window.out.begin(), window.out.end(), '\n'), 1) << window.out;
  EXPECT_NE(window.out.find("deploy-fail"), std::string::npos);
  // A component without a log is a warning.
  Outcome none = Cli({"logs", "get", "--component", "com.example.None"});
  EXPECT_EQ(none.code, 0);
  EXPECT_EQ(none.out, "");
  EXPECT_NE(none.err.find("no log for component com.example.None"), std::string::npos);
}

TEST_F(LogsTest, GetVerboseShowsEveryField) {
  Outcome r = Cli({"logs", "get", "-n", "com.example.A", "--verbose", "-f", "hello"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out,
            "2021-01-01T00:00:03Z [INFO] (Copier) com.example.A: stdout. hello. "
            "{serviceName=com.example.A} [com.example.A.log]\n");
}

TEST_F(LogsTest, GetRefusesBadArguments) {
  EXPECT_EQ(Cli({"logs", "get", "--level", "LOUD"}).code, kExitUsage);
  EXPECT_EQ(Cli({"logs", "get", "--time-window", "yesterday,now"}).code, kExitUsage);
  EXPECT_EQ(Cli({"logs", "get", "--time-window", "2021-01-02,2021-01-01"}).code, kExitUsage);
  // --follow false (the Greengrass CLI's form) reads once and returns.
  EXPECT_EQ(Cli({"logs", "get", "--follow", "false", "-n", "com.example.A"}).code, 0);
  Outcome missing = Cli({"logs", "get", "--log-file", (logs_ / "nope.log").string()});
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.err.find("nope.log"), std::string::npos);
}

TEST_F(LogsTest, RelativeTimeWindows) {
  std::string recent, old;
  logs::AppendInstant(recent, logs::ToEpochMs(std::chrono::system_clock::now() - 1h));
  logs::AppendInstant(old, logs::ToEpochMs(std::chrono::system_clock::now() - 3h));
  WriteFile(logs_ / "com.example.B.log",
            old + " [INFO] (t) B: old. {}\n" + recent + " [INFO] (t) B: recent. {}\n");
  Outcome r = Cli({"logs", "get", "-n", "com.example.B", "-t", "-2h,"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, recent + " [INFO] (t) B: recent. {}\n");
  Outcome both = Cli({"logs", "get", "-n", "com.example.B", "-t", "-3h30min,-2hr", "-t", "-90m,"});
  EXPECT_EQ(std::count(both.out.begin(), both.out.end(), '\n'), 2) << both.out;
}

TEST_F(LogsTest, FollowPrintsNewLinesAcrossRotationUntilStopped) {
  Outcome r{};
  std::thread follower([&] { r = Cli({"logs", "get", "-n", "com.example.A", "-fol", "true"}); });
  std::this_thread::sleep_for(300ms);
  const std::string l1 = "2021-01-01T00:01:00.000Z [INFO] (Copier) com.example.A: stdout. one. {}";
  const std::string l2 = "2021-01-01T00:02:00.000Z [INFO] (Copier) com.example.A: stdout. two. {}";
  const std::string l3 =
      "2021-01-01T00:03:00.000Z [INFO] (Copier) com.example.A: stdout. three. {}";
  std::ofstream(logs_ / "com.example.A.log", std::ios::app) << l1 << "\n";
  std::this_thread::sleep_for(300ms);
  // Rotation: a line lands in the file just before it is renamed, then a new file begins.
  std::ofstream(logs_ / "com.example.A.log", std::ios::app) << l2 << "\n";
  fs::rename(logs_ / "com.example.A.log", logs_ / "com.example.A_2021_01_01_00_0.log");
  WriteFile(logs_ / "com.example.A.log", l3 + "\n");
  RequestFollowStop();
  follower.join();
  EXPECT_EQ(r.code, 0) << r.err;
  std::istringstream lines(r.out);
  std::vector<std::string> got;
  for (std::string line; std::getline(lines, line);) got.push_back(line);
  ASSERT_EQ(got.size(), 5u) << r.out;
  EXPECT_EQ(got[2], l1);
  EXPECT_EQ(got[3], l2);
  EXPECT_EQ(got[4], l3);
}

}  // namespace
}  // namespace lichen::cli
