// `deployment create|list|status|cancel`: local deployments through the nucleus's IPC
// socket, with the Greengrass CLI's flags.
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <tuple>

#include "cli/daemon.h"
#include "deploy/document.h"

namespace lichen::cli {
namespace {

namespace fs = std::filesystem;

// How often `deployment create --wait` asks for the status.
constexpr std::chrono::milliseconds kWaitPollInterval{100};

struct CreateOptions {
  std::string recipe_dir;
  std::string artifact_dir;
  std::vector<std::string> merge;     // NAME=VERSION, possibly comma-separated
  std::vector<std::string> remove;    // NAME, possibly comma-separated
  std::string group_id;               // empty: the nucleus's LOCAL_DEPLOYMENT group
  std::vector<std::string> run_with;  // NAME:posixUser=user[:group]
  std::string update_config;          // JSON text or a file holding it
  std::string system_limits;          // JSON text or a file holding it
  std::string failure_policy;         // ROLLBACK | DO_NOTHING; empty: the default
  bool wait = false;
  double wait_seconds = 300;
};

std::vector<std::string> SplitCommas(const std::vector<std::string>& values) {
  std::vector<std::string> out;
  for (const auto& v : values) {
    std::stringstream in(v);
    for (std::string item; std::getline(in, item, ',');) {
      if (!item.empty()) out.push_back(item);
    }
  }
  return out;
}

// "~/x" as the shell would expand it (a flag written --recipeDir=~/x is not expanded).
std::string ExpandTilde(const std::string& path) {
  const char* home = std::getenv("HOME");
  if (home != nullptr && (path == "~" || path.starts_with("~/"))) return home + path.substr(1);
  return path;
}

// An existing folder as an absolute path: the nucleus runs in its own working directory.
Result<std::string> AbsoluteFolder(const std::string& flag, const std::string& path) {
  std::error_code ec;
  fs::path p = fs::absolute(ExpandTilde(path), ec);
  if (ec || !fs::is_directory(p, ec)) return MakeError(flag + " " + path + ": no such folder");
  std::string s = p.lexically_normal().string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

// A JSON argument given inline or as the name of a file holding it.
Result<Json> ReadJsonArgument(const std::string& flag, const std::string& arg) {
  std::string text = arg;
  const std::string path = ExpandTilde(arg);
  std::error_code ec;
  if (!arg.empty() && arg.front() != '{' && fs::is_regular_file(path, ec)) {
    std::ifstream in(path);
    std::ostringstream buf;
    buf << in.rdbuf();
    if (!in) return MakeError(flag + ": cannot read " + path);
    text = buf.str();
  }
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return MakeError(flag + " is neither a JSON object nor a readable file holding one");
  }
  return j;
}

// --systemLimits {"Comp": {"cpus": 0.5, "memory": 102400}} into the run-with info.
Result<void> AddSystemLimits(const Json& limits, deploy::LocalDeployment& d) {
  if (!limits.is_object()) {
    return MakeError("--systemLimits must be {\"Component\": {\"cpus\": N, \"memory\": KB}}");
  }
  for (const auto& [name, value] : limits.items()) {
    if (!value.is_object()) return MakeError("--systemLimits." + name + " must be an object");
    deploy::RunWith& rw = d.run_with[name];
    for (const auto& [key, v] : value.items()) {
      if (key == "cpus" && v.is_number() && v.get<double>() > 0) {
        rw.cpus = v.get<double>();
      } else if (key == "memory" && v.is_number_integer() && v.get<int64_t>() > 0) {
        rw.memory_kb = v.get<int64_t>();
      } else {
        return MakeError("--systemLimits." + name + "." + key +
                         " is not understood (cpus: a positive number, memory: KB > 0)");
      }
    }
  }
  return {};
}

// The deployment the flags describe, checked the way the nucleus will check it.
Result<deploy::LocalDeployment> BuildDeployment(const CreateOptions& o) {
  deploy::LocalDeployment d;
  if (!o.group_id.empty()) d.group_name = o.group_id;
  for (const auto& flag : SplitCommas(o.merge)) {
    auto merge = deploy::ParseMergeFlag(flag);
    if (!merge) return merge.error();
    if (!d.components_to_add.emplace(merge->first, merge->second).second) {
      return MakeError("--merge names " + merge->first + " twice");
    }
  }
  d.components_to_remove = SplitCommas(o.remove);
  for (const auto& flag : o.run_with) {
    auto rw = deploy::ParseRunWithFlag(flag);
    if (!rw) return rw.error();
    d.run_with[rw->first].posix_user = rw->second.posix_user;
  }
  if (!o.system_limits.empty()) {
    auto limits = ReadJsonArgument("--systemLimits", o.system_limits);
    if (!limits) return limits.error();
    if (auto ok = AddSystemLimits(*limits, d); !ok) return ok.error();
  }
  if (!o.update_config.empty()) {
    auto config = ReadJsonArgument("--update-config", o.update_config);
    if (!config) return config.error();
    auto updates = deploy::ParseConfigurationUpdates(*config);
    if (!updates) return MakeError("--update-config: " + updates.error().message);
    d.configuration = std::move(*updates);
  }
  for (auto [flag, given, field] :
       {std::tuple{"--recipeDir", &o.recipe_dir, &d.recipe_dir},
        std::tuple{"--artifactDir", &o.artifact_dir, &d.artifact_dir}}) {
    if (given->empty()) continue;
    auto folder = AbsoluteFolder(flag, *given);
    if (!folder) return folder.error();
    *field = std::move(*folder);
  }
  if (o.failure_policy == "ROLLBACK") d.failure_policy = deploy::FailurePolicy::kRollback;
  // The nucleus reads the request with the same parser: refuse here what it would refuse
  // there (names, versions, a component both merged and removed).
  if (auto checked = deploy::ParseCreateLocalDeployment(deploy::ToRequestJson(d)); !checked) {
    return checked.error();
  }
  return d;
}

bool IsFinal(const std::string& status) {
  return status == "SUCCEEDED" || status == "FAILED" || status == "CANCELED" ||
         status == "REJECTED";
}

std::string JoinList(const Json& list) {
  std::string out;
  for (const auto& item : list) {
    if (!out.empty()) out += ", ";
    out += item.is_string() ? item.get<std::string>() : item.dump();
  }
  return out;
}

// "<id>: <status>" and the detail lines the nucleus gave, each prefixed by `indent`.
void PrintDeployment(std::ostream& out, const Json& d, const std::string& indent) {
  out << Text(d, "deploymentId") << ": " << Text(d, "status") << "\n";
  if (auto s = Text(d, "progress"); !s.empty()) out << indent << "Progress: " << s << "\n";
  auto it = d.find("deploymentStatusDetails");
  if (it == d.end() || !it->is_object()) return;
  const Json& details = *it;
  if (auto s = Text(details, "detailedDeploymentStatus"); !s.empty()) {
    out << indent << "Detailed Status: " << s << "\n";
  }
  for (const auto& [key, label] : {std::pair{"deploymentErrorStack", "Deployment Error Stack: "},
                                   std::pair{"deploymentErrorTypes", "Deployment Error Types: "}}) {
    auto list = details.find(key);
    if (list != details.end() && list->is_array() && !list->empty()) {
      out << indent << label << JoinList(*list) << "\n";
    }
  }
  if (auto s = Text(details, "deploymentFailureCause"); !s.empty()) {
    out << indent << "Failure Cause: " << s << "\n";
  }
}

// The "deployment" object of a GetLocalDeploymentStatus reply, or nothing (reported).
std::optional<Json> GetStatus(Context& ctx, ipc::IpcClient& client, const std::string& id,
                              std::chrono::milliseconds timeout = kCallTimeout) {
  auto reply =
      CallOrReport(ctx, client, "GetLocalDeploymentStatus", Json{{"deploymentId", id}}, timeout);
  if (!reply) return std::nullopt;
  auto it = reply->find("deployment");
  if (it == reply->end() || !it->is_object()) {
    Report(ctx, "GetLocalDeploymentStatus: the reply has no deployment");
    return std::nullopt;
  }
  return std::move(*it);
}

// Polls until the deployment reaches a final status or the time is up.
void WaitForDeployment(Context& ctx, ipc::IpcClient& client, const std::string& id,
                       double seconds) {
  using Clock = std::chrono::steady_clock;
  const auto deadline =
      Clock::now() + std::chrono::duration_cast<Clock::duration>(
                         std::chrono::duration<double>(seconds < 0 ? 0 : seconds));
  while (true) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    auto status = GetStatus(
        ctx, client, id,
        std::clamp(left, std::chrono::milliseconds(1000), std::chrono::milliseconds(kCallTimeout)));
    if (!status) return;
    const std::string s = Text(*status, "status");
    if (IsFinal(s)) {
      PrintDeployment(ctx.out, *status, "");
      ctx.exit_code.value = s == "SUCCEEDED" ? kExitOk : kExitFailure;
      return;
    }
    if (Clock::now() >= deadline) {
      PrintDeployment(ctx.out, *status, "");
      std::ostringstream secs;
      secs << seconds;
      Report(ctx, "deployment " + id + " is still " + s + " after " + secs.str() + " s");
      return;
    }
    std::this_thread::sleep_for(kWaitPollInterval);
  }
}

void RunCreate(Context& ctx, const CreateOptions& o) {
  auto d = BuildDeployment(o);
  if (!d) {
    Report(ctx, d.error().message, kExitUsage);
    return;
  }
  auto client = ConnectOrReport(ctx);
  if (!client) return;
  auto reply = CallOrReport(ctx, *client, "CreateLocalDeployment", deploy::ToRequestJson(*d));
  if (!reply) return;
  const std::string id = Text(*reply, "deploymentId");
  if (id.empty()) {
    Report(ctx, "CreateLocalDeployment: the reply has no deploymentId");
    return;
  }
  ctx.out << "Local deployment submitted! Deployment Id: " << id << "\n";
  if (o.wait) {
    ctx.out.flush();  // the id is worth seeing while the wait goes on
    WaitForDeployment(ctx, *client, id, o.wait_seconds);
  }
}

void RunList(Context& ctx) {
  auto client = ConnectOrReport(ctx);
  if (!client) return;
  auto reply = CallOrReport(ctx, *client, "ListLocalDeployments", Json::object());
  if (!reply) return;
  auto it = reply->find("localDeployments");
  if (it == reply->end() || !it->is_array()) return;  // none yet
  for (const auto& d : *it) PrintDeployment(ctx.out, d, "    ");
}

void RunStatus(Context& ctx, const std::string& id) {
  auto client = ConnectOrReport(ctx);
  if (!client) return;
  if (auto status = GetStatus(ctx, *client, id)) PrintDeployment(ctx.out, *status, "");
}

void RunCancel(Context& ctx, const std::string& id) {
  auto client = ConnectOrReport(ctx);
  if (!client) return;
  auto reply = CallOrReport(ctx, *client, "CancelLocalDeployment", Json{{"deploymentId", id}});
  if (!reply) return;
  const std::string message = Text(*reply, "message");
  ctx.out << (message.empty() ? "Cancel requested for deployment " + id : message) << "\n";
}

}  // namespace

void AddDeploymentCommands(CLI::App& app, Context& ctx) {
  CLI::App* group =
      app.add_subcommand("deployment", "Create, list, inspect and cancel local deployments");
  group->require_subcommand(1);

  {
    auto o = std::make_shared<CreateOptions>();
    CLI::App* cmd = group->add_subcommand(
        "create", "Create or update a local deployment from recipe and artifact folders");
    cmd->add_option("-r,--recipeDir", o->recipe_dir, "folder of component recipe files");
    cmd->add_option("-a,--artifactDir", o->artifact_dir,
                    "folder of artifacts laid out as <component>/<version>/<files>");
    cmd->add_option("-m,--merge", o->merge,
                    "root component to add or update, NAME=VERSION (repeat or comma-separate)")
        ->allow_extra_args(false);
    cmd->add_option("--remove", o->remove, "root component to remove (repeat or comma-separate)")
        ->allow_extra_args(false);
    cmd->add_option("-g,--groupId", o->group_id, "thing group the deployment is for");
    cmd->add_option("--runWith", o->run_with,
                    "user to run a component as, NAME:posixUser=user[:group] (repeat)")
        ->allow_extra_args(false);
    cmd->add_option("--systemLimits", o->system_limits,
                    "resource limits, {\"NAME\": {\"cpus\": N, \"memory\": KB}} or a file");
    cmd->add_option("-c,--update-config", o->update_config,
                    "configuration updates, {\"NAME\": {\"MERGE\": {...}, \"RESET\": [...]}} or a "
                    "file");
    cmd->add_option("--failure-handling-policy", o->failure_policy,
                    "ROLLBACK or DO_NOTHING (default for local deployments)")
        ->check(CLI::IsMember({"ROLLBACK", "DO_NOTHING"}));
    CLI::Option* wait =
        cmd->add_flag("--wait", o->wait,
                      "wait for the deployment to finish; exit 0 only if it succeeded (Lichen)");
    cmd->add_option("--timeout", o->wait_seconds, "seconds --wait waits at most")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber)
        ->needs(wait);
    AddRootOption(*cmd, ctx);
    cmd->callback([&ctx, o] { RunCreate(ctx, *o); });
  }
  {
    CLI::App* cmd = group->add_subcommand("list", "Show the local deployments and their status");
    AddRootOption(*cmd, ctx);
    cmd->callback([&ctx] { RunList(ctx); });
  }
  {
    auto id = std::make_shared<std::string>();
    CLI::App* cmd = group->add_subcommand("status", "Show the status of one local deployment");
    cmd->add_option("-i,--deploymentId", *id, "deployment id")->required();
    AddRootOption(*cmd, ctx);
    cmd->callback([&ctx, id] { RunStatus(ctx, *id); });
  }
  {
    auto id = std::make_shared<std::string>();
    CLI::App* cmd = group->add_subcommand("cancel", "Cancel a queued or running local deployment");
    cmd->add_option("-i,--deploymentId", *id, "deployment id")->required();
    AddRootOption(*cmd, ctx);
    cmd->callback([&ctx, id] { RunCancel(ctx, *id); });
  }
}

}  // namespace lichen::cli
