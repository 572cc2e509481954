// The runtime's way to the Docker daemon for docker: artifacts, built from the runtime
// configuration: the daemon's socket, private registry logins (lichen.docker.registries)
// and private ECR logins (GetAuthorizationToken with the runtime's AWS credentials,
// cached until shortly before the 12-hour tokens expire).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "aws/credentials.h"
#include "docker/image_puller.h"
#include "nucleus/runtime_config.h"

namespace lichen::nucleus {

// `log` and `progress` are called from pulling threads (image, ...); they must be
// thread-safe. `credentials` may be null: private ECR images then fail with
// GET_ECR_CREDENTIAL_ERROR.
std::shared_ptr<docker::ImagePuller> MakeImagePuller(
    const RuntimeConfig& runtime, std::shared_ptr<aws::CredentialProvider> credentials,
    std::function<void(const std::string& image, const std::string& message)> log,
    std::function<void(const std::string& image, const docker::PullStatus& status)> progress = {});

}  // namespace lichen::nucleus
