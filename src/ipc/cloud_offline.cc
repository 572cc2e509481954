#include "ipc/cloud_offline.h"

#include <string>

namespace lichen::ipc {
namespace {

struct CloudOperation {
  std::string_view name;
  std::string_view service;         // whose policies govern it
  std::string_view resource_field;  // the request member the policy's resources match
  std::string_view why;
};

// Each of these declares both UnauthorizedError and ServiceError.
constexpr CloudOperation kOperations[] = {
    {"aws.greengrass#PublishToIoTCore", kMqttProxyService, "topicName",
     "Lichen has no connection to AWS IoT Core: PublishToIoTCore is not available"},
    {"aws.greengrass#SubscribeToIoTCore", kMqttProxyService, "topicName",
     "Lichen has no connection to AWS IoT Core: SubscribeToIoTCore is not available"},
    {"aws.greengrass#GetSecretValue", kSecretManagerService, "secretId",
     "Lichen has no connection to AWS Secrets Manager: GetSecretValue is not available"},
};

}  // namespace

void RegisterCloudOperationsOffline(IpcServer& server, const Authorizer& authorizer) {
  for (const auto& op : kOperations) {
    server.Register(std::string(op.name), [&authorizer, op](std::shared_ptr<Call> call) {
      const auto& request = call->request();
      std::string resource;
      if (request.is_object()) {
        auto it = request.find(std::string(op.resource_field));
        if (it != request.end() && it->is_string()) resource = it->get<std::string>();
      }
      if (!authorizer.Allowed(call->component(), op.service, op.name, resource)) {
        return call->Error(
            "UnauthorizedError",
            Authorizer::DenialMessage(call->component(), op.service, op.name, resource));
      }
      call->Error("ServiceError", std::string(op.why));
    });
  }
}

}  // namespace lichen::ipc
