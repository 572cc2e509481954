// The configuration and lifecycle IPC operations a component uses about itself:
// GetConfiguration, UpdateConfiguration, SubscribeToConfigurationUpdate, UpdateState.
// None needs an accessControl policy (spec: any component may read any configuration,
// and update only its own).
#pragma once

#include "config/state_store.h"
#include "config/tree.h"
#include "ipc/server.h"
#include "nucleus/services.h"

namespace lichen::nucleus {

void RegisterConfigService(ipc::IpcServer& server, config::Tree& tree, config::StateStore& state,
                           Services& services, logs::Logs& logs);

}  // namespace lichen::nucleus
