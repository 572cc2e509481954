// The IPC operations that need a connection to AWS IoT Core or Secrets Manager
// (PublishToIoTCore, SubscribeToIoTCore, GetSecretValue). Lichen has no cloud
// connection yet, so they answer a ServiceError that says so, after the same
// authorization check the nucleus makes: a component learns that the cloud is
// unreachable only if its policies would let it use the operation.
#pragma once

#include "ipc/authorization.h"
#include "ipc/server.h"

namespace lichen::ipc {

void RegisterCloudOperationsOffline(IpcServer& server, const Authorizer& authorizer);

}  // namespace lichen::ipc
