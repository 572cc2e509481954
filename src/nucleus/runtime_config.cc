#include "nucleus/runtime_config.h"

#include <fstream>
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

}  // namespace

Result<RuntimeConfig> ParseRuntimeConfig(const Json& configuration, const Json& system) {
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
    if (const Json* v = Member(*lichen, "deploymentTimeoutSeconds")) {
      auto n = recipe::ScalarInt(*v);
      if (!n || *n <= 0)
        return MakeError("lichen.deploymentTimeoutSeconds: expected a positive number");
      out.deployment_timeout = std::chrono::seconds(*n);
    }
    if (const Json* v = Member(*lichen, "stopGraceMs")) {
      auto n = recipe::ScalarInt(*v);
      if (!n || *n < 0) return MakeError("lichen.stopGraceMs: expected a number of milliseconds");
      out.stop_grace = std::chrono::milliseconds(*n);
    }
    if (const Json* v = Member(*lichen, "runStableMs")) {
      auto n = recipe::ScalarInt(*v);
      if (!n || *n < 0) return MakeError("lichen.runStableMs: expected a number of milliseconds");
      out.run_stable = std::chrono::milliseconds(*n);
    }
    auto group = Text(*lichen, "cliGroup", "lichen.");
    if (!group.ok()) return group.error();
    out.cli_group = *group;
  }
  return out;
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
  if (const Json* services = Member(root, "services")) {
    const Json* nucleus = Member(*services, "aws.greengrass.Nucleus");
    const Json* conf = nucleus ? Member(*nucleus, "configuration") : nullptr;
    configuration = conf ? *conf : Json::object();
  }
  if (const Json* s = Member(root, "system")) system = *s;
  if (!Member(root, "services") && Member(root, "system")) configuration.erase("system");
  auto out = ParseRuntimeConfig(configuration, system);
  if (!out.ok()) return MakeError(path + ": " + out.error().message);
  return out;
}

}  // namespace lichen::nucleus
