// The Greengrass CLI's IPC operations (CreateLocalDeployment, GetLocalDeploymentStatus,
// ListLocalDeployments, CancelLocalDeployment, ListComponents, GetComponentDetails,
// RestartComponent, StopComponent), served to Lichen's own CLI (which connects with
// the token in cli_ipc_info) and to components an aws.greengrass.Cli policy allows.
#pragma once

#include <string>

#include "config/tree.h"
#include "ipc/authorization.h"
#include "ipc/server.h"
#include "nucleus/deployer.h"
#include "nucleus/services.h"

namespace lichen::nucleus {

// The principal of the token written for the CLI.
inline constexpr std::string_view kCliPrincipal = "lichen-cli";

void RegisterCliService(ipc::IpcServer& server, Deployer& deployer, Services& services,
                        const config::Tree& tree, const ipc::Authorizer& authorizer);

}  // namespace lichen::nucleus
