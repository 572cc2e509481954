// The on-disk component store under <root>/packages: recipes by name and version,
// artifacts and unarchived artifacts per version. A deployment puts versions in;
// a successful deployment takes out those nothing uses any more.
//
// Writes are atomic per file (temp file, fsync, rename), so a crash leaves either the
// old or the new file, never half of one. Blocking file work: call it off the event loop.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "artifact/artifact.h"
#include "common/result.h"
#include "recipe/recipe.h"

namespace lichen::aws {
class S3Client;  // aws/s3.h
}  // namespace lichen::aws
namespace lichen::docker {
class ImagePuller;  // docker/image_puller.h
}  // namespace lichen::docker

namespace lichen::store {

struct StoredVersion {
  std::string name;
  std::string version;
};

class ComponentStore {
 public:
  explicit ComponentStore(std::string root);

  const std::string& root() const { return root_; }
  std::string recipe_dir() const;

  // Copies a recipe file as written (JSON or YAML) into the store under
  // "<name>-<version>.recipe.<ext>", replacing an older copy of the same version.
  Result<void> PutRecipeFile(const std::string& source_path, const recipe::Recipe& recipe);
  // The stored recipe of one version; an error names the file and the problem.
  Result<recipe::Recipe> LoadRecipe(const std::string& name, const std::string& version) const;
  std::vector<StoredVersion> List() const;
  // Every stored recipe that loads (what the resolver may choose from).
  std::vector<recipe::Recipe> LoadAll(std::vector<std::string>* problems) const;

  // Where s3:// artifacts come from (endpoint, region, credentials). Without one, an
  // s3:// artifact that is neither in the store nor in the artifact folder fails with
  // UNSUPPORTED_ARTIFACT_SCHEME. Set it before deployments run; not synchronized.
  void SetS3Client(std::shared_ptr<aws::S3Client> s3) { s3_ = std::move(s3); }
  const std::shared_ptr<aws::S3Client>& s3_client() const { return s3_; }
  // Where docker: images come from (the Docker daemon). Without one, docker: artifacts
  // fail with UNSUPPORTED_ARTIFACT_SCHEME. Set it before deployments run.
  void SetImagePuller(std::shared_ptr<docker::ImagePuller> puller) { images_ = std::move(puller); }
  const std::shared_ptr<docker::ImagePuller>& image_puller() const { return images_; }

  // Puts the artifacts of one component version in place: copies local ones from
  // `artifact_dir` (<name>/<version>/<file>), downloads s3:// ones (resumable, into the
  // artifact folder) when they are not there, checks digests, unarchives ZIPs and
  // applies permissions (owner = the component's user). Artifacts already in the store
  // with a matching digest are kept, so a store-only redeploy needs no artifact folder
  // and no network. docker: images are pulled by the image puller (its pull policy
  // decides whether the network is needed), after checking that the component's user may
  // use the Docker daemon.
  // Blocking (disk, network): call it off the event loop.
  Result<void> PrepareArtifacts(const recipe::Recipe& recipe,
                                const std::vector<recipe::Artifact>& artifacts,
                                const std::string& artifact_dir,
                                const std::optional<artifact::Owner>& owner) const;

  // Removes the recipe and artifacts of every stored version not in `keep`, and the
  // docker: images only those versions used (so old images do not fill the disk).
  void RemoveAllExcept(const std::vector<StoredVersion>& keep) const;

 private:
  std::string root_;
  std::shared_ptr<aws::S3Client> s3_;
  std::shared_ptr<docker::ImagePuller> images_;
};

}  // namespace lichen::store
