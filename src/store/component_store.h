// The on-disk component store under <root>/packages: recipes by name and version,
// artifacts and unarchived artifacts per version. A deployment puts versions in;
// a successful deployment takes out those nothing uses any more.
//
// Writes are atomic per file (temp file, fsync, rename), so a crash leaves either the
// old or the new file, never half of one. Blocking file work: call it off the event loop.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "artifact/artifact.h"
#include "common/result.h"
#include "recipe/recipe.h"

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

  // Puts a local deployment's artifacts of one component version in place: copies
  // them from `artifact_dir` (<name>/<version>/<file>), checks digests, unarchives
  // ZIPs and applies permissions (owner = the component's user). Artifacts already in
  // the store with a matching digest are kept, so a store-only redeploy needs no
  // artifact folder. Only greengrass:/file-name artifacts are local; other schemes are
  // refused with a code naming the scheme until their fetchers exist.
  Result<void> PrepareArtifacts(const recipe::Recipe& recipe,
                                const std::vector<recipe::Artifact>& artifacts,
                                const std::string& artifact_dir,
                                const std::optional<artifact::Owner>& owner) const;

  // Removes the recipe and artifacts of every stored version not in `keep`.
  void RemoveAllExcept(const std::vector<StoredVersion>& keep) const;

 private:
  std::string root_;
};

}  // namespace lichen::store
