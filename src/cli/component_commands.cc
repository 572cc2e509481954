// `component list|details|restart|stop`: the running components, through the nucleus's
// IPC socket, printed as the Greengrass CLI prints them.
#include <sstream>

#include "cli/daemon.h"

namespace lichen::cli {
namespace {

std::vector<std::string> SplitNames(const std::vector<std::string>& values) {
  std::vector<std::string> out;
  for (const auto& v : values) {
    std::stringstream in(v);
    for (std::string item; std::getline(in, item, ',');) {
      if (!item.empty()) out.push_back(item);
    }
  }
  return out;
}

void PrintComponent(std::ostream& out, const Json& c) {
  out << "Component Name: " << Text(c, "componentName") << "\n";
  out << "    Version: " << Text(c, "version") << "\n";
  out << "    State: " << Text(c, "state") << "\n";
  auto config = c.find("configuration");
  out << "    Configuration: " << (config == c.end() ? std::string("null") : config->dump())
      << "\n";
}

void RunList(Context& ctx) {
  auto client = ConnectOrReport(ctx);
  if (!client) return;
  auto reply = CallOrReport(ctx, *client, "ListComponents", Json::object());
  if (!reply) return;
  ctx.out << "Components currently running in Greengrass:\n";
  auto it = reply->find("components");
  if (it == reply->end() || !it->is_array()) return;
  for (const auto& c : *it) PrintComponent(ctx.out, c);
}

void RunDetails(Context& ctx, const std::string& name) {
  auto client = ConnectOrReport(ctx);
  if (!client) return;
  auto reply = CallOrReport(ctx, *client, "GetComponentDetails", Json{{"componentName", name}});
  if (!reply) return;
  auto it = reply->find("componentDetails");
  if (it == reply->end() || !it->is_object()) {
    Report(ctx, "GetComponentDetails: the reply has no componentDetails");
    return;
  }
  PrintComponent(ctx.out, *it);
}

// RestartComponent or StopComponent, once per name. Like the Greengrass CLI it prints
// nothing when every request succeeds; each failure is reported and the others still run.
void RunLifecycle(Context& ctx, const std::string& operation, const std::string& status_key,
                  const std::vector<std::string>& names) {
  auto client = ConnectOrReport(ctx);
  if (!client) return;
  for (const auto& name : SplitNames(names)) {
    auto reply = CallOrReport(ctx, *client, operation, Json{{"componentName", name}});
    if (!reply) {
      if (!client->connected()) return;  // the rest would fail the same way
      continue;
    }
    const std::string status = Text(*reply, status_key);
    if (status != "SUCCEEDED") {
      const std::string message = Text(*reply, "message");
      Report(ctx, operation + ": " + name + ": " + (status.empty() ? "no status" : status) +
                      (message.empty() ? "" : ": " + message));
    }
  }
}

}  // namespace

void AddComponentCommands(CLI::App& app, Context& ctx) {
  CLI::App* group =
      app.add_subcommand("component", "List, inspect, restart and stop running components");
  group->require_subcommand(1);
  {
    CLI::App* cmd =
        group->add_subcommand("list", "Show every component: version, state, configuration");
    AddRootOption(*cmd, ctx);
    cmd->callback([&ctx] { RunList(ctx); });
  }
  {
    auto name = std::make_shared<std::string>();
    CLI::App* cmd = group->add_subcommand("details", "Show one component");
    cmd->add_option("-n,--name", *name, "component name")->required();
    AddRootOption(*cmd, ctx);
    cmd->callback([&ctx, name] { RunDetails(ctx, *name); });
  }
  for (const auto& [verb, operation, key, help] :
       {std::tuple{"restart", "RestartComponent", "restartStatus", "Restart components"},
        std::tuple{"stop", "StopComponent", "stopStatus", "Stop components"}}) {
    auto names = std::make_shared<std::vector<std::string>>();
    CLI::App* cmd = group->add_subcommand(verb, help);
    cmd->add_option("-n,--names,--name", *names, "component names (repeat or comma-separate)")
        ->required()
        ->allow_extra_args(false);
    AddRootOption(*cmd, ctx);
    cmd->callback([&ctx, names, op = std::string(operation), k = std::string(key)] {
      RunLifecycle(ctx, op, k, *names);
    });
  }
}

}  // namespace lichen::cli
