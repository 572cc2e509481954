#include "deploy/document.h"

#include "recipe/loader.h"
#include "recipe/scalar.h"
#include "semver/version.h"

namespace lichen::deploy {
namespace {

std::string Q(const std::string& s) { return recipe::Quote(s); }

Result<void> CheckName(const std::string& field, const std::string& name) {
  if (!recipe::IsLegalComponentName(name)) {
    return MakeError(field + ": " + Q(name) +
                     " is not a component name (letters, digits, '-', '_', '.'; at most 128)");
  }
  return {};
}

Result<void> CheckVersion(const std::string& field, const std::string& version) {
  if (auto v = semver::Version::ParseStrict(version); !v) {
    return MakeError(field + ": " + Q(version) + " is not a valid version: " + v.error().message);
  }
  return {};
}

Result<void> CheckPointer(const std::string& field, const std::string& pointer) {
  if (!pointer.empty() && pointer[0] != '/') {
    return MakeError(field + ": " + Q(pointer) +
                     " is not a JSON pointer (use \"\" for everything or /key/subkey)");
  }
  for (size_t i = 0; i < pointer.size(); ++i) {
    if (pointer[i] == '~' &&
        (i + 1 >= pointer.size() || (pointer[i + 1] != '0' && pointer[i + 1] != '1'))) {
      return MakeError(field + ": " + Q(pointer) + " has a '~' not followed by 0 or 1");
    }
  }
  return {};
}

Result<RunWith> ParseRunWithObject(const std::string& field, const Json& v) {
  if (!v.is_object()) return MakeError(field + " must be an object with posixUser");
  RunWith out;
  for (const auto& [k, value] : v.items()) {
    if (k == "posixUser") {
      if (!value.is_string()) return MakeError(field + ".posixUser must be text");
      out.posix_user = value.get<std::string>();
    } else if (k == "systemResourceLimits") {
      if (!value.is_object()) return MakeError(field + ".systemResourceLimits must be an object");
      for (const auto& [lk, lv] : value.items()) {
        if (lk == "cpus" && lv.is_number() && lv.get<double>() > 0) {
          out.cpus = lv.get<double>();
        } else if (lk == "memory" && lv.is_number_integer() && lv.get<int64_t>() > 0) {
          out.memory_kb = lv.get<int64_t>();
        } else {
          return MakeError(field + ".systemResourceLimits." + lk +
                           " is not understood (cpus: a positive number, memory: KB > 0)");
        }
      }
    } else if (k == "windowsUser") {
      return MakeError(field + ".windowsUser: Lichen runs on Linux only; use posixUser");
    } else {
      return MakeError(field + ": unknown key " + Q(k));
    }
  }
  return out;
}

}  // namespace

const char* ToString(FailurePolicy policy) {
  return policy == FailurePolicy::kRollback ? "ROLLBACK" : "DO_NOTHING";
}

Result<std::map<std::string, ConfigurationUpdate>> ParseConfigurationUpdates(const Json& value) {
  std::map<std::string, ConfigurationUpdate> out;
  if (value.is_null()) return out;
  if (!value.is_object()) {
    return MakeError(
        "the configuration update must be an object: {\"Component\": {\"MERGE\": {...}, "
        "\"RESET\": [\"/path\"]}}");
  }
  for (const auto& [name, update] : value.items()) {
    const std::string field = "componentToConfiguration." + name;
    if (auto ok = CheckName(field, name); !ok) return ok.error();
    if (!update.is_object()) return MakeError(field + " must be an object with MERGE and/or RESET");
    ConfigurationUpdate cu;
    for (const auto& [k, v] : update.items()) {
      if (k == "MERGE") {
        if (!v.is_object())
          return MakeError(field + ".MERGE must be an object, not " + recipe::TypeName(v));
        cu.merge = v;
      } else if (k == "RESET") {
        if (!v.is_array()) return MakeError(field + ".RESET must be a list of JSON pointers");
        for (size_t i = 0; i < v.size(); ++i) {
          const std::string pf = field + ".RESET[" + std::to_string(i) + "]";
          if (!v[i].is_string()) return MakeError(pf + " must be text");
          if (auto ok = CheckPointer(pf, v[i].get<std::string>()); !ok) return ok.error();
          cu.reset.push_back(v[i].get<std::string>());
        }
      } else {
        return MakeError(field + ": unknown key " + Q(k) + " (only MERGE and RESET)");
      }
    }
    out[name] = std::move(cu);
  }
  return out;
}

Result<LocalDeployment> ParseCreateLocalDeployment(const Json& request) {
  if (!request.is_object()) return MakeError("the request must be a JSON object");
  LocalDeployment d;
  for (const auto& [key, v] : request.items()) {
    if (v.is_null()) continue;  // absent and null mean the same to the SDK clients
    if (key == "groupName") {
      if (!v.is_string() || v.get<std::string>().empty())
        return MakeError("groupName must be non-empty text");
      d.group_name = v.get<std::string>();
    } else if (key == "rootComponentVersionsToAdd") {
      if (!v.is_object()) return MakeError("rootComponentVersionsToAdd must map names to versions");
      for (const auto& [name, version] : v.items()) {
        const std::string field = "rootComponentVersionsToAdd." + name;
        if (auto ok = CheckName(field, name); !ok) return ok.error();
        if (!version.is_string()) return MakeError(field + " must be a version string");
        if (auto ok = CheckVersion(field, version.get<std::string>()); !ok) return ok.error();
        d.components_to_add[name] = version.get<std::string>();
      }
    } else if (key == "rootComponentsToRemove") {
      if (!v.is_array()) return MakeError("rootComponentsToRemove must be a list of names");
      for (size_t i = 0; i < v.size(); ++i) {
        const std::string field = "rootComponentsToRemove[" + std::to_string(i) + "]";
        if (!v[i].is_string()) return MakeError(field + " must be a name");
        if (auto ok = CheckName(field, v[i].get<std::string>()); !ok) return ok.error();
        d.components_to_remove.push_back(v[i].get<std::string>());
      }
    } else if (key == "componentToConfiguration") {
      auto updates = ParseConfigurationUpdates(v);
      if (!updates) return updates.error();
      d.configuration = std::move(*updates);
    } else if (key == "componentToRunWithInfo") {
      if (!v.is_object()) return MakeError("componentToRunWithInfo must map names to run-as info");
      for (const auto& [name, info] : v.items()) {
        const std::string field = "componentToRunWithInfo." + name;
        if (auto ok = CheckName(field, name); !ok) return ok.error();
        auto rw = ParseRunWithObject(field, info);
        if (!rw) return rw.error();
        d.run_with[name] = std::move(*rw);
      }
    } else if (key == "recipeDirectoryPath" || key == "artifactsDirectoryPath") {
      if (!v.is_string()) return MakeError(key + " must be a path");
      (key == "recipeDirectoryPath" ? d.recipe_dir : d.artifact_dir) = v.get<std::string>();
    } else if (key == "failureHandlingPolicy") {
      if (v == "ROLLBACK") {
        d.failure_policy = FailurePolicy::kRollback;
      } else if (v == "DO_NOTHING") {
        d.failure_policy = FailurePolicy::kDoNothing;
      } else {
        return MakeError("failureHandlingPolicy " + recipe::Quote(v) +
                         " is not ROLLBACK or DO_NOTHING");
      }
    } else {
      return MakeError("unknown field " + Q(key) + " in CreateLocalDeployment");
    }
  }
  for (const auto& name : d.components_to_remove) {
    if (d.components_to_add.count(name) != 0) {
      return MakeError(name +
                       " is both added (rootComponentVersionsToAdd) and removed "
                       "(rootComponentsToRemove)");
    }
  }
  return d;
}

Json ToRequestJson(const LocalDeployment& d) {
  Json j = Json::object();
  j["groupName"] = d.group_name;
  j["rootComponentVersionsToAdd"] = Json::object();
  for (const auto& [n, v] : d.components_to_add) j["rootComponentVersionsToAdd"][n] = v;
  j["rootComponentsToRemove"] = d.components_to_remove;
  j["componentToConfiguration"] = Json::object();
  for (const auto& [n, cu] : d.configuration) {
    j["componentToConfiguration"][n] = {{"MERGE", cu.merge}, {"RESET", cu.reset}};
  }
  j["componentToRunWithInfo"] = Json::object();
  for (const auto& [n, rw] : d.run_with) {
    Json info = Json::object();
    if (rw.posix_user) info["posixUser"] = *rw.posix_user;
    if (rw.cpus || rw.memory_kb) {
      info["systemResourceLimits"] = Json::object();
      if (rw.cpus) info["systemResourceLimits"]["cpus"] = *rw.cpus;
      if (rw.memory_kb) info["systemResourceLimits"]["memory"] = *rw.memory_kb;
    }
    j["componentToRunWithInfo"][n] = std::move(info);
  }
  if (!d.recipe_dir.empty()) j["recipeDirectoryPath"] = d.recipe_dir;
  if (!d.artifact_dir.empty()) j["artifactsDirectoryPath"] = d.artifact_dir;
  j["failureHandlingPolicy"] = ToString(d.failure_policy);
  return j;
}

Result<std::pair<std::string, RunWith>> ParseRunWithFlag(const std::string& flag) {
  const auto colon = flag.find(':');
  const auto eq = flag.find('=');
  if (colon == std::string::npos || eq == std::string::npos || eq < colon) {
    return MakeError("--runWith " + Q(flag) + " is not Component:posixUser=user[:group]");
  }
  const std::string name = flag.substr(0, colon);
  const std::string key = flag.substr(colon + 1, eq - colon - 1);
  const std::string value = flag.substr(eq + 1);
  if (auto ok = CheckName("--runWith", name); !ok) return ok.error();
  if (key != "posixUser") {
    return MakeError("--runWith " + Q(flag) + ": only posixUser is supported on Linux");
  }
  RunWith rw;
  rw.posix_user = value;
  return std::make_pair(name, rw);
}

Result<std::pair<std::string, std::string>> ParseMergeFlag(const std::string& flag) {
  const auto eq = flag.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == flag.size()) {
    return MakeError("--merge " + Q(flag) +
                     " is not Component=version (e.g. com.example.App=1.0.0)");
  }
  std::string name = flag.substr(0, eq), version = flag.substr(eq + 1);
  if (auto ok = CheckName("--merge", name); !ok) return ok.error();
  if (auto ok = CheckVersion("--merge " + name, version); !ok) return ok.error();
  return std::make_pair(name, version);
}

}  // namespace lichen::deploy
