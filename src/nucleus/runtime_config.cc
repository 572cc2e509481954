#include "nucleus/runtime_config.h"

#include <algorithm>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>

#include "config/tree.h"
#include "recipe/scalar.h"

namespace lichen::nucleus {
namespace {

// Case-insensitive member lookup, as the nucleus reads its configuration.
const Json* Member(const Json& object, std::string_view key) {
  if (!object.is_object()) return nullptr;
  for (auto it = object.begin(); it != object.end(); ++it) {
    if (config::KeyEquals(it.key(), key)) return &it.value();
  }
  return nullptr;
}

Result<std::string> Text(const Json& parent, std::string_view key, const std::string& where) {
  const Json* v = Member(parent, key);
  if (!v || v->is_null()) return std::string();
  auto text = recipe::ScalarText(*v);
  if (!text)
    return MakeError(where + std::string(key) + ": expected text, got " + recipe::TypeName(*v));
  return *text;
}

// A whole number from `lo` to `hi`, or nullopt when the key is absent; the error names the
// key and says what was `expected`.
Result<std::optional<int64_t>> Number(const Json& parent, std::string_view key,
                                      const std::string& where, int64_t lo, int64_t hi,
                                      const std::string& expected) {
  const Json* v = Member(parent, key);
  if (!v) return std::optional<int64_t>();
  auto n = recipe::ScalarInt(*v);
  if (!n || *n < lo || *n > hi)
    return MakeError(where + std::string(key) + ": expected " + expected);
  return std::optional<int64_t>(*n);
}

// Fills the AWS settings: the IoT credentials provider's keys, proxy, and Lichen's own
// credential sources and S3 endpoint.
Result<void> ParseAwsSettings(const Json& c, const Json& system, const Json& tes,
                              AwsSettings& aws) {
  for (auto [key, field] : {std::pair{"iotCredEndpoint", &aws.iot_cred_endpoint},
                            std::pair{"iotRoleAlias", &aws.iot_role_alias}}) {
    auto v = Text(c, key, "");
    if (!v.ok()) return v.error();
    *field = *v;
  }
  for (auto [key, field] : {std::pair{"certificateFilePath", &aws.certificate_path},
                            std::pair{"privateKeyPath", &aws.private_key_path}}) {
    auto v = Text(system, key, "system.");
    if (!v.ok()) return v.error();
    *field = *v;
  }
  if (aws.uses_iot_credentials() && (aws.iot_role_alias.empty() || aws.certificate_path.empty() ||
                                     aws.private_key_path.empty())) {
    return MakeError(
        "iotCredEndpoint is set, so iotRoleAlias, system.certificateFilePath and "
        "system.privateKeyPath are needed too");
  }
  auto port = Number(tes, "port", "aws.greengrass.TokenExchangeService.configuration.", 0, 65535,
                     "a port number (0 = any free port)");
  if (!port.ok()) return port.error();
  if (*port) aws.tes_port = static_cast<int>(**port);
  if (const Json* proxy = Member(c, "networkProxy")) {
    if (!proxy->is_object()) return MakeError("networkProxy: expected a mapping");
    auto no_proxy = Text(*proxy, "noProxyAddresses", "networkProxy.");
    if (!no_proxy.ok()) return no_proxy.error();
    aws.no_proxy = *no_proxy;
    if (const Json* inner = Member(*proxy, "proxy")) {
      auto url = Text(*inner, "url", "networkProxy.proxy.");
      if (!url.ok()) return url.error();
      aws.proxy_url = *url;
      auto user = Text(*inner, "username", "networkProxy.proxy.");
      auto password = Text(*inner, "password", "networkProxy.proxy.");
      if (!user.ok()) return user.error();
      if (!password.ok()) return password.error();
      // libcurl takes credentials inside the proxy URL.
      if (!user->empty() && aws.proxy_url.find("://") != std::string::npos) {
        const auto at = aws.proxy_url.find("://") + 3;
        aws.proxy_url.insert(at, *user + (password->empty() ? "" : ":" + *password) + "@");
      }
    }
  }
  const Json* lichen = Member(c, "lichen");
  if (lichen == nullptr || !lichen->is_object()) return {};
  if (const Json* creds = Member(*lichen, "credentials")) {
    if (!creds->is_object()) return MakeError("lichen.credentials: expected a mapping");
    for (auto [key, field] : {std::pair{"accessKeyId", &aws.static_access_key_id},
                              std::pair{"secretAccessKey", &aws.static_secret_access_key},
                              std::pair{"sessionToken", &aws.static_session_token},
                              std::pair{"file", &aws.credentials_file},
                              std::pair{"profile", &aws.credentials_profile}}) {
      auto v = Text(*creds, key, "lichen.credentials.");
      if (!v.ok()) return v.error();
      if (!v->empty()) *field = *v;
    }
    if (aws.static_access_key_id.empty() != aws.static_secret_access_key.empty()) {
      return MakeError("lichen.credentials: accessKeyId and secretAccessKey go together");
    }
  }
  if (const Json* s3 = Member(*lichen, "s3")) {
    if (!s3->is_object()) return MakeError("lichen.s3: expected a mapping");
    auto endpoint = Text(*s3, "endpoint", "lichen.s3.");
    if (!endpoint.ok()) return endpoint.error();
    if (!endpoint->empty() && endpoint->rfind("http://", 0) != 0 &&
        endpoint->rfind("https://", 0) != 0) {
      return MakeError("lichen.s3.endpoint: expected an http:// or https:// URL, got '" +
                       *endpoint + "'");
    }
    aws.s3_endpoint = *endpoint;
  }
  return {};
}

}  // namespace

namespace {

// lichen.docker and lichen.ecr.
Result<void> ParseDockerSettings(const Json& lichen, DockerSettings& docker) {
  if (const Json* ecr = Member(lichen, "ecr")) {
    if (!ecr->is_object()) return MakeError("lichen.ecr: expected a mapping");
    auto endpoint = Text(*ecr, "endpoint", "lichen.ecr.");
    if (!endpoint.ok()) return endpoint.error();
    if (!endpoint->empty() && endpoint->rfind("http://", 0) != 0 &&
        endpoint->rfind("https://", 0) != 0) {
      return MakeError("lichen.ecr.endpoint: expected an http:// or https:// URL, got '" +
                       *endpoint + "'");
    }
    docker.ecr_endpoint = *endpoint;
  }
  const Json* d = Member(lichen, "docker");
  if (d == nullptr || d->is_null()) return {};
  if (!d->is_object()) return MakeError("lichen.docker: expected a mapping");
  auto socket = Text(*d, "socket", "lichen.docker.");
  if (!socket.ok()) return socket.error();
  if (!socket->empty()) {
    std::string path = *socket;
    if (path.rfind("unix://", 0) == 0) path = path.substr(7);
    if (path.empty() || path[0] != '/') {
      return MakeError(
          "lichen.docker.socket: expected the absolute path of the Docker "
          "daemon's Unix socket, got '" +
          *socket + "'");
    }
    docker.socket = path;
  }
  if (const Json* v = Member(*d, "trackContainers")) {
    if (!v->is_boolean()) return MakeError("lichen.docker.trackContainers: expected true or false");
    docker.track_containers = v->get<bool>();
  }
  auto attempts = Number(*d, "pullAttempts", "lichen.docker.", 1, 100, "a number from 1 to 100");
  if (!attempts.ok()) return attempts.error();
  if (*attempts) docker.pull_attempts = static_cast<int>(**attempts);
  auto stall = Number(*d, "pullStallSeconds", "lichen.docker.", 0, 86400,
                      "a number of seconds from 0 (no bound) to 86400");
  if (!stall.ok()) return stall.error();
  if (*stall) docker.pull_stall_seconds = static_cast<int>(**stall);
  auto wait = Number(*d, "daemonWaitSeconds", "lichen.docker.", 0, 3600,
                     "a number of seconds from 0 to 3600");
  if (!wait.ok()) return wait.error();
  if (*wait) docker.daemon_wait = std::chrono::seconds(**wait);
  if (const Json* regs = Member(*d, "registries")) {
    if (!regs->is_object()) {
      return MakeError(
          "lichen.docker.registries: expected a mapping of registry to "
          "{username, password}");
    }
    for (auto it = regs->begin(); it != regs->end(); ++it) {
      const std::string where = "lichen.docker.registries." + it.key() + ".";
      if (!it.value().is_object()) {
        return MakeError("lichen.docker.registries." + it.key() +
                         ": expected {username, password}");
      }
      auto user = Text(it.value(), "username", where);
      auto password = Text(it.value(), "password", where);
      if (!user.ok()) return user.error();
      if (!password.ok()) return password.error();
      if (user->empty() || password->empty()) {
        return MakeError(where + "username and " + where + "password are both needed");
      }
      docker.registries[it.key()] = {*user, *password};
    }
  }
  return {};
}

}  // namespace

Result<RuntimeConfig> ParseRuntimeConfig(const Json& configuration, const Json& system,
                                         const Json& tes_configuration) {
  RuntimeConfig out;
  if (!configuration.is_null() && !configuration.is_object()) {
    return MakeError("the nucleus configuration must be a mapping, got " +
                     recipe::TypeName(configuration));
  }
  const Json& c = configuration.is_object() ? configuration : Json::object();
  out.nucleus_configuration = c;

  auto thing = Text(system, "thingName", "system.");
  if (!thing.ok()) return thing.error();
  out.thing_name = *thing;
  auto ca = Text(system, "rootCaPath", "system.");
  if (!ca.ok()) return ca.error();
  out.root_ca_path = *ca;
  auto region = Text(c, "awsRegion", "");
  if (!region.ok()) return region.error();
  out.aws_region = *region;

  if (const Json* rwd = Member(c, "runWithDefault")) {
    if (!rwd->is_null() && !rwd->is_object())
      return MakeError("runWithDefault: expected a mapping");
    auto user = Text(*rwd, "posixUser", "runWithDefault.");
    if (!user.ok()) return user.error();
    if (!user->empty()) out.run_with_default_user = *user;
    auto shell = Text(*rwd, "posixShell", "runWithDefault.");
    if (!shell.ok()) return shell.error();
    if (!shell->empty()) out.posix_shell = *shell;
  }
  if (const Json* po = Member(c, "platformOverride")) {
    if (!po->is_null() && !po->is_object())
      return MakeError("platformOverride: expected a mapping");
    if (po->is_object()) out.platform_override = *po;
  }
  if (const Json* icc = Member(c, "interpolateComponentConfiguration")) {
    auto b = recipe::ScalarBool(*icc);
    if (!b) return MakeError("interpolateComponentConfiguration: expected true or false");
    out.interpolate_component_configuration = *b;
  }
  if (const Json* logging = Member(c, "logging")) {
    if (!logging->is_object()) return MakeError("logging: expected a mapping");
    if (auto level = Text(*logging, "level", "logging."); !level.ok()) {
      return level.error();
    } else if (!level->empty()) {
      auto parsed = logs::ParseLevel(*level);
      if (!parsed.ok()) return MakeError("logging.level: " + parsed.error().message);
      out.logging.level = *parsed;
    }
    if (auto format = Text(*logging, "format", "logging."); !format.ok()) {
      return format.error();
    } else if (!format->empty()) {
      auto parsed = logs::ParseFormat(*format);
      if (!parsed.ok()) return MakeError("logging.format: " + parsed.error().message);
      out.logging.format = *parsed;
    }
    if (auto type = Text(*logging, "outputType", "logging."); !type.ok()) {
      return type.error();
    } else if (!type->empty()) {
      auto parsed = logs::ParseOutputType(*type);
      if (!parsed.ok()) return MakeError("logging.outputType: " + parsed.error().message);
      out.logging.output_type = *parsed;
    }
    for (auto [key, field] : {std::pair{"fileSizeKB", &out.logging.file_size_kb},
                              std::pair{"totalLogsSizeKB", &out.logging.total_logs_size_kb}}) {
      if (const Json* v = Member(*logging, key)) {
        auto n = recipe::ScalarInt(*v);
        if (!n || *n <= 0) {
          return MakeError(std::string("logging.") + key + ": expected a positive number");
        }
        *field = static_cast<uint64_t>(*n);
      }
    }
  }
  if (const Json* env = Member(c, "setenv")) {
    if (!env->is_object()) return MakeError("setenv: expected a mapping of names to values");
    for (auto it = env->begin(); it != env->end(); ++it) {
      auto value = recipe::ScalarText(it.value());
      if (!value) return MakeError("setenv." + it.key() + ": expected text");
      out.setenv.emplace_back(it.key(), *value);
    }
  }
  if (const Json* lichen = Member(c, "lichen")) {
    if (!lichen->is_object()) return MakeError("lichen: expected a mapping");
    constexpr int64_t kMax = std::numeric_limits<int64_t>::max() / 1000;  // no overflow in ms
    auto timeout =
        Number(*lichen, "deploymentTimeoutSeconds", "lichen.", 1, kMax, "a positive number");
    if (!timeout.ok()) return timeout.error();
    if (*timeout) out.deployment_timeout = std::chrono::seconds(**timeout);
    auto grace = Number(*lichen, "stopGraceMs", "lichen.", 0, kMax, "a number of milliseconds");
    if (!grace.ok()) return grace.error();
    if (*grace) out.stop_grace = std::chrono::milliseconds(**grace);
    auto stable = Number(*lichen, "runStableMs", "lichen.", 0, kMax, "a number of milliseconds");
    if (!stable.ok()) return stable.error();
    if (*stable) out.run_stable = std::chrono::milliseconds(**stable);
    auto group = Text(*lichen, "cliGroup", "lichen.");
    if (!group.ok()) return group.error();
    out.cli_group = *group;
    if (auto docker = ParseDockerSettings(*lichen, out.docker); !docker.ok()) {
      return docker.error();
    }
  }
  if (auto aws = ParseAwsSettings(c, system, tes_configuration, out.aws); !aws.ok()) {
    return aws.error();
  }
  return out;
}

std::chrono::milliseconds RuntimeConfig::RunStableAfter(
    std::optional<std::chrono::milliseconds> failed_run) const {
  if (!failed_run) return run_stable;
  return std::clamp(2 * *failed_run, run_stable, 10 * run_stable);
}

Result<RuntimeConfig> LoadRuntimeConfig(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return MakeError(path + ": cannot read the runtime configuration");
  std::stringstream buf;
  buf << in.rdbuf();
  auto parsed = recipe::ParseSource(buf.str(), recipe::FormatForPath(path));
  if (!parsed.ok()) return MakeError(path + ": " + parsed.error().message);
  const Json& root = parsed->root;
  if (!root.is_null() && !root.is_object()) return MakeError(path + ": expected a mapping");
  Json configuration = root;
  Json system = Json();
  Json tes = Json();
  if (const Json* services = Member(root, "services")) {
    const Json* nucleus = Member(*services, "aws.greengrass.Nucleus");
    const Json* conf = nucleus ? Member(*nucleus, "configuration") : nullptr;
    configuration = conf ? *conf : Json::object();
    const Json* tes_service = Member(*services, "aws.greengrass.TokenExchangeService");
    if (const Json* t = tes_service ? Member(*tes_service, "configuration") : nullptr) tes = *t;
  }
  if (const Json* s = Member(root, "system")) system = *s;
  if (!Member(root, "services") && Member(root, "system")) configuration.erase("system");
  auto out = ParseRuntimeConfig(configuration, system, tes);
  if (!out.ok()) return MakeError(path + ": " + out.error().message);
  return out;
}

}  // namespace lichen::nucleus
