#include "nucleus/docker_access.h"

#include "aws/ecr.h"

namespace lichen::nucleus {

std::shared_ptr<docker::ImagePuller> MakeImagePuller(
    const RuntimeConfig& runtime, std::shared_ptr<aws::CredentialProvider> credentials,
    std::function<void(const std::string& image, const std::string& message)> log,
    std::function<void(const std::string& image, const docker::PullStatus& status)> progress) {
  docker::ImagePullerOptions options;
  options.engine.socket_path = runtime.docker.socket;
  options.max_attempts = runtime.docker.pull_attempts;
  options.engine.pull_stall_timeout = std::chrono::seconds(runtime.docker.pull_stall_seconds);
  options.log = std::move(log);
  options.progress = std::move(progress);
  for (const auto& [registry, login] : runtime.docker.registries) {
    options.registry_auth[registry] = {login.username, login.password, registry};
  }
  if (credentials) {
    aws::EcrOptions ecr;
    ecr.endpoint = runtime.docker.ecr_endpoint;
    ecr.proxy = runtime.aws.proxy_url;
    ecr.no_proxy = runtime.aws.no_proxy;
    auto client = std::make_shared<const aws::EcrClient>(std::move(ecr), std::move(credentials));
    auto tokens = std::make_shared<aws::EcrTokenCache>(client);
    const std::string device_region = runtime.aws_region;
    options.ecr_auth =
        [tokens, device_region](const docker::ImageReference& ref) -> Result<docker::RegistryAuth> {
      const std::string region = ref.ecr_region.empty() ? device_region : ref.ecr_region;
      if (region.empty()) {
        return MakeError(docker::kDeployGetEcrCredentialError,
                         "cannot tell the region of " + ref.registry +
                             ": set awsRegion in the runtime configuration");
      }
      auto token = tokens->Get(ref.ecr_registry_id, region);
      if (!token.ok()) return token.error();
      return docker::RegistryAuth{token->username, token->password, ref.registry};
    };
    options.ecr_auth_refused = [tokens, device_region](const docker::ImageReference& ref) {
      tokens->Invalidate(ref.ecr_registry_id,
                         ref.ecr_region.empty() ? device_region : ref.ecr_region);
    };
  }
  return std::make_shared<docker::ImagePuller>(std::move(options));
}

}  // namespace lichen::nucleus
