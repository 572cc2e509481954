#include "nucleus/config_service.h"

#include <boost/asio/post.hpp>
#include <cmath>

namespace lichen::nucleus {
namespace {

using config::KeyPath;

// keyPath from a request: a list of strings (absent = empty).
Result<KeyPath> ReadKeyPath(const Json& request) {
  KeyPath out;
  auto it = request.find("keyPath");
  if (it == request.end() || it->is_null()) return out;
  if (!it->is_array()) return MakeError("keyPath must be a list of strings");
  for (const auto& k : *it) {
    if (!k.is_string()) return MakeError("keyPath must be a list of strings");
    out.push_back(k.get<std::string>());
  }
  return out;
}

std::string TargetComponent(const std::shared_ptr<ipc::Call>& call) {
  auto it = call->request().find("componentName");
  if (it != call->request().end() && it->is_string() && !it->get<std::string>().empty()) {
    return it->get<std::string>();
  }
  return call->component();
}

KeyPath ConfigPath(const std::string& component, const KeyPath& key_path) {
  KeyPath path = {"services", component, "configuration"};
  path.insert(path.end(), key_path.begin(), key_path.end());
  return path;
}

}  // namespace

void RegisterConfigService(ipc::IpcServer& server, config::Tree& tree, config::StateStore& state,
                           Services& services, logs::Logs& logs) {
  server.Register("aws.greengrass#GetConfiguration", [&tree](std::shared_ptr<ipc::Call> call) {
    const std::string component = TargetComponent(call);
    auto key_path = ReadKeyPath(call->request());
    if (!key_path.ok()) return call->Error("ServiceError", key_path.error().message);
    const config::Node* node = tree.Find(ConfigPath(component, *key_path));
    if (!node) {
      return call->Error(
          "ResourceNotFoundError",
          "no configuration " + config::PathToString(*key_path) + " for " + component,
          {{"resourceType", "Configuration"}, {"resourceName", component}});
    }
    Json value;
    if (node->is_container()) {
      value = *tree.ToJson(ConfigPath(component, *key_path));
    } else {
      // A leaf comes back as {lastKey: value}, as the nucleus answers.
      value = Json::object();
      value[node->name()] = node->value();
    }
    call->Respond({{"componentName", component}, {"value", value}});
  });

  server.Register("aws.greengrass#UpdateConfiguration", [&tree, &state, &services,
                                                         &logs](std::shared_ptr<ipc::Call> call) {
    const Json& request = call->request();
    auto key_path = ReadKeyPath(request);
    if (!key_path.ok()) return call->Error("InvalidArgumentsError", key_path.error().message);
    if (auto it = request.find("componentName"); it != request.end() && it->is_string() &&
                                                 !it->get<std::string>().empty() &&
                                                 it->get<std::string>() != call->component()) {
      return call->Error("UnauthorizedError",
                         call->component() + " may update only its own configuration");
    }
    auto ts = request.find("timestamp");
    if (ts == request.end() || !ts->is_number()) {
      return call->Error("InvalidArgumentsError", "timestamp (seconds) is required");
    }
    auto value = request.find("valueToMerge");
    if (value == request.end()) {
      return call->Error("InvalidArgumentsError", "valueToMerge is required");
    }
    // accessControl is the component's own permissions: only a deployment sets it.
    const bool touches_acl =
        (!key_path->empty() && config::KeyEquals((*key_path)[0], "accessControl")) ||
        (key_path->empty() && value->is_object() &&
         std::any_of(value->items().begin(), value->items().end(),
                     [](const auto& kv) { return config::KeyEquals(kv.key(), "accessControl"); }));
    if (touches_acl) {
      return call->Error("InvalidArgumentsError",
                         "accessControl cannot be changed over IPC; deploy it instead");
    }
    const auto millis = static_cast<config::Timestamp>(std::llround(ts->get<double>() * 1000.0));
    const KeyPath path = ConfigPath(call->component(), *key_path);
    Result<config::UpdateOutcome> outcome =
        value->is_object()  ? tree.Merge(path, *value, millis)
        : key_path->empty() ? Result<config::UpdateOutcome>(
                                  MakeError("valueToMerge must be an object at the top level"))
                            : tree.Set(path, *value, millis);
    if (!outcome.ok()) return call->Error("InvalidArgumentsError", outcome.error().message);
    if (!outcome->fully_applied()) {
      return call->Error("FailedUpdateConditionCheckError",
                         "the configuration at " + config::PathToString(*key_path) +
                             " is newer than the given timestamp");
    }
    std::vector<KeyPath> changed;
    for (const auto& c : outcome->changes) changed.push_back(c.path);
    if (!changed.empty()) {
      auto saved = state.SaveConfigFor(tree, changed);
      if (!saved.ok()) {
        logs.Log(logs::Level::kError, "ConfigService", "config-save-error", saved.error().message);
      }
      services.Refresh();
    }
    call->Respond(Json::object());
  });

  server.Register(
      "aws.greengrass#SubscribeToConfigurationUpdate", [&tree](std::shared_ptr<ipc::Call> call) {
        const std::string component = TargetComponent(call);
        auto key_path = ReadKeyPath(call->request());
        if (!key_path.ok()) return call->Error("ServiceError", key_path.error().message);
        const KeyPath prefix = ConfigPath(component, *key_path);
        auto handle = std::make_shared<config::WatchHandle>();
        std::weak_ptr<ipc::Call> weak = call;
        *handle = tree.Watch(prefix, [weak, component](const config::Change& change) {
          auto c = weak.lock();
          if (!c || !c->open()) return;
          Json changed = Json::array();
          // The path below the component's configuration.
          for (size_t i = 3; i < change.path.size(); ++i) changed.push_back(change.path[i]);
          c->Event(
              "aws.greengrass#ConfigurationUpdateEvents",
              {{"configurationUpdateEvent", {{"componentName", component}, {"keyPath", changed}}}});
        });
        call->OnClose([handle] { handle->Reset(); });
        call->Respond(Json::object(), /*terminate=*/false);
      });

  server.Register("aws.greengrass#UpdateState", [&services](std::shared_ptr<ipc::Call> call) {
    auto it = call->request().find("state");
    const std::string text =
        it != call->request().end() && it->is_string() ? it->get<std::string>() : "";
    lifecycle::State reported;
    if (text == "RUNNING") {
      reported = lifecycle::State::kRunning;
    } else if (text == "ERRORED") {
      reported = lifecycle::State::kErrored;
    } else {
      return call->Error("ServiceError", "state must be RUNNING or ERRORED, got '" + text + "'");
    }
    if (!services.Find(call->component())) {
      return call->Error("ResourceNotFoundError", call->component() + " is not a running component",
                         {{"resourceType", "Component"}, {"resourceName", call->component()}});
    }
    if (!services.ReportState(call->component(), reported)) {
      auto info = services.Find(call->component());
      // Reporting the state it is already in changes nothing: not an error (a Run-only
      // component that says RUNNING once it is ready, as the AWS examples do).
      if (info && info->state == reported) return call->Respond(Json::object());
      return call->Error("ServiceError",
                         "cannot report " + text + " while " + lifecycle::ToString(info->state));
    }
    call->Respond(Json::object());
  });
}

}  // namespace lichen::nucleus
