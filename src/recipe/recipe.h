// The Greengrass component recipe model (RecipeFormatVersion 2020-01-25).
//
// A Recipe is what a file says, validated but not yet specialised to a device:
// manifests keep their Platform templates and lifecycles stay JSON until a
// platform picks one (see platform.h and lifecycle.h).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "recipe/source_tree.h"
#include "semver/version.h"

namespace lichen::recipe {

enum class ComponentType { kGeneric, kPlugin, kLambda, kNucleus };
enum class DependencyType { kHard, kSoft };
enum class Unarchive { kNone, kZip };
enum class PermissionType { kNone, kOwner, kAll };

struct Dependency {
  std::string name;
  std::string version_requirement;  // npm range text; "" means any
  DependencyType type = DependencyType::kHard;
};

struct Permission {
  PermissionType read = PermissionType::kOwner;
  PermissionType execute = PermissionType::kNone;
};

struct Artifact {
  std::string uri;
  std::string scheme;     // lower-cased: "s3", "greengrass", "docker"
  std::string digest;     // base64, as written
  std::string algorithm;  // e.g. "SHA-256"
  Unarchive unarchive = Unarchive::kNone;
  Permission permission;
};

struct Manifest {
  Json platform = Json::object();   // templates: "os": "linux", "architecture": "/aarch64|arm64/"
  Json lifecycle = Json::object();  // manifest-level lifecycle (wins when non-empty)
  std::vector<std::string> selections;
  std::vector<Artifact> artifacts;
};

struct Recipe {
  std::string format_version;
  std::string name;
  semver::Version version;
  ComponentType type = ComponentType::kGeneric;
  std::string description;
  std::string publisher;
  std::string source;
  Json default_configuration = Json::object();
  std::vector<Dependency> dependencies;  // in file order
  std::vector<Manifest> manifests;
  Json global_lifecycle = Json::object();  // recipe-wide Lifecycle (used with Selections)
};

const char* ToString(ComponentType t);
const char* ToString(DependencyType t);
const char* ToString(Unarchive u);
const char* ToString(PermissionType p);

}  // namespace lichen::recipe
