// Recipe variables: {artifacts:path}, {configuration:/ptr}, {Dep:work:path}, ...
//
// Only {namespace:key} and {component:namespace:key} shapes are variables; any
// other brace text (shell's ${#VAR}, '{}', JSON) passes through untouched. A
// variable that cannot be resolved stays as written and is reported, as the
// reference nucleus does.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "recipe/source_tree.h"

namespace lichen::recipe {

struct VariableSource {
  std::string name;
  std::string version;
  const Json* configuration = nullptr;  // the component's resolved configuration
};

struct InterpolationContext {
  std::string root;        // the runtime root, absolute: {kernel:rootPath}
  std::string thing_name;  // {iot:thingName}
  VariableSource self;
  std::map<std::string, VariableSource> dependencies;  // direct dependencies only
};

std::string InterpolateText(std::string_view text, const InterpolationContext& ctx,
                            std::vector<std::string>* problems);

// Interpolates every string in a tree (keys are left alone).
Json InterpolateTree(const Json& tree, const InterpolationContext& ctx,
                     std::vector<std::string>* problems);

// Store locations the variables name, so the store and the resolver agree.
std::string ArtifactPath(const std::string& root, const std::string& name,
                         const std::string& version);
std::string DecompressedPath(const std::string& root, const std::string& name,
                             const std::string& version);
std::string WorkPath(const std::string& root, const std::string& name);

}  // namespace lichen::recipe
