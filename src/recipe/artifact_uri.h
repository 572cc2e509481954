// Checks of artifact URIs and digests as written in a recipe, before any download.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace lichen::recipe {

struct CheckedUri {
  std::string scheme;                 // lower-cased: "s3", "greengrass" or "docker"
  std::vector<std::string> warnings;  // e.g. a docker image without a tag
};

// Accepts s3://bucket/key, greengrass:name and docker:<image reference>
// (schemes in any case); anything else is an error that names the URI.
Result<CheckedUri> CheckArtifactUri(const std::string& uri);

// A digest that cannot match (not base64, wrong length for the algorithm, unknown
// algorithm) is reported, since the download would then always fail its check.
std::optional<std::string> CheckDigest(const std::string& digest, const std::string& algorithm);

// The file name an artifact is stored under: the last path segment of the URI.
std::string ArtifactFileName(const std::string& uri);

}  // namespace lichen::recipe
