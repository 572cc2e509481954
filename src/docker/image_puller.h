// Puts the images of `docker:` component artifacts on the device, through the Docker
// Engine API (Engine), with the Greengrass nucleus's pull policy and deployment error codes.
//
// Contract:
// - Every URI is parsed before anything is pulled: one malformed reference fails the whole
//   call with DOCKER_ARTIFACT_URI_NOT_VALID and the daemon is not asked anything.
// - Pull policy (ImageReference::AlwaysPull): tag "latest" (written or assumed) always pulls;
//   any other tag, and a digest, is used as is when the daemon has it, without any network,
//   so that air-gapped devices deploy images loaded beforehand.
// - Retryable Engine errors (IsRetryable) are retried with jittered exponential backoff,
//   up to max_attempts per image; the others fail at once. Engine error codes become the
//   deployment codes below; messages keep the daemon's or registry's reason and name the
//   image.
// - Credentials go only into the X-Registry-Auth header: never to disk, never into logs.
// - Calls block (pulls move layers for minutes): call them off the event loop. One
//   ImagePuller may be used by several threads at once.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "docker/engine.h"
#include "docker/image_reference.h"

namespace lichen::docker {

// Deployment error codes (as the Greengrass nucleus names them).
inline constexpr const char* kDeployDockerServiceUnavailable = "DOCKER_SERVICE_UNAVAILABLE";
inline constexpr const char* kDeployUserNotAuthorizedForDocker = "USER_NOT_AUTHORIZED_FOR_DOCKER";
inline constexpr const char* kDeployDockerPullError = "DOCKER_PULL_ERROR";
inline constexpr const char* kDeployDockerLoginError = "DOCKER_LOGIN_ERROR";  // refused credentials
inline constexpr const char* kDeployDockerUriNotValid = "DOCKER_ARTIFACT_URI_NOT_VALID";
inline constexpr const char* kDeployGetEcrCredentialError = "GET_ECR_CREDENTIAL_ERROR";

// Where one image's pull stands, for the deployment status.
struct PullStatus {
  int layers = 0;            // layers the daemon named so far
  int layers_done = 0;       // downloaded, or present already
  int64_t bytes_done = 0;    // of the layers whose size the daemon gave
  int64_t bytes_total = 0;
  bool finished = false;     // the pull ended (either way)
  // "pulling: 2 of 3 layers, 45.2 of 200.0 MB"
  std::string Describe() const;
};

struct ImagePullerOptions {
  EngineOptions engine;
  // Credentials for private non-ECR registries, keyed by the registry as written in the
  // reference ("127.0.0.1:5001", "registry.example.com"). Sent only in X-Registry-Auth. An
  // entry without server_address is sent with the registry as its address.
  std::map<std::string, RegistryAuth> registry_auth;
  // Private ECR: credentials for one registry (from GetAuthorizationToken). Unset: a
  // private ECR image fails with GET_ECR_CREDENTIAL_ERROR saying no credentials are
  // configured. Asked only when the image has to be pulled; may be called concurrently.
  std::function<Result<RegistryAuth>(const ImageReference&)> ecr_auth;
  // The registry refused what ecr_auth gave (a token revoked or cut short): a cached token
  // should not be handed out again.
  std::function<void(const ImageReference&)> ecr_auth_refused;
  int max_attempts = 5;                           // per image, retryable errors only
  std::chrono::milliseconds first_backoff{1000};  // doubled each time, jittered, capped
  std::chrono::milliseconds max_backoff{30000};
  size_t parallel = 3;  // images pulled at once
  // Progress and decisions ("using present image", "pulling", layer status lines
  // throttled to at most one per layer per status change, retries with the reason).
  // `image` is the canonical name (ImageReference::ImageName). Called from the pulling
  // threads, concurrently: it must be thread-safe.
  std::function<void(const std::string& image, const std::string& message)> log;
  // Progress of each pull: at most every 500 ms per image, at each layer's completion and
  // once at the end. Same threads and same rules as `log`.
  std::function<void(const std::string& image, const PullStatus& status)> progress;
};

class ImagePuller {
 public:
  explicit ImagePuller(ImagePullerOptions options);

  const ImagePullerOptions& options() const { return options_; }

  // The daemon answers (else DOCKER_SERVICE_UNAVAILABLE naming the socket) and, when uid is
  // given and not 0, that user may connect to the socket: owner, or in the socket's group
  // (`gid`, else the user's primary group, or a supplementary group), or world rw, and can
  // search every directory above it (else USER_NOT_AUTHORIZED_FOR_DOCKER naming the user,
  // the socket, its group and what to do). Judged from stat(), not by connecting as the user.
  Result<void> CheckAccess(std::optional<uid_t> uid, std::optional<gid_t> gid) const;

  // Makes every image of `uris` ("docker:..." as in recipes) present, by the policy above,
  // `parallel` at a time. An image listed twice is pulled once. A "latest" pull whose
  // registry stays unreachable falls back to the image present locally, with a warning:
  // offline devices keep working. After the first failure no further image is started and
  // pending retries are abandoned; that first failure is returned once the running pulls
  // end.
  Result<void> EnsureImages(const std::vector<std::string>& uris) const;

  // Removes (untags) an image no stored recipe uses any more. A container still using it
  // is a conflict, retried like a pull (its owner may be removing it); absent = success.
  // Never forced.
  Result<void> RemoveImage(const std::string& uri) const;

  // Ends the pulls under way and every later one with DOCKER_PULL_ERROR ("cancelled"),
  // within about a second: the runtime is stopping, and a deployment that was pulling is
  // prepared again at the next start.
  void Cancel() { cancelled_ = true; }

 private:
  ImagePullerOptions options_;
  std::atomic<bool> cancelled_{false};
};

}  // namespace lichen::docker
