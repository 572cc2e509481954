// A recipe file parsed into a JSON tree, plus where each node came from.
//
// JSON and YAML recipes carry the same model, so both are turned into one
// nlohmann::ordered_json tree (key order kept, so output follows the file).
// YAML plain scalars are resolved with the YAML 1.2 core schema (true, 12, 1.5,
// null); quoted scalars stay strings, and an unquoted 2020-01-25 is a string.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/result.h"

namespace lichen::recipe {

using Json = nlohmann::ordered_json;

enum class SourceFormat { kJson, kYaml };

// 1-based line and column; 0 when unknown.
struct Location {
  int line = 0;
  int column = 0;
};

struct SourceTree {
  Json root;
  // Keyed by display path ("Manifests[1].Artifacts[0].URI", keys as written).
  std::unordered_map<std::string, Location> locations;
  // Problems the parser noticed but that do not stop it (duplicate keys).
  std::vector<std::pair<std::string, std::string>> warnings;  // path, message

  Location LocationOf(const std::string& path) const;
  // The location of `path`, or of its nearest ancestor that has one (values that came
  // through selector filtering have none of their own).
  Location NearestLocation(std::string path) const;
};

// Deepest nesting accepted; deeper input is rejected instead of recursing.
inline constexpr int kMaxNestingDepth = 64;

// Picks the format from the file name: .json is JSON, everything else YAML.
SourceFormat FormatForPath(std::string_view path);

// Parses text. Errors carry "line:column: " prefixes when the parser knows them.
// YAML trees come with locations; JSON trees get them from AddJsonLocations.
Result<SourceTree> ParseSource(std::string_view text, SourceFormat format);

// Fills tree->locations for a tree parsed from JSON `text`.
void AddJsonLocations(std::string_view text, SourceTree* tree);

// Path helpers shared by everything that reports on a tree.
std::string ChildPath(const std::string& parent, std::string_view key);
std::string IndexPath(const std::string& parent, size_t index);

}  // namespace lichen::recipe
