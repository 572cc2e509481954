#include "artifact/artifact.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>

#include "common/text.h"
#include "recipe/artifact_uri.h"

namespace lichen::artifact {
namespace {

namespace fs = std::filesystem;

constexpr size_t kChunk = 64 * 1024;

using text::Lower;

const EVP_MD* DigestFor(const std::string& algorithm) {
  const std::string a = Lower(algorithm);
  if (a == "sha-256" || a == "sha256") return EVP_sha256();
  if (a == "sha-384" || a == "sha384") return EVP_sha384();
  if (a == "sha-512" || a == "sha512") return EVP_sha512();
  if (a == "sha-1" || a == "sha1") return EVP_sha1();
  if (a == "md5") return EVP_md5();
  return nullptr;
}

struct FdCloser {
  int fd;
  ~FdCloser() {
    if (fd >= 0) ::close(fd);
  }
};

// A path inside an archive is safe when it is relative and never climbs out.
bool SafeEntryPath(const std::string& path) {
  if (path.empty() || path[0] == '/') return false;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    std::string part =
        path.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (part == "..") return false;
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return path.find('\\') == std::string::npos;  // Windows separators hide ".." too
}

}  // namespace

Result<std::string> FileDigest(const std::string& path, const std::string& algorithm) {
  const EVP_MD* md = DigestFor(algorithm);
  if (md == nullptr) return MakeError("digest algorithm '" + algorithm + "' is not supported");
  FdCloser file{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (file.fd < 0) return MakeError("cannot read " + path + ": " + std::strerror(errno));
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), md, nullptr) != 1)
    return MakeError("digest setup failed");
  std::array<unsigned char, kChunk> buf;
  while (true) {
    ssize_t n = ::read(file.fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return MakeError("cannot read " + path + ": " + std::strerror(errno));
    if (n == 0) break;
    EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<size_t>(n));
  }
  unsigned char hash[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx.get(), hash, &len);
  std::string b64(4 * ((len + 2) / 3) + 1, '\0');
  int written =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(b64.data()), hash, static_cast<int>(len));
  b64.resize(static_cast<size_t>(written));
  return b64;
}

Result<void> VerifyDigest(const std::string& path, const recipe::Artifact& artifact) {
  if (artifact.digest.empty() || artifact.algorithm.empty()) return {};
  auto actual = FileDigest(path, artifact.algorithm);
  if (!actual) return MakeError("ARTIFACT_CHECKSUM_MISMATCH", actual.error().message);
  if (*actual != artifact.digest) {
    return MakeError("ARTIFACT_CHECKSUM_MISMATCH",
                     "artifact " + artifact.uri + ": the " + artifact.algorithm + " digest of " +
                         path + " is " + *actual + ", but the recipe expects " + artifact.digest);
  }
  return {};
}

std::string UnarchiveDir(const std::string& decompressed_path, const std::string& file_name) {
  auto dot = file_name.rfind('.');
  return decompressed_path + "/" +
         (dot == std::string::npos || dot == 0 ? file_name : file_name.substr(0, dot));
}

Result<void> UnarchiveZip(const std::string& zip_path, const std::string& dest_dir) {
  const std::string fail_code = "ARTIFACT_UNARCHIVE_ERROR";
  std::error_code ec;
  const fs::path dest(dest_dir);
  fs::create_directories(dest.parent_path(), ec);
  // Unpack next to the destination, then rename: a failed or refused archive leaves
  // nothing behind, and a previous good copy stays until the new one is complete.
  const fs::path staging = dest.string() + ".unpacking-" + std::to_string(::getpid());
  fs::remove_all(staging, ec);
  fs::create_directories(staging, ec);
  if (ec) return MakeError(fail_code, "cannot create " + staging.string() + ": " + ec.message());

  std::unique_ptr<archive, decltype(&archive_read_free)> in(archive_read_new(), archive_read_free);
  archive_read_support_format_zip(in.get());
  auto cleanup = [&staging] {
    std::error_code ignored;
    fs::remove_all(staging, ignored);
  };
  if (archive_read_open_filename(in.get(), zip_path.c_str(), kChunk) != ARCHIVE_OK) {
    std::string why =
        archive_error_string(in.get()) ? archive_error_string(in.get()) : "unreadable";
    cleanup();
    return MakeError(fail_code, "cannot open " + zip_path + " as a ZIP archive: " + why);
  }
  std::unique_ptr<archive, decltype(&archive_write_free)> out(archive_write_disk_new(),
                                                              archive_write_free);
  // Entry names are checked below and then prefixed with the (absolute) staging folder,
  // so libarchive's own absolute-path refusal cannot be used; its ".." and symlink
  // guards stay on as a second line of defence.
  archive_write_disk_set_options(out.get(), ARCHIVE_EXTRACT_SECURE_NODOTDOT |
                                                ARCHIVE_EXTRACT_SECURE_SYMLINKS |
                                                ARCHIVE_EXTRACT_TIME);
  archive_entry* entry = nullptr;
  while (true) {
    int rc = archive_read_next_header(in.get(), &entry);
    if (rc == ARCHIVE_EOF) break;
    if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) {
      std::string why = archive_error_string(in.get()) ? archive_error_string(in.get()) : "corrupt";
      cleanup();
      return MakeError(fail_code, zip_path + " is not a valid ZIP archive: " + why);
    }
    const char* raw = archive_entry_pathname(entry);
    const std::string name = raw ? raw : "";
    const auto type = archive_entry_filetype(entry);
    if (!SafeEntryPath(name) || archive_entry_hardlink(entry) != nullptr || type == AE_IFLNK ||
        (type != AE_IFREG && type != AE_IFDIR)) {
      cleanup();
      return MakeError(fail_code, zip_path + ": entry '" + name +
                                      "' would be written outside its folder or is not a plain "
                                      "file; the archive was not unpacked");
    }
    archive_entry_set_pathname(entry, (staging / name).c_str());
    // Readable by all, executable where the archive says so; nothing writable by others.
    const bool exec = (archive_entry_perm(entry) & 0111) != 0;
    archive_entry_set_perm(entry, type == AE_IFDIR || exec ? 0755 : 0644);
    if (archive_write_header(out.get(), entry) != ARCHIVE_OK) {
      std::string why = archive_error_string(out.get()) ? archive_error_string(out.get()) : "?";
      cleanup();
      return MakeError(fail_code, zip_path + ": cannot unpack '" + name + "': " + why);
    }
    const void* block = nullptr;
    size_t size = 0;
    la_int64_t offset = 0;
    while ((rc = archive_read_data_block(in.get(), &block, &size, &offset)) == ARCHIVE_OK) {
      if (archive_write_data_block(out.get(), block, size, offset) != ARCHIVE_OK) {
        rc = ARCHIVE_FATAL;
        break;
      }
    }
    if (rc != ARCHIVE_EOF || archive_write_finish_entry(out.get()) != ARCHIVE_OK) {
      std::string why =
          archive_error_string(in.get()) ? archive_error_string(in.get()) : "write failed";
      cleanup();
      return MakeError(fail_code, zip_path + ": cannot unpack '" + name + "': " + why);
    }
  }
  fs::permissions(staging, fs::perms(0755), ec);
  fs::remove_all(dest, ec);
  fs::rename(staging, dest, ec);
  if (ec) {
    cleanup();
    return MakeError(fail_code,
                     "cannot move the unpacked archive to " + dest_dir + ": " + ec.message());
  }
  return {};
}

Result<void> ApplyPermission(const std::string& path, const recipe::Permission& permission,
                             const std::optional<Owner>& owner) {
  mode_t mode = 0;
  switch (permission.read) {
    case recipe::PermissionType::kAll:
      mode |= 0444;
      break;
    case recipe::PermissionType::kOwner:
      mode |= 0400;
      break;
    case recipe::PermissionType::kNone:
      break;
  }
  switch (permission.execute) {
    case recipe::PermissionType::kAll:
      mode |= 0111;
      break;
    case recipe::PermissionType::kOwner:
      mode |= 0100;
      break;
    case recipe::PermissionType::kNone:
      break;
  }
  if (owner && ::chown(path.c_str(), owner->uid, owner->gid) != 0) {
    return MakeError("cannot give " + path + " to uid " + std::to_string(owner->uid) + ": " +
                     std::strerror(errno));
  }
  if (::chmod(path.c_str(), mode) != 0) {
    return MakeError("cannot set permissions of " + path + ": " + std::strerror(errno));
  }
  return {};
}

Result<std::string> CopyLocalArtifact(const std::string& artifact_dir, const std::string& name,
                                      const std::string& version, const recipe::Artifact& artifact,
                                      const std::string& dest_dir) {
  const std::string file = recipe::ArtifactFileName(artifact.uri);
  const fs::path source = fs::path(artifact_dir) / name / version / file;
  std::error_code ec;
  if (file.empty() || !fs::is_regular_file(source, ec)) {
    return MakeError("LOCAL_ARTIFACT_NOT_FOUND", "artifact " + artifact.uri + " of " + name + " " +
                                                     version +
                                                     " is not in the "
                                                     "artifact folder: expected " +
                                                     source.string());
  }
  fs::create_directories(dest_dir, ec);
  if (ec) return MakeError("cannot create " + dest_dir + ": " + ec.message());
  const fs::path dest = fs::path(dest_dir) / file;
  const fs::path temp = fs::path(dest_dir) / ("." + file + ".partial");
  fs::copy_file(source, temp, fs::copy_options::overwrite_existing, ec);
  if (ec) return MakeError("cannot copy " + source.string() + ": " + ec.message());
  if (auto ok = VerifyDigest(temp.string(), artifact); !ok) {
    fs::remove(temp, ec);  // nothing half-checked stays in the store
    return ok.error();
  }
  {
    FdCloser f{::open(temp.c_str(), O_RDONLY | O_CLOEXEC)};
    if (f.fd >= 0) ::fsync(f.fd);
  }
  fs::rename(temp, dest, ec);
  if (ec) return MakeError("cannot move " + temp.string() + " into place: " + ec.message());
  return dest.string();
}

}  // namespace lichen::artifact
