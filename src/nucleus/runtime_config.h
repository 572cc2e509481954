// The runtime configuration: the keys of aws.greengrass.Nucleus's configuration that a
// Greengrass user already writes in config.yaml (--init-config), read from YAML or JSON.
//
// Accepted layouts: the nucleus's own (`system: {thingName, rootCaPath}` and
// `services: {aws.greengrass.Nucleus: {configuration: {...}}}`), or just the
// configuration map at the top level.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"
#include "logs/log.h"
#include "recipe/source_tree.h"

namespace lichen::nucleus {

using Json = recipe::Json;

// Where AWS credentials come from and how AWS is reached (S3 artifacts, private ECR,
// the token exchange service).
struct AwsSettings {
  std::string iot_cred_endpoint;  // iotCredEndpoint: host or host:port
  std::string iot_role_alias;     // iotRoleAlias
  std::string certificate_path;   // system.certificateFilePath
  std::string private_key_path;   // system.privateKeyPath
  // Beyond the nucleus, for devices that are not IoT things (lichen.credentials):
  // long-term keys, or a shared credentials file and profile.
  std::string static_access_key_id;
  std::string static_secret_access_key;
  std::string static_session_token;
  std::string credentials_file;
  std::string credentials_profile = "default";
  // The token exchange service's port (its component's configuration.port); 0 = any.
  int tes_port = 0;
  // lichen.s3.endpoint: an S3-compatible server reached path-style (http://host:port).
  std::string s3_endpoint;
  // networkProxy.proxy.url and networkProxy.noProxyAddresses.
  std::string proxy_url;
  std::string no_proxy;

  bool uses_iot_credentials() const { return !iot_cred_endpoint.empty(); }
  bool has_credentials() const {
    return uses_iot_credentials() || !static_access_key_id.empty() || !credentials_file.empty();
  }
};

// Docker support (lichen.docker), beyond the nucleus's configuration.
struct DockerRegistryLogin {
  std::string username;
  std::string password;
};
struct DockerSettings {
  std::string socket = "/var/run/docker.sock";  // lichen.docker.socket: the daemon's API
  // lichen.docker.trackContainers: give components their own Docker socket so that the
  // containers they create are removed when they stop.
  bool track_containers = true;
  // lichen.docker.registries: {"host[:port]": {username, password}} for private
  // registries other than ECR. Sent in X-Registry-Auth only, never written to disk.
  std::map<std::string, DockerRegistryLogin> registries;
  // lichen.docker.pullAttempts: tries per image for network errors.
  int pull_attempts = 5;
  // lichen.docker.pullStallSeconds: a pull the daemon reports nothing about for this long
  // is abandoned and retried (a registry that hangs); 0 = wait without bound.
  int pull_stall_seconds = 60;
  // lichen.docker.daemonWaitSeconds: how long a component's start waits for an unreachable
  // daemon to come back, when the containers of its last run still have to be removed.
  std::chrono::milliseconds daemon_wait{std::chrono::seconds(60)};
  // lichen.ecr.endpoint: where ECR's API is (a stand-in); empty = AWS's.
  std::string ecr_endpoint;
};

struct RuntimeConfig {
  std::string thing_name;
  std::string aws_region;
  std::string root_ca_path;
  std::optional<std::string> run_with_default_user;  // runWithDefault.posixUser
  std::string posix_shell = "sh";                    // runWithDefault.posixShell
  Json platform_override = Json::object();
  bool interpolate_component_configuration = false;
  logs::LogConfig logging;
  std::vector<std::pair<std::string, std::string>> setenv;  // runtime-wide Setenv
  // Beyond the nucleus: bounds so that no deployment can hang the queue.
  std::chrono::seconds deployment_timeout{600};  // lichen.deploymentTimeoutSeconds
  std::chrono::milliseconds stop_grace{5000};    // lichen.stopGraceMs: SIGTERM to SIGKILL
  // lichen.runStableMs: how long a Run process must stay up before a deployment counts
  // its component as RUNNING (the Java nucleus polls once a second, so a Run that dies
  // at once fails the deployment there too).
  std::chrono::milliseconds run_stable{1000};
  // How long a Run process must stay up to count as started, given how long its last run
  // that failed during the deployment lasted: twice that (at most ten windows), never
  // less than run_stable. A Run that fails at about the window's length is not counted as
  // up on the attempt that happens to last a little longer.
  std::chrono::milliseconds RunStableAfter(
      std::optional<std::chrono::milliseconds> failed_run) const;
  std::string cli_group;  // lichen.cliGroup: may read the CLI token besides root
  AwsSettings aws;
  DockerSettings docker;
  Json nucleus_configuration = Json::object();  // everything, as given
};

// Reads a runtime configuration file. Errors name the file and the key.
Result<RuntimeConfig> LoadRuntimeConfig(const std::string& path);
// From already parsed parts (`system` and `tes_configuration`, the token exchange
// service's configuration, may be null).
Result<RuntimeConfig> ParseRuntimeConfig(const Json& configuration, const Json& system,
                                         const Json& tes_configuration = Json());

}  // namespace lichen::nucleus
