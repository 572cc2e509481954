// Greengrass IPC conformance against the official client: the AWS IoT Device SDK v2 for
// JavaScript (greengrasscoreipc, pinned in tools/ipc-sdk) runs inside real components that
// `lichen deployment create` deploys to a running `lichen nucleus`. Each script in
// tools/ipc-sdk/conformance appends one JSON line per check to results.jsonl in its
// component's work folder; these tests read those lines and assert on what the client saw
// (see /work/shared/spec/ipc.md for the behaviour expected).
//
// Missing node or SDK modules fail the tests: a silent skip would hide a broken checkout.
#include <gtest/gtest.h>

#include <chrono>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "nucleus_harness.h"

namespace lichen::harness {
namespace {

std::string SdkDir() { return SourceDir() + "/tools/ipc-sdk"; }
std::string ScriptPath(const std::string& script) { return SdkDir() + "/conformance/" + script; }

// The node binary on PATH, or empty.
std::string FindNode() {
  auto r = RunCommand({"/bin/sh", "-c", "command -v node"}, 10000ms);
  std::string path = r.out;
  while (!path.empty() && (path.back() == '\n' || path.back() == ' ')) path.pop_back();
  return r.exit_code == 0 ? path : "";
}

// A pubsub policy allowing both operations on `resources`.
Json PubSubPolicy(const std::string& id, const std::vector<std::string>& resources) {
  return {{"aws.greengrass.ipc.pubsub",
           {{id,
             {{"policyDescription", "conformance test"},
              {"operations", {"aws.greengrass#PublishToTopic", "aws.greengrass#SubscribeToTopic"}},
              {"resources", resources}}}}}};
}

// What one component's script recorded: the lines in order, by check name.
struct Results {
  std::vector<Json> lines;
  const Json* Find(const std::string& check) const {
    for (const auto& l : lines) {
      if (l.value("check", "") == check) return &l;
    }
    return nullptr;
  }
  size_t Count(const std::string& check) const {
    size_t n = 0;
    for (const auto& l : lines) n += l.value("check", "") == check ? 1 : 0;
    return n;
  }
};

// The error code the client reported (null when the call succeeded).
std::string Code(const Json& outcome) {
  const auto it = outcome.find("code");
  return it != outcome.end() && it->is_string() ? it->get<std::string>() : "";
}
bool Ok(const Json& outcome) { return outcome.value("ok", false); }

// JSON compared without regard to key order (Json keeps insertion order, and so compares
// objects by it).
nlohmann::json P(const Json& j) { return nlohmann::json::parse(j.dump()); }

class IpcSdk : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "the daemon tests run as root";
    node_ = FindNode();
    ASSERT_FALSE(node_.empty()) << "node is not on PATH: the IPC SDK conformance tests need it";
    for (const char* module : {"aws-iot-device-sdk-v2", "aws-crt"}) {
      const std::string manifest = SdkDir() + "/node_modules/" + module + "/package.json";
      ASSERT_TRUE(fs::exists(manifest))
          << manifest << " is missing: run `npm ci` in " << SdkDir() << " (package-lock.json)";
    }
    n_ = std::make_unique<Nucleus>();
    // A Run process must stay up this long before a deployment succeeds; 1 s by default.
    // The scripts are long-lived, so a short window only saves time.
    n().WriteConfig(n().DefaultConfig() + "        runStableMs: 100\n");
    ASSERT_TRUE(n().Start(10000ms));
    recipes_ = n().dir() + "/recipes";
  }

  void TearDown() override {
    if (!n_ || !HasFailure()) return;
    // What the components printed (node's own errors land here) explains most failures.
    for (const auto& name : components_) {
      std::cerr << "--- " << name << ".log ---\n" << n().Log(name) << "\n";
    }
  }

  Nucleus& n() { return *n_; }

  // Writes NAME-1.0.0.json: Run (or Startup) is `exec node SCRIPT`, with `env` set and
  // `configuration` (accessControl included) as the default configuration.
  void WriteRecipe(const std::string& name, const std::string& script, const Json& env = {},
                   const Json& configuration = Json::object(), const std::string& step = "Run") {
    Json lifecycle = Json::object();
    lifecycle[step] = "exec " + node_ + " " + ScriptPath(script);
    if (!env.is_null()) lifecycle["Setenv"] = env;
    WriteShellRecipe(name, lifecycle, configuration);
  }
  void WriteShellRecipe(const std::string& name, const Json& lifecycle,
                        const Json& configuration = Json::object()) {
    Json recipe = {
        {"RecipeFormatVersion", "2020-01-25"},
        {"ComponentName", name},
        {"ComponentVersion", "1.0.0"},
        {"ComponentConfiguration", {{"DefaultConfiguration", configuration}}},
        {"Manifests", Json::array({{{"Platform", {{"os", "linux"}}}, {"Lifecycle", lifecycle}}})}};
    WriteFile(recipes_ + "/" + name + "-1.0.0.json", recipe.dump(2));
    components_.push_back(name);
  }

  // `deployment create ... --wait`, which must succeed.
  void Deploy(const std::vector<std::string>& args) {
    std::vector<std::string> full = {"deployment", "create"};
    full.insert(full.end(), args.begin(), args.end());
    full.insert(full.end(), {"--wait", "--timeout", "40"});
    auto r = n().Cli(full, 50000ms);
    auto rows = ParseDeployments(r.out);
    ASSERT_EQ(r.exit_code, 0) << r.Describe() << "\ngreengrass.log:\n" << n().Log();
    ASSERT_FALSE(rows.empty()) << r.Describe();
    ASSERT_EQ(rows.back().status, "SUCCEEDED") << r.Describe();
  }
  // Deploys version 1.0.0 of each of `names` from the recipes written so far.
  void DeployComponents(const std::vector<std::string>& names) {
    std::vector<std::string> args = {"-r", recipes_};
    for (const auto& name : names) args.insert(args.end(), {"-m", name + "=1.0.0"});
    Deploy(args);
  }

  Results ReadResults(const std::string& component) const {
    Results out;
    std::istringstream in(ReadFile(n_->WorkDir(component) + "/results.jsonl"));
    for (std::string line; std::getline(in, line);) {
      if (line.empty()) continue;
      Json parsed = Json::parse(line, nullptr, false);
      if (!parsed.is_discarded()) out.lines.push_back(std::move(parsed));
    }
    return out;
  }
  // Waits (bounded) until the component's script recorded `check`; its results then.
  Results WaitResult(const std::string& component, const std::string& check,
                     milliseconds timeout = 40000ms) const {
    Results r;
    WaitFor(
        [&] {
          r = ReadResults(component);
          return r.Find(check) != nullptr || r.Find("uncaught") != nullptr;
        },
        timeout, 25ms);
    return r;
  }
  // The recorded line for `check`, failing the test (with every line) when absent.
  static Json Line(const Results& r, const std::string& check) {
    const Json* line = r.Find(check);
    if (line == nullptr) {
      std::string all;
      for (const auto& l : r.lines) all += l.dump() + "\n";
      ADD_FAILURE() << "no result '" << check << "'; recorded:\n" << all;
      return Json::object();
    }
    EXPECT_EQ(r.Find("uncaught"), nullptr) << r.Find("uncaught")->dump();
    return *line;
  }

  std::string node_;
  std::string recipes_;
  std::vector<std::string> components_;
  std::unique_ptr<Nucleus> n_;
};

// --- publish/subscribe -----------------------------------------------------------------

TEST_F(IpcSdk, PublishSubscribeFiltersModesAndStreams) {
  const std::string main = "lichen.sdk.PubSub", peer = "lichen.sdk.Peer";
  WriteRecipe(main, "pubsub.js", {}, {{"accessControl", PubSubPolicy(main + ":pubsub:1", {"*"})}});
  WriteRecipe(peer, "peer.js", {}, {{"accessControl", PubSubPolicy(peer + ":pubsub:1", {"*"})}});
  DeployComponents({main, peer});
  const Results r = WaitResult(main, "done", 60000ms);

  EXPECT_TRUE(Line(r, "peer_ready").value("ok", false)) << n().Log(peer);

  const Json json = Line(r, "json");
  EXPECT_TRUE(Ok(json["publish"])) << json.dump();
  EXPECT_EQ(
      P(json["events"]),
      P(Json::array({{{"kind", "json"}, {"topic", "sdk/a/json"}, {"message", json["sent"]}}})))
      << json.dump();

  const Json binary = Line(r, "binary");
  EXPECT_TRUE(Ok(binary["publish"])) << binary.dump();
  EXPECT_EQ(
      P(binary["events"]),
      P(Json::array({{{"kind", "binary"}, {"topic", "sdk/a/bin"}, {"message", binary["sent"]}}})))
      << binary.dump();

  // `+` is one level; `#` one or more trailing levels.
  EXPECT_EQ(Line(r, "plus")["topics"], Json::array({"sdk/x/p", "sdk/z/p"}));
  EXPECT_EQ(Line(r, "hash")["topics"], Json::array({"sdk/h/1", "sdk/h/1/2", "sdk/h/end"}));

  // Defaults: FROM_OTHERS with a wildcard, ALL without; explicit modes as asked. "self"
  // came from another connection of the same component.
  const Json modes = Line(r, "modes");
  EXPECT_TRUE(Ok(modes["self"])) << modes.dump();
  EXPECT_TRUE(modes.value("got", false)) << modes.dump();
  EXPECT_EQ(modes["wildcard_default"], Json::array({"peer"})) << modes.dump();
  EXPECT_EQ(modes["exact_default"], Json::array({"self", "peer"})) << modes.dump();
  EXPECT_EQ(modes["exact_others"], Json::array({"peer"})) << modes.dump();
  EXPECT_EQ(modes["wildcard_all"], Json::array({"self", "peer"})) << modes.dump();

  // A subscription's first message is its response even under a flood: the client took
  // every first message as SubscribeToTopicResponse.
  const Json flood = Line(r, "events_after_response");
  EXPECT_EQ(flood.value("subscribed", 0), 25) << flood.dump();
  EXPECT_EQ(flood["failures"], Json::array()) << flood.dump();
  EXPECT_EQ(flood["stream_errors"], Json::array()) << flood.dump();
  EXPECT_TRUE(flood.value("all_received", false)) << flood.dump();
  EXPECT_GT(flood.value("flood_published", 0), 0) << flood.dump();
  EXPECT_EQ(flood["flood_errors"], Json::array()) << flood.dump();

  // Closing the stream stopped its delivery; a new stream on the connection works.
  const Json closed = Line(r, "stream_close");
  EXPECT_TRUE(Ok(closed["after"])) << closed.dump();
  EXPECT_EQ(closed["closed"], Json::array({1})) << closed.dump();
  EXPECT_EQ(closed["control"], Json::array({1, 2, 3})) << closed.dump();
  EXPECT_EQ(closed["reopened"], Json::array({3})) << closed.dump();

  // A closed connection's subscription is gone; the others carry on.
  const Json disconnect = Line(r, "disconnect");
  EXPECT_TRUE(Ok(disconnect["after"])) << disconnect.dump();
  EXPECT_EQ(disconnect["gone"], Json::array({1})) << disconnect.dump();
  EXPECT_EQ(disconnect["control"], Json::array({1, 2})) << disconnect.dump();

  // Wildcards are refused as publish topics (ServiceError: the only non-auth error
  // PublishToTopic declares); the connection stays usable.
  const Json wild = Line(r, "wildcard_publish");
  for (const char* k : {"plus", "hash", "star"}) {
    EXPECT_EQ(Code(wild[k]), "ServiceError") << k << ": " << wild.dump();
  }
  EXPECT_TRUE(Ok(wild["still"])) << wild.dump();
}

TEST_F(IpcSdk, ServerGoingAwayIsSeenByTheClient) {
  const std::string name = "lichen.sdk.Watch";
  WriteRecipe(name, "watch.js", {}, {{"accessControl", PubSubPolicy(name + ":pubsub:1", {"*"})}});
  DeployComponents({name});
  ASSERT_NE(WaitResult(name, "ready").Find("ready"), nullptr) << n().Log(name);
  // kill -9: the kernel closes the daemon's sockets while the component keeps running.
  n().Kill9();
  const Results r = WaitResult(name, "done");
  const Json gone = Line(r, "server_gone");
  EXPECT_TRUE(gone.value("seen", false)) << gone.dump();
  EXPECT_TRUE(gone["disconnected"].is_object()) << gone.dump();
  EXPECT_TRUE(gone.value("stream_ended", false)) << gone.dump();
  EXPECT_FALSE(Ok(Line(r, "call_after"))) << Line(r, "call_after").dump();
}

// --- configuration ---------------------------------------------------------------------

TEST_F(IpcSdk, ConfigurationGetUpdateAndSubscribe) {
  const std::string name = "lichen.sdk.Config", other = "lichen.sdk.ConfigOther";
  WriteRecipe(name, "config.js", {{"LICHEN_SDK_OTHER", other}},
              {{"a", {{"b", 1}, {"leaf", "x"}}}, {"n", 5}});
  WriteShellRecipe(other, {{"Run", "exec sleep 600"}}, {{"shared", {{"k", "v"}}}});
  DeployComponents({name, other});

  Results r = WaitResult(name, "ready_for_deploy");
  const Json get = Line(r, "get");
  EXPECT_EQ(
      P(get["whole"]["value"]),
      P(Json({{"componentName", name}, {"value", {{"a", {{"b", 1}, {"leaf", "x"}}}, {"n", 5}}}})))
      << get.dump();
  EXPECT_EQ(P(get["nested"]["value"]["value"]), P(Json({{"b", 1}, {"leaf", "x"}}))) << get.dump();
  EXPECT_EQ(P(get["leaf"]["value"]["value"]), P(Json({{"leaf", "x"}}))) << get.dump();
  EXPECT_EQ(P(get["other"]["value"]), P(Json({{"componentName", other}, {"value", {{"k", "v"}}}})))
      << get.dump();
  for (const char* k : {"missing", "missing_below_leaf", "missing_component"}) {
    EXPECT_EQ(Code(get[k]), "ResourceNotFoundError") << k << ": " << get.dump();
  }

  const Json subscribed = Line(r, "subscribed");
  for (const char* k : {"a", "n", "other"}) EXPECT_TRUE(Ok(subscribed[k])) << subscribed.dump();

  const Json update = Line(r, "update_own");
  EXPECT_TRUE(Ok(update["update"])) << update.dump();
  EXPECT_EQ(P(update["after"]["value"]["value"]), P(Json({{"b", 2}, {"leaf", "x"}, {"c", "new"}})))
      << update.dump();
  Json keys = Json::array();
  for (const auto& e : update["events"]) {
    EXPECT_EQ(e.value("componentName", ""), name) << update.dump();
    keys.push_back(e["keyPath"]);
  }
  EXPECT_NE(std::find(keys.begin(), keys.end(), Json::array({"a", "b"})), keys.end())
      << update.dump();
  EXPECT_NE(std::find(keys.begin(), keys.end(), Json::array({"a", "c"})), keys.end())
      << update.dump();
  EXPECT_EQ(update["n_events"], Json::array()) << "a change under a/ reached a watch on n";

  const Json older = Line(r, "update_older");
  EXPECT_EQ(Code(older["older"]), "FailedUpdateConditionCheckError") << older.dump();
  EXPECT_EQ(Code(older["older_leaf"]), "FailedUpdateConditionCheckError") << older.dump();
  EXPECT_EQ(P(older["after"]["value"]["value"]), P(Json({{"b", 2}}))) << older.dump();

  const Json acl = Line(r, "update_acl");
  EXPECT_EQ(Code(acl["under"]), "InvalidArgumentsError") << acl.dump();
  EXPECT_EQ(Code(acl["top"]), "InvalidArgumentsError") << acl.dump();
  EXPECT_FALSE(acl["after"]["value"]["value"].contains("accessControl")) << acl.dump();

  // A deployment's MERGE reaches the subscriptions under the paths it changes.
  Deploy({"-c", Json({{name, {{"MERGE", {{"a", {{"fromDeploy", 1}}}, {"n", 6}}}}},
                      {other, {{"MERGE", {{"shared", {{"k", "w"}}}}}}}})
                    .dump()});
  r = WaitResult(name, "ready_for_reset");
  const Json merged = Line(r, "deploy_merge");
  EXPECT_TRUE(merged.value("merged", false)) << merged.dump();
  EXPECT_EQ(
      P(merged["a"]),
      P(Json::array({{{"componentName", name}, {"keyPath", Json::array({"a", "fromDeploy"})}}})))
      << merged.dump();
  EXPECT_EQ(P(merged["n"]),
            P(Json::array({{{"componentName", name}, {"keyPath", Json::array({"n"})}}})))
      << merged.dump();
  EXPECT_EQ(P(merged["other"]),
            P(Json::array({{{"componentName", other}, {"keyPath", Json::array({"shared", "k"})}}})))
      << merged.dump();
  EXPECT_EQ(P(merged["value"]["value"]["value"]),
            P(Json({{"a", {{"b", 2}, {"leaf", "x"}, {"c", "new"}, {"fromDeploy", 1}}}, {"n", 6}})))
      << merged.dump();

  // RESET puts the recipe default back, and says so.
  Deploy({"-c", Json({{name, {{"RESET", Json::array({"/a/b"})}}}}).dump()});
  r = WaitResult(name, "done");
  const Json reset = Line(r, "deploy_reset");
  EXPECT_TRUE(reset.value("reset", false)) << reset.dump();
  EXPECT_EQ(P(reset["a"]),
            P(Json::array({{{"componentName", name}, {"keyPath", Json::array({"a", "b"})}}})))
      << reset.dump();
  EXPECT_EQ(P(reset["value"]["value"]["value"]), P(Json({{"b", 1}}))) << reset.dump();
  EXPECT_EQ(reset["stream_errors"], Json::array()) << reset.dump();
  // The script ran once: configuration changes did not restart it.
  EXPECT_EQ(r.Count("get"), 1u);
}

// --- UpdateState -----------------------------------------------------------------------

TEST_F(IpcSdk, UpdateStateReportsRunningAndErrored) {
  const std::string startup = "lichen.sdk.StateStartup", run = "lichen.sdk.StateRun";
  WriteRecipe(startup, "state.js", {{"LICHEN_SDK_MODE", "startup"}}, Json::object(), "Startup");
  WriteRecipe(run, "state.js", {{"LICHEN_SDK_MODE", "run"}});
  auto created = n().Cli(
      {"deployment", "create", "-r", recipes_, "-m", startup + "=1.0.0", "-m", run + "=1.0.0"});
  ASSERT_EQ(created.exit_code, 0) << created.Describe();
  const std::string id = SubmittedId(created.out);
  ASSERT_FALSE(id.empty()) << created.Describe();

  // A Startup process that keeps running leaves its component STARTING until it reports.
  ASSERT_NE(WaitResult(startup, "startup_started").Find("startup_started"), nullptr)
      << n().Log(startup);
  auto rows = n().Components();
  EXPECT_EQ(rows[startup].state, "STARTING") << n().Cli({"component", "list"}).out;
  WriteFile(n().WorkDir(startup) + "/report", "");
  Results r = WaitResult(startup, "report_running");
  EXPECT_TRUE(Ok(Line(r, "report_running")["result"])) << Line(r, "report_running").dump();
  EXPECT_TRUE(WaitFor([&] { return n().Components()[startup].state == "RUNNING"; }, 10000ms))
      << n().Cli({"component", "list"}).out;
  auto deployment = n().WaitDeployment(id);
  ASSERT_TRUE(deployment.has_value());
  EXPECT_EQ(deployment->status, "SUCCEEDED");

  // A Run-only component is RUNNING already; reporting RUNNING is accepted.
  r = WaitResult(run, "running");
  EXPECT_TRUE(Ok(Line(r, "running")["result"])) << Line(r, "running").dump();
  auto details = n().Component(run);
  ASSERT_TRUE(details.has_value());
  EXPECT_EQ(details->state, "RUNNING");

  // ERRORED: the nucleus handles it as an error (ERRORED, then a restart of Run).
  const auto before = n().ProcessOf(run, "state.js");
  WriteFile(n().WorkDir(run) + "/go-errored", "");
  r = WaitResult(run, "restarted", 20000ms);
  EXPECT_NE(r.Find("reporting_errored"), nullptr);
  ASSERT_NE(r.Find("restarted"), nullptr) << n().Log(run) << "\n" << n().Log();
  if (const Json* errored = r.Find("errored")) {
    // Usually the answer arrives before the stop that follows; when it does, it is {}.
    EXPECT_TRUE(Ok((*errored)["result"])) << errored->dump();
  }
  EXPECT_TRUE(n().WaitLog("", "serviceName=" + run + ", currentState=RUNNING, newState=ERRORED"))
      << n().Log();
  if (before) {
    EXPECT_FALSE(StillRunning(*before));
  }
  EXPECT_TRUE(WaitFor([&] { return n().Components()[run].state == "RUNNING"; }, 10000ms))
      << n().Cli({"component", "list"}).out;
}

// --- the CLI's operations on other components ------------------------------------------

TEST_F(IpcSdk, ComponentOperationsNeedACliPolicy) {
  const std::string target = "lichen.sdk.Target", denied = "lichen.sdk.CliDenied",
                    admin = "lichen.sdk.CliAdmin";
  WriteShellRecipe(target, {{"Run", "exec sleep 600"}});
  const Json env = {{"LICHEN_SDK_TARGET", target}, {"LICHEN_SDK_UNLISTED", denied}};
  Json denied_env = env;
  denied_env["LICHEN_SDK_MODE"] = "denied";
  WriteRecipe(denied, "cli_ops.js", denied_env);
  Json admin_env = env;
  admin_env["LICHEN_SDK_MODE"] = "admin";
  const Json cli_policy = {
      {"aws.greengrass.Cli",
       {{admin + ":cli:1",
         {{"policyDescription", "conformance test"},
          {"operations",
           {"aws.greengrass#GetComponentDetails", "aws.greengrass#ListComponents",
            "aws.greengrass#RestartComponent", "aws.greengrass#StopComponent"}},
          {"resources", {target, "lichen.sdk.Missing"}}}}}}};
  WriteRecipe(admin, "cli_ops.js", admin_env, {{"accessControl", cli_policy}});

  DeployComponents({target, denied});
  std::optional<ProcInfo> first;
  ASSERT_TRUE(
      WaitFor([&] { return (first = n().ProcessOf(target, "sleep 600")).has_value(); }, 5000ms));
  Results r = WaitResult(denied, "done");
  // Refused with ServiceError: none of these operations declares UnauthorizedError.
  const Json refused = Line(r, "denied");
  for (const char* k : {"list", "details", "restart", "stop"}) {
    EXPECT_EQ(Code(refused[k]), "ServiceError") << k << ": " << refused.dump();
    EXPECT_NE(refused[k].value("message", "").find("not authorized"), std::string::npos)
        << refused.dump();
  }
  EXPECT_TRUE(Ok(Line(r, "denied_then")["config"])) << Line(r, "denied_then").dump();
  EXPECT_TRUE(StillRunning(*first));
  EXPECT_EQ(n().ComponentState(target), "RUNNING");

  DeployComponents({admin});
  r = WaitResult(admin, "ready_for_restart");
  const Json read = Line(r, "read");
  ASSERT_TRUE(Ok(read["list"])) << read.dump();
  std::map<std::string, std::string> states;
  for (const auto& c : read["list"]["value"]["components"]) {
    states[c.value("componentName", "")] = c.value("state", "");
  }
  EXPECT_EQ(states[target], "RUNNING") << read.dump();
  EXPECT_TRUE(states.count(denied)) << read.dump();
  EXPECT_TRUE(states.count(admin)) << read.dump();
  ASSERT_TRUE(Ok(read["details"])) << read.dump();
  const Json d = read["details"]["value"]["componentDetails"];
  EXPECT_EQ(d.value("componentName", ""), target);
  EXPECT_EQ(d.value("version", ""), "1.0.0");
  EXPECT_EQ(d.value("state", ""), "RUNNING");
  EXPECT_EQ(Code(read["missing"]), "ResourceNotFoundError") << read.dump();
  EXPECT_EQ(Code(read["empty"]), "InvalidArgumentsError") << read.dump();
  EXPECT_EQ(Code(read["unlisted"]), "ServiceError") << read.dump();

  const Json errors = Line(r, "errors");
  EXPECT_EQ(Code(errors["restart_missing"]), "ComponentNotFoundError") << errors.dump();
  EXPECT_EQ(Code(errors["stop_missing"]), "ComponentNotFoundError") << errors.dump();
  EXPECT_EQ(Code(errors["restart_empty"]), "InvalidArgumentsError") << errors.dump();
  EXPECT_EQ(Code(errors["stop_empty"]), "InvalidArgumentsError") << errors.dump();
  EXPECT_EQ(Code(errors["restart_unlisted"]), "ServiceError") << errors.dump();
  EXPECT_EQ(Code(errors["stop_unlisted"]), "ServiceError") << errors.dump();
  EXPECT_EQ(n().ComponentState(denied), "FINISHED");  // untouched by the refused calls

  r = WaitResult(admin, "done");
  const Json restart = Line(r, "restart");
  EXPECT_EQ(restart["restart"]["value"].value("restartStatus", ""), "SUCCEEDED") << restart.dump();
  EXPECT_TRUE(Line(r, "restarted").value("back", false)) << Line(r, "restarted").dump();
  EXPECT_FALSE(StillRunning(*first));  // the restart replaced the process
  const Json stop = Line(r, "stop");
  EXPECT_EQ(stop["stop"]["value"].value("stopStatus", ""), "SUCCEEDED") << stop.dump();
  EXPECT_TRUE(stop.value("finished", false)) << stop.dump();
  EXPECT_EQ(n().Components()[target].state, "FINISHED") << n().Cli({"component", "list"}).out;
  EXPECT_TRUE(WaitFor([&] { return n().ProcessesOf(target).empty(); }, 5000ms))
      << DescribeProcesses(n().ProcessesOf(target));
}

// --- authorization ---------------------------------------------------------------------

TEST_F(IpcSdk, PubSubAuthorizationAndPolicyReload) {
  const std::string name = "lichen.sdk.Auth";
  const Json acl = {
      {"aws.greengrass.ipc.pubsub",
       {{"publish",
         {{"operations", Json::array({"aws.greengrass#PublishToTopic"})},
          {"resources", {"auth/allowed", "auth/glob/*"}}}},
        {"subscribe",
         {{"operations", Json::array({"aws.greengrass#SubscribeToTopic"})},
          // MQTT wildcards are literal in pubsub resources; ${*} is a literal star.
          {"resources", {"auth/sub/allowed", "auth/lit/+/x", "auth/lit/#", "auth/esc/${*}"}}}},
        {"any", {{"operations", Json::array({"*"})}, {"resources", {"auth/any/*"}}}}}}};
  WriteRecipe(name, "auth.js", {}, {{"accessControl", acl}});
  DeployComponents({name});
  Results r = WaitResult(name, "before_redeploy");

  const Json pub = Line(r, "publish");
  for (const char* k : {"allowed", "after_denied", "glob_deep", "glob_empty", "any_operation"}) {
    EXPECT_TRUE(Ok(pub[k])) << k << ": " << pub.dump();
  }
  for (const char* k : {"denied", "glob_prefix_only", "literal_plus_level", "subscribe_only"}) {
    EXPECT_EQ(Code(pub[k]), "UnauthorizedError") << k << ": " << pub.dump();
  }
  const Json sub = Line(r, "subscribe");
  for (const char* k : {"allowed", "after_denied", "literal_plus", "literal_hash", "escaped_star",
                        "any_operation"}) {
    EXPECT_TRUE(Ok(sub[k])) << k << ": " << sub.dump();
  }
  for (const char* k :
       {"denied", "plus_as_level", "hash_as_levels", "escaped_star_other", "publish_only"}) {
    EXPECT_EQ(Code(sub[k]), "UnauthorizedError") << k << ": " << sub.dump();
  }
  const Json same = Line(r, "same_connection");
  EXPECT_EQ(Code(same["denied"]), "UnauthorizedError") << same.dump();
  EXPECT_EQ(Code(same["d2"]), "UnauthorizedError") << same.dump();
  EXPECT_TRUE(same.value("subscribed", false)) << same.dump();
  EXPECT_TRUE(Ok(same["ok"])) << same.dump();
  EXPECT_TRUE(same.value("got", false)) << same.dump();
  EXPECT_EQ(same.value("stray", -1), 0) << same.dump();
  EXPECT_EQ(Code(Line(r, "before_redeploy")["first"]), "UnauthorizedError");

  // A deployment adds a policy: the running component's next call is allowed.
  Deploy({"-c", Json({{name,
                       {{"MERGE",
                         {{"accessControl",
                           {{"aws.greengrass.ipc.pubsub",
                             {{"later",
                               {{"operations", Json::array({"aws.greengrass#PublishToTopic"})},
                                {"resources", Json::array({"auth/later"})}}}}}}}}}}}})
                    .dump()});
  r = WaitResult(name, "done");
  const Json after = Line(r, "after_redeploy");
  EXPECT_TRUE(after.value("allowed", false)) << after.dump();
  EXPECT_EQ(Code(after["still_denied"]), "UnauthorizedError") << after.dump();
  EXPECT_EQ(r.Count("before_redeploy"), 1u) << "the script restarted: the test proves nothing";
}

// --- cloud operations without a cloud --------------------------------------------------

TEST_F(IpcSdk, CloudOperationsAnswerThatNoConnectionIsAvailable) {
  const std::string name = "lichen.sdk.Cloud";
  Json acl = PubSubPolicy(name + ":pubsub:1", {"cloud/local"});
  acl["aws.greengrass.ipc.mqttproxy"] = {
      {name + ":mqtt:1",
       {{"operations", {"aws.greengrass#PublishToIoTCore", "aws.greengrass#SubscribeToIoTCore"}},
        {"resources", Json::array({"cloud/ok"})}}}};
  acl["aws.greengrass.SecretManager"] = {
      {name + ":secret:1",
       {{"operations", Json::array({"aws.greengrass#GetSecretValue"})},
        {"resources", Json::array({"arn:aws:secretsmanager:us-west-2:123456789012:secret:ok"})}}}};
  WriteRecipe(name, "cloud.js", {}, {{"accessControl", acl}});
  DeployComponents({name});
  const Results r = WaitResult(name, "done");

  const Json allowed = Line(r, "allowed");
  for (const char* k : {"publish", "subscribe", "secret"}) {
    EXPECT_EQ(Code(allowed[k]), "ServiceError") << k << ": " << allowed.dump();
    const std::string message = allowed[k].value("message", "");
    EXPECT_NE(message.find("not available"), std::string::npos) << k << ": " << allowed.dump();
    EXPECT_NE(message.find("connection"), std::string::npos) << k << ": " << allowed.dump();
  }
  const Json denied = Line(r, "denied");
  for (const char* k : {"publish", "subscribe", "secret"}) {
    EXPECT_EQ(Code(denied[k]), "UnauthorizedError") << k << ": " << denied.dump();
  }
  const Json after = Line(r, "after");
  EXPECT_EQ(Code(after["publish"]), "ServiceError") << after.dump();
  EXPECT_TRUE(Ok(after["local"])) << after.dump();
}

// --- identity ----------------------------------------------------------------------------

TEST_F(IpcSdk, WrongSvcuidIsRefusedAtConnect) {
  const std::string name = "lichen.sdk.BadToken";
  WriteRecipe(name, "badtoken.js");
  DeployComponents({name});
  const Results r = WaitResult(name, "done");
  for (const char* k : {"bogus", "same_length", "real_with_suffix"}) {
    const Json bad = Line(r, k);
    EXPECT_FALSE(bad.value("connected", true)) << k << ": " << bad.dump();
    EXPECT_FALSE(Ok(bad)) << k << ": " << bad.dump();
    // Refused by the CONNECT_ACK, not by a dropped connection: the client says why.
    EXPECT_NE(bad.dump().find("connack"), std::string::npos) << k << ": " << bad.dump();
  }
  const Json real = Line(r, "real");
  EXPECT_TRUE(Ok(real["connect"])) << real.dump();
  EXPECT_TRUE(Ok(real["call"])) << real.dump();
  EXPECT_TRUE(n().Alive());
}

// --- many connections --------------------------------------------------------------------

TEST_F(IpcSdk, FiftyConcurrentConnectionsAllExchangeMessages) {
  const std::string name = "lichen.sdk.Many";
  WriteRecipe(name, "many.js", {{"LICHEN_SDK_CLIENTS", "50"}},
              {{"accessControl", PubSubPolicy(name + ":pubsub:1", {"many/*"})}});
  DeployComponents({name});
  const Results r = WaitResult(name, "done", 60000ms);
  const Json connected = Line(r, "connected");
  EXPECT_EQ(connected.value("connected", 0), 50) << connected.dump();
  const Json exchanged = Line(r, "exchanged");
  EXPECT_EQ(exchanged.value("subscribed", 0), 50) << exchanged.dump();
  EXPECT_EQ(exchanged.value("failed_publish_count", -1), 0) << exchanged.dump();
  EXPECT_TRUE(exchanged.value("complete", false)) << exchanged.dump();
  EXPECT_EQ(exchanged["bad_counts"], Json::array()) << exchanged.dump();
  EXPECT_EQ(exchanged.value("wrong_sender", -1), 0) << exchanged.dump();
  EXPECT_EQ(exchanged.value("duplicates", -1), 0) << exchanged.dump();
}

}  // namespace
}  // namespace lichen::harness
