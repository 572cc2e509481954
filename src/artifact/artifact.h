// Putting a component's artifacts in place: digests, ZIP unarchiving that nothing
// can escape, and the recipe's Read/Execute permissions.
//
// Errors carry the Greengrass deployment error code in Error::code.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

#include "common/result.h"
#include "recipe/recipe.h"

namespace lichen::artifact {

// The file's hash, base64-encoded as Greengrass recipes write it. Algorithms:
// SHA-256, SHA-384, SHA-512, SHA-1, MD5 (any case, with or without the dash).
Result<std::string> FileDigest(const std::string& path, const std::string& algorithm);

// Checks a downloaded or copied file against the recipe's Digest; passes when the
// recipe gives no Digest or no Algorithm. Code ARTIFACT_CHECKSUM_MISMATCH on mismatch.
Result<void> VerifyDigest(const std::string& path, const recipe::Artifact& artifact);

// Unpacks a ZIP file into `dest_dir` (created if needed). Entries with absolute
// paths, "..", or links are refused and nothing of the archive is kept:
// code ARTIFACT_UNARCHIVE_ERROR names the entry.
Result<void> UnarchiveZip(const std::string& zip_path, const std::string& dest_dir);

// Where a ZIP artifact is unpacked: <decompressed>/<file name without extension>.
std::string UnarchiveDir(const std::string& decompressed_path, const std::string& file_name);

struct Owner {
  uid_t uid = 0;
  gid_t gid = 0;
};

// Applies Read/Execute (NONE, OWNER, ALL) to a file; OWNER bits go to `owner`
// when given (the component's user), who then owns the file.
Result<void> ApplyPermission(const std::string& path, const recipe::Permission& permission,
                             const std::optional<Owner>& owner);

// A local deployment's artifact: copies <artifact_dir>/<name>/<version>/<file> (file
// = last segment of the URI) to <dest_dir>/<file> atomically (temp file + rename),
// then checks the digest. Code LOCAL_ARTIFACT_NOT_FOUND when the file is missing.
Result<std::string> CopyLocalArtifact(const std::string& artifact_dir, const std::string& name,
                                      const std::string& version, const recipe::Artifact& artifact,
                                      const std::string& dest_dir);

}  // namespace lichen::artifact
