#include "recipe/artifact_uri.h"

#include "common/text.h"
#include "docker/image_reference.h"
#include "recipe/keys.h"
#include "recipe/scalar.h"

namespace lichen::recipe {
namespace {

using text::Lower;

bool HasSpace(const std::string& s) { return s.find_first_of(" \t\r\n") != std::string::npos; }

// "<Bucket name>", "{BUCKET}", "${IMAGE}": text a person is meant to replace.
bool HasPlaceholder(const std::string& s) {
  auto has_pair = [&](char open, char close) {
    auto o = s.find(open);
    return o != std::string::npos && s.find(close, o + 1) != std::string::npos;
  };
  if (has_pair('<', '>') || has_pair('{', '}')) return true;
  // $NAME or ${NAME}: a shell-style variable a template script substitutes.
  auto dollar = s.find('$');
  return dollar != std::string::npos && dollar + 1 < s.size() &&
         (std::isalpha(static_cast<unsigned char>(s[dollar + 1])) || s[dollar + 1] == '_');
}

Result<CheckedUri> CheckStrict(const std::string& uri);

}  // namespace

Result<CheckedUri> CheckArtifactUri(const std::string& uri) {
  auto checked = CheckStrict(uri);
  if (checked || !HasPlaceholder(uri)) return checked;
  // The reference accepts such recipes and fails only when fetching; say what to do now.
  CheckedUri out;
  auto colon = uri.find(':');
  out.scheme = colon == std::string::npos ? "" : Lower(uri.substr(0, colon));
  out.warnings.push_back("this URI holds a template placeholder to fill in before deploying (" +
                         checked.error().message + ")");
  return out;
}

namespace {

Result<CheckedUri> CheckStrict(const std::string& uri) {
  CheckedUri out;
  const std::string q = Quote(uri);
  auto colon = uri.find(':');
  if (uri.empty()) return MakeError("artifact URI is empty");
  if (colon == std::string::npos || colon == 0) {
    return MakeError("artifact URI " + q +
                     " has no supported scheme: write s3://bucket/key, docker:image[:tag] or "
                     "greengrass:name");
  }
  out.scheme = Lower(uri.substr(0, colon));
  if (out.scheme == "s3") {
    if (uri.compare(colon, 3, "://") != 0) {
      return MakeError("artifact URI " + q + " is not an S3 URI: write s3://bucket/key");
    }
    std::string rest = uri.substr(colon + 3);
    auto slash = rest.find('/');
    if (slash == 0 || rest.empty()) {
      return MakeError("artifact URI " + q + " has no bucket: write s3://bucket/key");
    }
    if (slash == std::string::npos) {
      // Accepted by the reference's model, but no download can succeed.
      out.warnings.push_back("artifact URI " + q + " names a bucket but no object key " +
                             "(write s3://bucket/key); downloading it will fail");
      return out;
    }
    if (slash + 1 >= rest.size() || rest.back() == '/') {
      return MakeError("artifact URI " + q +
                       " names no object: it ends at a folder, write "
                       "s3://bucket/path/file");
    }
    if (HasSpace(uri)) {
      return MakeError("artifact URI " + q + " contains white space; encode it as %20");
    }
    return out;
  }
  if (out.scheme == "docker") {
    auto ref = docker::ParseImageReference(uri);
    if (!ref) return MakeError(ref.error().message);
    if (auto problem = ref->PullProblem()) {
      out.warnings.push_back("docker image " + q + ": " + *problem +
                             ", so the Docker Engine will refuse to pull it");
    }
    if (ref->tag_defaulted) {
      out.warnings.push_back("docker image " + q +
                             " has no tag: 'latest' is assumed, and 'latest' is pulled again at "
                             "every deployment");
    }
    return out;
  }
  if (out.scheme == "greengrass") {
    if (colon + 1 >= uri.size()) return MakeError("artifact URI " + q + " names no artifact");
    return out;
  }
  return MakeError("artifact URI " + q + " has no supported scheme: '" + uri.substr(0, colon) +
                   ":' is not one of s3:, docker:, greengrass:");
}

}  // namespace

std::optional<std::string> CheckDigest(const std::string& digest, const std::string& algorithm) {
  size_t bytes = 0;
  std::string algo = Lower(algorithm);
  if (algo == "sha-256" || algo == "sha256") {
    bytes = 32;
  } else if (algo == "sha-384" || algo == "sha384") {
    bytes = 48;
  } else if (algo == "sha-512" || algo == "sha512") {
    bytes = 64;
  } else if (algo == "sha-1" || algo == "sha1") {
    bytes = 20;
  } else if (algo == "md5") {
    bytes = 16;
  } else {
    return "Algorithm " + Quote(algorithm) +
           " is not supported (SHA-256, SHA-384, SHA-512, SHA-1, MD5): the digest cannot be "
           "checked";
  }
  for (char c : digest) {
    bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/' || c == '=';
    if (!ok) {
      return "Digest " + Quote(digest) +
             " is not base64, so the downloaded file can never match it (Greengrass digests are "
             "base64 of the raw hash, not hex)";
    }
  }
  const size_t expected = (bytes + 2) / 3 * 4;
  if (digest.size() != expected) {
    std::string msg = "Digest " + Quote(digest) + " has " + std::to_string(digest.size()) +
                      " characters; a base64 " + algorithm + " digest has " +
                      std::to_string(expected);
    if (digest.size() == bytes * 2) msg += " (this looks like hex: encode the raw hash in base64)";
    return msg;
  }
  return std::nullopt;
}

std::string ArtifactFileName(const std::string& uri) {
  auto slash = uri.find_last_of('/');
  if (slash != std::string::npos) return uri.substr(slash + 1);
  auto colon = uri.find_last_of(':');
  return colon == std::string::npos ? uri : uri.substr(colon + 1);
}

}  // namespace lichen::recipe
