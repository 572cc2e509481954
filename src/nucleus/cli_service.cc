#include "nucleus/cli_service.h"

namespace lichen::nucleus {
namespace {

Json Details(const Services::Info& info, const config::Tree& tree) {
  Json out = {{"componentName", info.name},
              {"version", info.version},
              {"state", lifecycle::ToString(info.state)}};
  auto configuration = tree.ToJson({"services", info.name, "configuration"});
  out["configuration"] =
      configuration && configuration->is_object() ? *configuration : Json::object();
  return out;
}

std::string Text(const Json& request, const char* key) {
  auto it = request.find(key);
  return it != request.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

void RegisterCliService(ipc::IpcServer& server, Deployer& deployer, Services& services,
                        const config::Tree& tree, const ipc::Authorizer& authorizer) {
  // The CLI's own token may do everything; a component needs an aws.greengrass.Cli
  // policy naming the operation (and, for one component, that component's name). None of
  // these operations declares UnauthorizedError (clients would report an internal
  // error), so a refusal is a ServiceError carrying the nucleus's wording.
  auto guard = [&authorizer](const std::shared_ptr<ipc::Call>& call, std::string_view resource) {
    const std::string& op = call->operation();
    if (call->component() == kCliPrincipal) return true;
    const auto target = resource.empty() ? std::nullopt : std::optional<std::string_view>(resource);
    if (authorizer.Allowed(call->component(), ipc::kCliService, op, target)) return true;
    call->Error("ServiceError",
                ipc::Authorizer::DenialMessage(call->component(), ipc::kCliService, op,
                                               resource.empty() ? "*" : resource));
    return false;
  };

  server.Register("aws.greengrass#CreateLocalDeployment",
                  [&, guard](std::shared_ptr<ipc::Call> call) {
                    if (!guard(call, "")) return;
                    auto request = deploy::ParseCreateLocalDeployment(call->request());
                    if (!request.ok()) return call->Error("ServiceError", request.error().message);
                    auto id = deployer.Submit(*request);
                    if (!id.ok()) return call->Error("ServiceError", id.error().message);
                    call->Respond({{"deploymentId", *id}});
                  });
  server.Register(
      "aws.greengrass#GetLocalDeploymentStatus", [&, guard](std::shared_ptr<ipc::Call> call) {
        if (!guard(call, "")) return;
        const std::string id = Text(call->request(), "deploymentId");
        if (id.empty()) return call->Error("ServiceError", "deploymentId is required");
        auto status = deployer.Status(id);
        if (!status.ok()) {
          return call->Error("ResourceNotFoundError", status.error().message,
                             {{"resourceType", "LocalDeployment"}, {"resourceName", id}});
        }
        call->Respond({{"deployment", *status}});
      });
  server.Register("aws.greengrass#ListLocalDeployments",
                  [&, guard](std::shared_ptr<ipc::Call> call) {
                    if (!guard(call, "")) return;
                    Json list = Json::array();
                    for (auto& d : deployer.List()) list.push_back(std::move(d));
                    call->Respond({{"localDeployments", list}});
                  });
  server.Register(
      "aws.greengrass#CancelLocalDeployment", [&, guard](std::shared_ptr<ipc::Call> call) {
        if (!guard(call, "")) return;
        const std::string id = Text(call->request(), "deploymentId");
        auto message = deployer.Cancel(id);
        if (!message.ok()) {
          if (message.error().code == "ResourceNotFoundError") {
            return call->Error("ResourceNotFoundError", message.error().message,
                               {{"resourceType", "LocalDeployment"}, {"resourceName", id}});
          }
          return call->Error("ServiceError", message.error().message);
        }
        call->Respond({{"message", *message}});
      });
  server.Register("aws.greengrass#ListComponents", [&, guard](std::shared_ptr<ipc::Call> call) {
    if (!guard(call, "")) return;
    Json list = Json::array();
    for (const auto& info : services.List()) list.push_back(Details(info, tree));
    call->Respond({{"components", list}});
  });
  server.Register(
      "aws.greengrass#GetComponentDetails", [&, guard](std::shared_ptr<ipc::Call> call) {
        const std::string name = Text(call->request(), "componentName");
        if (name.empty()) return call->Error("InvalidArgumentsError", "componentName is required");
        if (!guard(call, name)) return;
        auto info = services.Find(name);
        if (!info) {
          return call->Error("ResourceNotFoundError", "component " + name + " is not deployed",
                             {{"resourceType", "Component"}, {"resourceName", name}});
        }
        call->Respond({{"componentDetails", Details(*info, tree)}});
      });
  for (const auto& [op, key, verb] :
       {std::tuple{"aws.greengrass#RestartComponent", "restartStatus", "restart"},
        std::tuple{"aws.greengrass#StopComponent", "stopStatus", "stop"}}) {
    const bool restart = std::string_view(verb) == "restart";
    const std::string status_key = key;
    server.Register(op, [&, guard, restart, status_key](std::shared_ptr<ipc::Call> call) {
      const std::string name = Text(call->request(), "componentName");
      if (name.empty()) return call->Error("InvalidArgumentsError", "componentName is required");
      if (!guard(call, name)) return;
      if (!services.Find(name)) {
        return call->Error("ComponentNotFoundError", "component " + name + " is not deployed");
      }
      const bool ok = restart ? services.Restart(name) : services.Stop(name);
      Json response = {{status_key, ok ? "SUCCEEDED" : "FAILED"}};
      if (!ok) response["message"] = "the runtime is shutting down";
      call->Respond(response);
    });
  }
}

}  // namespace lichen::nucleus
