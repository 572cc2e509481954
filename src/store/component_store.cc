#include "store/component_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <optional>
#include <set>
#include <sstream>

#include "aws/s3.h"
#include "common/text.h"
#include "docker/image_puller.h"
#include "recipe/artifact_uri.h"
#include "recipe/interpolate.h"
#include "recipe/loader.h"

namespace lichen::store {
namespace {

namespace fs = std::filesystem;

std::string Extension(const std::string& path) {
  const std::string ext = text::Lower(fs::path(path).extension().string());
  return ext == ".json" ? "json" : "yaml";
}

// Writes `data` to `path` through a temp file and rename, with the data synced first.
Result<void> WriteFileAtomically(const std::string& path, const std::string& data) {
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return MakeError(tmp + ": " + std::strerror(errno));
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      return MakeError(tmp + ": " + std::strerror(err));
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) return MakeError(tmp + ": " + std::strerror(errno));
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return MakeError(path + ": " + std::strerror(errno));
  }
  return {};
}

// The recipe's digest check for a finished download. SHA-256 (the usual case) compares
// with the hash taken while streaming instead of reading the file again.
Result<void> CheckDownload(const recipe::Artifact& a, const std::string& part,
                           const aws::DownloadResult& d) {
  std::string algorithm;
  for (char c : a.algorithm) {
    if (c != '-') algorithm += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  if (!a.digest.empty() && algorithm == "SHA256") {
    if (d.sha256_base64 == a.digest) return {};
    return MakeError(
        "ARTIFACT_CHECKSUM_MISMATCH",
        "artifact " + a.uri + ": SHA-256 is " + d.sha256_base64 + ", the recipe says " + a.digest);
  }
  return artifact::VerifyDigest(part, a);
}

}  // namespace

ComponentStore::ComponentStore(std::string root) : root_(std::move(root)) {}

std::string ComponentStore::recipe_dir() const { return root_ + "/packages/recipes"; }

Result<void> ComponentStore::PutRecipeFile(const std::string& source_path,
                                           const recipe::Recipe& recipe) {
  std::ifstream in(source_path, std::ios::binary);
  if (!in) return MakeError(source_path + ": cannot read");
  std::stringstream buf;
  buf << in.rdbuf();
  std::error_code ec;
  fs::create_directories(recipe_dir(), ec);
  if (ec) return MakeError(recipe_dir() + ": " + ec.message());
  const std::string base =
      recipe_dir() + "/" + recipe.name + "-" + recipe.version.ToStringWithBuild();
  const std::string ext = Extension(source_path);
  // One file per version: drop a copy in the other format.
  fs::remove(base + (ext == "json" ? ".recipe.yaml" : ".recipe.json"), ec);
  return WriteFileAtomically(base + ".recipe." + ext, buf.str());
}

Result<recipe::Recipe> ComponentStore::LoadRecipe(const std::string& name,
                                                  const std::string& version) const {
  const std::string base = recipe_dir() + "/" + name + "-" + version;
  for (const char* ext : {".recipe.json", ".recipe.yaml"}) {
    std::error_code ec;
    if (!fs::exists(base + ext, ec)) continue;
    auto loaded = recipe::LoadRecipeFile(base + ext);
    if (!loaded.recipe) {
      std::string why = "not a valid recipe";
      for (const auto& d : loaded.diagnostics) {
        if (d.severity == recipe::Severity::kError) {
          why = d.path + ": " + d.message;
          break;
        }
      }
      return MakeError("RECIPE_PARSE_ERROR", base + ext + ": " + why);
    }
    return std::move(*loaded.recipe);
  }
  return MakeError("RECIPE_NOT_FOUND",
                   "no recipe of " + name + " " + version + " in the store (" + recipe_dir() + ")");
}

std::vector<StoredVersion> ComponentStore::List() const {
  std::vector<StoredVersion> out;
  std::error_code ec;
  for (fs::directory_iterator it(recipe_dir(), ec), end; !ec && it != end; it.increment(ec)) {
    auto loaded = recipe::LoadRecipeFile(it->path().string());
    if (loaded.recipe) {
      out.push_back({loaded.recipe->name, loaded.recipe->version.ToStringWithBuild()});
    }
  }
  return out;
}

std::vector<recipe::Recipe> ComponentStore::LoadAll(std::vector<std::string>* problems) const {
  std::vector<recipe::Recipe> out;
  std::error_code ec;
  std::vector<std::string> files;
  for (fs::directory_iterator it(recipe_dir(), ec), end; !ec && it != end; it.increment(ec)) {
    if (recipe::IsRecipeFileName(it->path().filename().string())) {
      files.push_back(it->path().string());
    }
  }
  std::sort(files.begin(), files.end());
  for (const auto& file : files) {
    auto loaded = recipe::LoadRecipeFile(file);
    if (loaded.recipe) {
      out.push_back(std::move(*loaded.recipe));
    } else if (problems) {
      problems->push_back(file + ": not a valid recipe");
    }
  }
  return out;
}

Result<void> ComponentStore::PrepareArtifacts(const recipe::Recipe& recipe,
                                              const std::vector<recipe::Artifact>& artifacts,
                                              const std::string& artifact_dir,
                                              const std::optional<artifact::Owner>& owner) const {
  const std::string version = recipe.version.ToStringWithBuild();
  const std::string dest = recipe::ArtifactPath(root_, recipe.name, version);
  const std::string unarchived = recipe::DecompressedPath(root_, recipe.name, version);
  std::error_code ec;
  fs::create_directories(dest, ec);
  if (ec) return MakeError("IO_ERROR", dest + ": " + ec.message());

  // Images first: the daemon and the user's access are checked before any download.
  std::vector<std::string> images;
  for (const auto& a : artifacts) {
    if (a.scheme == "docker") images.push_back(a.uri);
  }
  if (!images.empty()) {
    if (!images_) {
      return MakeError("UNSUPPORTED_ARTIFACT_SCHEME", recipe.name + " " + version + ": artifact " +
                                                          images.front() +
                                                          ": Docker support is not configured");
    }
    auto access = images_->CheckAccess(owner ? std::optional<uid_t>(owner->uid) : std::nullopt,
                                       owner ? std::optional<gid_t>(owner->gid) : std::nullopt);
    if (!access.ok()) {
      Error e = access.error();
      e.message = recipe.name + " " + version + ": " + e.message;
      return e;
    }
    auto pulled = images_->EnsureImages(images);
    if (!pulled.ok()) {
      Error e = pulled.error();
      e.message = recipe.name + " " + version + ": " + e.message;
      return e;
    }
  }

  // S3 objects that must be fetched are downloaded first, several at once (each is
  // network-bound), then put in place below like any stored copy.
  std::set<std::string> fetched;  // artifact URIs downloaded and verified here
  {
    std::vector<const recipe::Artifact*> wanted;
    std::set<std::string> destinations;
    for (const auto& a : artifacts) {
      if (a.scheme != "s3" || !s3_) continue;
      const std::string file = recipe::ArtifactFileName(a.uri);
      const std::string stored = dest + "/" + file;
      if (!artifact_dir.empty() &&
          fs::exists(artifact_dir + "/" + recipe.name + "/" + version + "/" + file, ec)) {
        continue;
      }
      if (fs::exists(stored, ec) && artifact::VerifyDigest(stored, a).ok()) continue;
      // Two URIs with the same file name share one destination: never write it twice
      // at once (the later one is fetched in the loop below, as before).
      if (!destinations.insert(stored).second) continue;
      wanted.push_back(&a);
    }
    constexpr size_t kParallelDownloads = 4;
    for (size_t first = 0; first < wanted.size(); first += kParallelDownloads) {
      std::vector<std::pair<const recipe::Artifact*, std::future<Result<void>>>> running;
      for (size_t i = first; i < std::min(wanted.size(), first + kParallelDownloads); ++i) {
        const recipe::Artifact* a = wanted[i];
        running.emplace_back(a, std::async(std::launch::async, [this, a, &dest]() -> Result<void> {
                               auto location = aws::ParseS3Uri(a->uri);
                               if (!location.ok()) return location.error();
                               auto downloaded = s3_->Download(
                                   *location, dest + "/" + recipe::ArtifactFileName(a->uri),
                                   [a](const std::string& part, const aws::DownloadResult& d) {
                                     return CheckDownload(*a, part, d);
                                   });
                               if (!downloaded.ok()) return downloaded.error();
                               return {};
                             }));
      }
      std::optional<Error> failure;
      for (auto& [a, done] : running) {
        auto r = done.get();  // every download of the batch ends before returning
        if (r.ok()) {
          fetched.insert(a->uri);
        } else if (!failure) {
          failure = r.error();
        }
      }
      if (failure) {
        failure->message = recipe.name + " " + version + ": " + failure->message;
        return *failure;
      }
    }
  }

  for (const auto& a : artifacts) {
    if (a.scheme == "docker") continue;  // pulled above; nothing goes in the store
    const std::string file = recipe::ArtifactFileName(a.uri);
    const std::string stored = dest + "/" + file;
    bool have = fetched.count(a.uri) > 0;
    if (!have && fs::exists(stored, ec)) {
      // Kept from an earlier deployment: good if it still matches its digest (no digest
      // means the recipe trusts the copy, as the nucleus does for local artifacts).
      have = artifact::VerifyDigest(stored, a).ok();
    }
    const bool local_copy_exists =
        !have && !artifact_dir.empty() &&
        fs::exists(artifact_dir + "/" + recipe.name + "/" + version + "/" + file, ec);
    if (local_copy_exists) {
      auto copied = artifact::CopyLocalArtifact(artifact_dir, recipe.name, version, a, dest);
      if (!copied.ok()) return copied.error();
    } else if (!have && a.scheme == "s3") {
      if (!s3_) {
        return MakeError("UNSUPPORTED_ARTIFACT_SCHEME",
                         recipe.name + " " + version + ": artifact " + a.uri +
                             " is not in the artifact folder and no S3 access is configured");
      }
      auto location = aws::ParseS3Uri(a.uri);
      if (!location.ok()) return location.error();
      auto downloaded = s3_->Download(*location, stored,
                                      [&a](const std::string& part, const aws::DownloadResult& d) {
                                        return CheckDownload(a, part, d);
                                      });
      if (!downloaded.ok()) {
        Error e = downloaded.error();
        e.message = recipe.name + " " + version + ": " + e.message;
        return e;
      }
    } else if (!have) {
      return MakeError("LOCAL_ARTIFACT_NOT_FOUND",
                       recipe.name + " " + version + ": artifact " + a.uri + " not found at " +
                           (artifact_dir.empty()
                                ? std::string("(no --artifactDir given)")
                                : artifact_dir + "/" + recipe.name + "/" + version + "/" + file));
    }
    if (a.unarchive == recipe::Unarchive::kZip) {
      const std::string into = artifact::UnarchiveDir(unarchived, file);
      fs::remove_all(into, ec);
      auto unzipped = artifact::UnarchiveZip(stored, into);
      if (!unzipped.ok()) return unzipped.error();
      // Unarchived files get the same permission as their archive, as the nucleus does.
      for (fs::recursive_directory_iterator it(into, ec), end; !ec && it != end; it.increment(ec)) {
        if (it->is_regular_file()) {
          auto applied = artifact::ApplyPermission(it->path().string(), a.permission, owner);
          if (!applied.ok()) return applied.error();
        }
      }
    }
    auto applied = artifact::ApplyPermission(stored, a.permission, owner);
    if (!applied.ok()) return applied.error();
  }
  return {};
}

namespace {

// Every docker: image a recipe names, in any manifest (whichever the device selected).
void CollectImages(const recipe::Recipe& r, std::set<std::string>& into) {
  for (const auto& m : r.manifests) {
    for (const auto& a : m.artifacts) {
      if (a.scheme != "docker") continue;
      auto ref = docker::ParseImageReference(a.uri);
      if (ref.ok()) into.insert(ref->ImageName());
    }
  }
}

}  // namespace

void ComponentStore::RemoveAllExcept(const std::vector<StoredVersion>& keep) const {
  std::set<std::pair<std::string, std::string>> kept;
  for (const auto& k : keep) kept.insert({k.name, k.version});
  std::error_code ec;
  // An image goes when the last stored recipe naming it goes, as the reference does
  // (users' disks filled up with old images).
  std::set<std::string> used, unused;
  for (const auto& v : List()) {
    auto r = LoadRecipe(v.name, v.version);
    if (!r.ok()) continue;
    CollectImages(*r, kept.count({v.name, v.version}) ? used : unused);
  }
  for (const auto& v : List()) {
    if (kept.count({v.name, v.version})) continue;
    fs::remove(recipe_dir() + "/" + v.name + "-" + v.version + ".recipe.json", ec);
    fs::remove(recipe_dir() + "/" + v.name + "-" + v.version + ".recipe.yaml", ec);
    fs::remove_all(recipe::ArtifactPath(root_, v.name, v.version), ec);
    fs::remove_all(recipe::DecompressedPath(root_, v.name, v.version), ec);
  }
  if (!images_) return;
  for (const auto& image : unused) {
    if (used.count(image)) continue;
    auto removed = images_->RemoveImage("docker:" + image);
    // An image left behind costs disk, not correctness: say so and go on.
    if (!removed.ok() && images_->options().log) {
      images_->options().log(image, "not removed: " + removed.error().message);
    }
  }
}

}  // namespace lichen::store
