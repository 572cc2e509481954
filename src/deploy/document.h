// A local deployment as the Greengrass CLI's CreateLocalDeployment request
// describes it, validated, plus the CLI flags that build one.
//
// Two front doors lead here: the IPC payload (what the official SDK clients and
// Lichen's own CLI send) and `deployment create` flags. Both end in the same
// checked LocalDeployment, so the daemon never sees an unvalidated request.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "recipe/source_tree.h"

namespace lichen::deploy {

using Json = recipe::Json;

enum class FailurePolicy { kRollback, kDoNothing };
const char* ToString(FailurePolicy policy);

struct ConfigurationUpdate {
  Json merge = Json::object();     // merged over the running configuration
  std::vector<std::string> reset;  // JSON pointers reset to recipe defaults ("" = all)
};

struct RunWith {
  std::optional<std::string> posix_user;  // "user" or "user:group"; "" clears it
  std::optional<double> cpus;
  std::optional<int64_t> memory_kb;
};

struct LocalDeployment {
  std::string group_name = "LOCAL_DEPLOYMENT";
  std::map<std::string, std::string> components_to_add;  // name -> exact version
  std::vector<std::string> components_to_remove;
  std::map<std::string, ConfigurationUpdate> configuration;
  std::map<std::string, RunWith> run_with;
  std::string recipe_dir;
  std::string artifact_dir;
  // Local deployments default to DO_NOTHING, as the Greengrass CLI's do.
  FailurePolicy failure_policy = FailurePolicy::kDoNothing;
};

// Reads a CreateLocalDeployment request payload. Errors name the field and value
// ("rootComponentVersionsToAdd.com.example.App: '1.0' is not a valid version").
Result<LocalDeployment> ParseCreateLocalDeployment(const Json& request);

// The request payload for a deployment (what the CLI sends, what the queue stores).
Json ToRequestJson(const LocalDeployment& deployment);

// Parses --update-config: `{"Comp": {"MERGE": {...}, "RESET": ["/ptr", ...]}}`.
Result<std::map<std::string, ConfigurationUpdate>> ParseConfigurationUpdates(const Json& value);

// Parses one --runWith value: "Comp:posixUser=user[:group]".
Result<std::pair<std::string, RunWith>> ParseRunWithFlag(const std::string& flag);

// Parses one --merge value: "Comp=1.0.0".
Result<std::pair<std::string, std::string>> ParseMergeFlag(const std::string& flag);

}  // namespace lichen::deploy
