// Device platform attributes and manifest selection.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "recipe/recipe.h"

namespace lichen::recipe {

// Attribute name -> value: "os" -> "linux", "architecture" -> "amd64", custom keys.
using Platform = std::map<std::string, std::string>;

// What this machine is: os (linux when /proc exists), architecture (amd64, x86, arm,
// aarch64) and, on ARM, architecture.detail (uname -m, e.g. armv7l).
Platform DetectPlatform();

// Adds or replaces attributes from a platformOverride-style mapping; non-text values
// are skipped.
void ApplyOverride(Platform& platform, const Json& overrides);

// Parses "os=linux,architecture=amd64" (the CLI's --platform).
Result<Platform> ParsePlatformSpec(std::string_view spec);

// "os=linux, architecture=amd64" for messages.
std::string Describe(const Platform& platform);

// Whether one manifest's Platform templates accept the device, with the reference's
// rules: missing or "*" or "//" = any value, "/re/" = whole-value regex, "all"/"any"
// for os and architecture only, lists = alternatives, null = attribute absent,
// other text = exact (and never matches unless it starts with a letter or digit).
bool PlatformMatches(const Json& templates, const Platform& platform);

// Index of the first manifest whose Platform matches, if any.
std::optional<size_t> SelectManifest(const Recipe& recipe, const Platform& platform);

}  // namespace lichen::recipe
