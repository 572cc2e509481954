// A Docker Engine API client over the daemon's Unix socket (libcurl).
//
// Talking to the Engine directly, rather than running the docker CLI, gives structured
// errors and progress, and registry credentials travel in the X-Registry-Auth header
// instead of being written to disk by `docker login`.
//
// Contract:
// - Every call is bounded by EngineOptions::timeout (pulls and loads by
//   transfer_timeout; StopContainer adds its grace period). Nothing retries here: callers
//   decide, with IsRetryable().
// - Failures are Errors whose `code` says what went wrong (the kDocker* constants below)
//   and whose message names the socket, image or container and what to do.
// - Errors the daemon reports inside a streamed response (a pull's or a load's JSON
//   lines) fail the call like an HTTP error status does.
// - Not thread-safe per Engine object; use one per thread (they are cheap).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace lichen::docker {

// Error codes (Error::code).
inline constexpr const char* kDockerDaemonUnavailable = "DOCKER_DAEMON_UNAVAILABLE";  // retry
inline constexpr const char* kDockerPermissionDenied = "DOCKER_SOCKET_PERMISSION_DENIED";
inline constexpr const char* kDockerTimeout = "DOCKER_TIMEOUT";  // retry
inline constexpr const char* kDockerImageNotFound = "DOCKER_IMAGE_NOT_FOUND";
inline constexpr const char* kDockerContainerNotFound = "DOCKER_CONTAINER_NOT_FOUND";
inline constexpr const char* kDockerAuthFailed = "DOCKER_REGISTRY_AUTH_FAILED";
inline constexpr const char* kDockerNoSpace = "DOCKER_NO_SPACE";
inline constexpr const char* kDockerInvalidReference = "DOCKER_INVALID_REFERENCE";
inline constexpr const char* kDockerRegistryUnreachable = "DOCKER_REGISTRY_UNREACHABLE";  // retry
inline constexpr const char* kDockerConflict = "DOCKER_CONFLICT";               // retry (in use)
inline constexpr const char* kDockerEngineError = "DOCKER_ENGINE_ERROR";        // retry (5xx)
inline constexpr const char* kDockerBadRequest = "DOCKER_BAD_REQUEST";          // caller's fault
inline constexpr const char* kDockerIoError = "DOCKER_IO_ERROR";                // local file
inline constexpr const char* kDockerInvalidTarball = "DOCKER_INVALID_TARBALL";  // load
inline constexpr const char* kDockerCancelled = "DOCKER_CANCELLED";  // the caller asked

// Whether trying again later can help: the daemon or a registry was unreachable or
// busy, or a call timed out. Not found, auth failures, bad references and full disks
// fail fast.
bool IsRetryable(const Error& error);

struct EngineOptions {
  std::string socket_path = "/var/run/docker.sock";
  // Bound of every short call (ping, inspect, list, remove, ...).
  std::chrono::milliseconds timeout{30000};
  // Bound of a whole pull or load, which move image layers.
  std::chrono::milliseconds transfer_timeout{std::chrono::minutes(30)};
  // A pull whose progress stream stays silent this long is abandoned (0 = never). dockerd
  // gives up on a registry that hangs only while pinging it: one that answers the ping and
  // then never sends a blob leaves the pull waiting with no end. A healthy pull reports
  // progress several times a second, extraction included.
  std::chrono::seconds pull_stall_timeout{60};
};

// Registry credentials for one pull (sent base64url-encoded in X-Registry-Auth).
struct RegistryAuth {
  std::string username;
  std::string password;
  std::string server_address;  // e.g. "127.0.0.1:5001", "<id>.dkr.ecr.<region>.amazonaws.com"
};

struct VersionInfo {
  std::string version;      // "20.10.24+dfsg1"
  std::string api_version;  // "1.41"
  std::string min_api_version;
  std::string os;
  std::string arch;
};

struct ImageInfo {
  std::string id;  // "sha256:..."
  std::vector<std::string> repo_tags;
  std::vector<std::string> repo_digests;
  int64_t size = 0;
};

// One line of a pull's progress stream.
struct PullProgress {
  std::string status;    // "Pulling fs layer", "Digest: sha256:...", ...
  std::string id;        // layer or tag the line is about; may be empty
  std::string progress;  // human-readable bar; may be empty
  int64_t current = 0;   // progressDetail: bytes so far of this step ("Downloading", ...)
  int64_t total = 0;     // and of the whole step; 0 when not given
  std::string raw;       // the JSON line as sent
};
using PullProgressCallback = std::function<void(const PullProgress&)>;

struct PullResult {
  std::string image;        // what was pulled, "registry/repository:tag" or "...@digest"
  std::string digest;       // the manifest digest the daemon reported, if any
  bool downloaded = false;  // false: the image was already up to date
};

struct ContainerInfo {
  std::string id;
  std::vector<std::string> names;  // without the leading "/"
  std::string image;
  std::string state;   // "running", "exited", "created", ...
  std::string status;  // "Up 3 seconds", ...
  std::map<std::string, std::string> labels;
};

// What a container was created with, as far as following its output needs.
struct ContainerDetails {
  std::string id;
  std::string name;  // without the leading "/"
  std::string image;
  std::string state;           // "created", "running", "exited", ...
  bool tty = false;            // output is one raw stream, not multiplexed
  bool attach_stdout = false;  // a client (`docker run` without -d) shows the output itself
  std::map<std::string, std::string> labels;
};

enum class LogStream { kStdout, kStderr };
using LogLineCallback = std::function<void(LogStream, std::string_view line)>;

class Engine {
 public:
  explicit Engine(EngineOptions options = {});

  const EngineOptions& options() const { return options_; }

  // GET /_ping: the daemon answers.
  Result<void> Ping() const;
  Result<VersionInfo> Version() const;
  // The image, or nullopt when the daemon does not have it.
  Result<std::optional<ImageInfo>> ImageInspect(const std::string& image) const;
  // Pulls `image` (any reference ParseImageReference accepts; no tag means "latest",
  // never "all tags"). `progress` sees every status line as it arrives. A stream silent
  // for pull_stall_timeout fails with DOCKER_REGISTRY_UNREACHABLE (retryable).
  // `cancel`, when given, is looked at about once a second; true ends the pull with
  // DOCKER_CANCELLED (closing the connection makes the daemon drop the pull).
  Result<PullResult> Pull(const std::string& image, const std::optional<RegistryAuth>& auth = {},
                          const PullProgressCallback& progress = {},
                          const std::atomic<bool>* cancel = nullptr) const;
  // Untags/removes the image; DOCKER_IMAGE_NOT_FOUND when absent, DOCKER_CONFLICT when a
  // container uses it (unless force).
  Result<void> RemoveImage(const std::string& image, bool force = false) const;
  // POST /images/load with a `docker save` tarball, streamed from disk. Returns the
  // names (or ids) the daemon reported loading.
  Result<std::vector<std::string>> LoadImage(const std::string& tarball_path) const;
  // Containers (running or not, if `all`) carrying every `labels` entry ("key" or
  // "key=value" semantics: an empty value matches any value).
  Result<std::vector<ContainerInfo>> ListContainers(
      const std::map<std::string, std::string>& labels, bool all = true) const;
  // SIGTERM, then SIGKILL after `grace`. Stopping a stopped container succeeds.
  Result<void> StopContainer(const std::string& id,
                             std::chrono::seconds grace = std::chrono::seconds(10)) const;
  Result<void> RemoveContainer(const std::string& id, bool force = false) const;
  // Networks carrying every `labels` entry (as ListContainers): id -> name.
  Result<std::map<std::string, std::string>> ListNetworks(
      const std::map<std::string, std::string>& labels) const;
  // DELETE /networks/<id>; a network already gone is success. DOCKER_CONFLICT while a
  // container is still connected to it.
  Result<void> RemoveNetwork(const std::string& id) const;
  // GET /containers/<id>/json.
  Result<ContainerDetails> InspectContainer(const std::string& id) const;
  // Follows the container's output from its start, line by line (a partial last line is
  // delivered at the end), until the container stops or `*stop` becomes true (looked at
  // about once a second). No overall timeout: the container's life bounds it.
  // `keep_going`, when given, is asked every two seconds; false ends the follow too
  // (dockerd 20.10 sometimes keeps the stream of a container that exited open).
  Result<void> FollowLogs(const std::string& id, bool tty, const LogLineCallback& on_line,
                          const std::atomic<bool>* stop,
                          std::function<bool()> keep_going = {}) const;

 private:
  EngineOptions options_;
};

// The X-Registry-Auth header value for `auth` (base64url of its JSON form).
std::string EncodeRegistryAuth(const RegistryAuth& auth);

}  // namespace lichen::docker
