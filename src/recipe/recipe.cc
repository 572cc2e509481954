#include "recipe/recipe.h"

namespace lichen::recipe {

const char* ToString(ComponentType t) {
  switch (t) {
    case ComponentType::kGeneric:
      return "aws.greengrass.generic";
    case ComponentType::kPlugin:
      return "aws.greengrass.plugin";
    case ComponentType::kLambda:
      return "aws.greengrass.lambda";
    case ComponentType::kNucleus:
      return "aws.greengrass.nucleus";
  }
  return "?";
}

const char* ToString(DependencyType t) { return t == DependencyType::kHard ? "HARD" : "SOFT"; }

const char* ToString(Unarchive u) { return u == Unarchive::kZip ? "ZIP" : "NONE"; }

const char* ToString(PermissionType p) {
  switch (p) {
    case PermissionType::kNone:
      return "NONE";
    case PermissionType::kOwner:
      return "OWNER";
    case PermissionType::kAll:
      return "ALL";
  }
  return "?";
}

}  // namespace lichen::recipe
