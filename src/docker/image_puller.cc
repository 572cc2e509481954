#include "docker/image_puller.h"

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <random>
#include <set>
#include <string_view>
#include <thread>
#include <utility>

#include "common/text.h"
#include "docker/socket_access.h"

namespace lichen::docker {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

using text::Contains;
using text::Lower;

// The state one EnsureImages (or RemoveImage) call shares between its threads: the log, and
// whether an image has failed, which ends the waits between retries of the others (the
// deployment fails anyway; it should not wait out their backoff).
class Run {
 public:
  Run(const ImagePullerOptions& options, const std::atomic<bool>& cancelled)
      : options_(options), cancelled_(cancelled) {}

  const ImagePullerOptions& options() const { return options_; }
  const std::atomic<bool>& cancelled() const { return cancelled_; }

  void Log(const std::string& image, const std::string& message) const {
    if (options_.log) options_.log(image, message);
  }

  // Keeps the first failure; later ones only end their own image.
  void Fail(Error error) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!first_error_) first_error_ = std::move(error);
    cv_.notify_all();
  }

  bool failed() const {
    std::lock_guard<std::mutex> lock(mu_);
    return first_error_.has_value();
  }

  std::optional<Error> first_error() const {
    std::lock_guard<std::mutex> lock(mu_);
    return first_error_;
  }

  // The pause before attempt `attempt` + 1; false when another image failed or the
  // puller was cancelled meanwhile (looked at every 100 ms).
  bool Backoff(milliseconds delay) {
    const auto end = std::chrono::steady_clock::now() + delay;
    std::unique_lock<std::mutex> lock(mu_);
    while (!first_error_ && !cancelled_) {
      const auto now = std::chrono::steady_clock::now();
      if (now >= end) return true;
      cv_.wait_for(lock,
                   std::min<std::chrono::steady_clock::duration>(end - now, milliseconds(100)));
    }
    return false;
  }

 private:
  const ImagePullerOptions& options_;
  const std::atomic<bool>& cancelled_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::optional<Error> first_error_;
};

// Exponential from first_backoff, capped, with full jitter over the upper half: devices
// that lost the network together do not come back in lockstep.
milliseconds BackoffDelay(const ImagePullerOptions& o, int attempt) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  const milliseconds cap = std::max(o.max_backoff, milliseconds(0));
  milliseconds delay = std::clamp(o.first_backoff, milliseconds(0), cap);
  for (int i = 1; i < attempt && delay < cap; ++i) delay *= 2;
  const auto ms = std::min(delay, cap).count();
  std::uniform_int_distribution<long long> dist(ms / 2, ms);
  return milliseconds(dist(rng));
}

// Runs `op(attempt)` until it succeeds, fails for good, max_attempts is reached or another
// image failed. `what` names the step in the retry log lines.
template <typename Op>
auto Retrying(Run& run, const std::string& image, const std::string& what, int* attempts,
              const Op& op) -> decltype(op(1)) {
  const int max = std::max(1, run.options().max_attempts);
  for (int attempt = 1;; ++attempt) {
    *attempts = attempt;
    auto r = op(attempt);
    if (r.ok() || !IsRetryable(r.error()) || attempt >= max || run.cancelled()) return r;
    const milliseconds delay = BackoffDelay(run.options(), attempt);
    run.Log(image, what + " failed (attempt " + std::to_string(attempt) + " of " +
                       std::to_string(max) + "): " + r.error().message + "; retrying in " +
                       std::to_string(delay.count()) + " ms");
    if (!run.Backoff(delay)) {
      run.Log(image, what + (run.cancelled() ? " not retried: cancelled"
                                             : " not retried: another image failed"));
      return r;
    }
  }
}

// The Engine error `e` about `image` as a deployment error. The Engine's messages name the
// image of a failed pull; transport errors name the socket, so the image is added.
Error ToDeployment(const Error& e, const std::string& image, int attempts) {
  std::string text = Contains(e.message, image) ? e.message : "image " + image + ": " + e.message;
  if (attempts > 1) text += " (after " + std::to_string(attempts) + " attempts)";
  if (e.code == kDockerDaemonUnavailable) return MakeError(kDeployDockerServiceUnavailable, text);
  if (e.code == kDockerPermissionDenied) return MakeError(kDeployUserNotAuthorizedForDocker, text);
  if (e.code == kDockerAuthFailed) return MakeError(kDeployDockerLoginError, text);
  return MakeError(kDeployDockerPullError, text);
}

// Layer status lines, at most one per layer per status change ("Downloading" comes once
// per progress tick, hundreds per layer), and the byte counts behind PullStatus.
class ProgressLog {
 public:
  ProgressLog(const Run& run, const std::string& image) : run_(run), image_(image) {}

  void operator()(const PullProgress& p) {
    if (p.status.empty()) return;
    std::string& last = last_[p.id];
    if (last != p.status) {
      last = p.status;
      run_.Log(image_, p.id.empty() ? p.status : p.id + ": " + p.status);
    }
    if (p.id.empty() || p.status.rfind("Pulling from ", 0) == 0) return;
    Layer& layer = layers_[p.id];
    bool completed = false;
    if (p.status == "Downloading") {
      layer.current = p.current;
      if (p.total > 0) layer.total = p.total;
    } else if (p.status == "Download complete" || p.status == "Pull complete" ||
               p.status == "Already exists") {
      completed = !layer.done;
      layer.done = true;
      layer.current = layer.total;
    }
    const auto now = std::chrono::steady_clock::now();
    if (completed || now >= next_report_) {
      next_report_ = now + milliseconds(500);
      Report(false);
    }
  }

  void Begin() { Report(false); }
  void Finish() { Report(true); }

 private:
  struct Layer {
    int64_t current = 0;
    int64_t total = 0;
    bool done = false;
  };

  void Report(bool finished) const {
    if (!run_.options().progress) return;
    PullStatus status;
    status.finished = finished;
    for (const auto& [id, layer] : layers_) {
      ++status.layers;
      if (layer.done) ++status.layers_done;
      status.bytes_done += layer.current;
      status.bytes_total += layer.total;
    }
    run_.options().progress(image_, status);
  }

  const Run& run_;
  const std::string& image_;
  std::map<std::string, std::string> last_;
  std::map<std::string, Layer> layers_;
  std::chrono::steady_clock::time_point next_report_{};
};

// Credentials for pulling `ref`: private ECR asks ecr_auth; another private registry its
// registry_auth entry (host names are case-insensitive); Docker Hub and public ECR none.
Result<std::optional<RegistryAuth>> AuthFor(const ImagePullerOptions& o, const ImageReference& ref,
                                            const std::string& image) {
  switch (ref.kind) {
    case RegistryKind::kDockerHub:
    case RegistryKind::kPublicEcr:
      return std::optional<RegistryAuth>();
    case RegistryKind::kPrivateEcr: {
      if (!o.ecr_auth) {
        return MakeError(kDeployGetEcrCredentialError,
                         "cannot pull " + image + ": no credentials are configured for the " +
                             "private ECR registry " + ref.registry +
                             " (give the device's role ecr:GetAuthorizationToken and "
                             "ecr:BatchGetImage, or load the image beforehand)");
      }
      auto auth = o.ecr_auth(ref);
      if (!auth.ok()) {
        return MakeError(kDeployGetEcrCredentialError, "cannot get credentials for " + image +
                                                           " from ECR: " + auth.error().message);
      }
      if (auth->server_address.empty()) auth->server_address = ref.registry;
      return std::optional<RegistryAuth>(std::move(*auth));
    }
    case RegistryKind::kOther:
      break;
  }
  auto it = o.registry_auth.find(ref.registry);
  if (it == o.registry_auth.end()) {
    const std::string want = Lower(ref.registry);
    it = std::find_if(o.registry_auth.begin(), o.registry_auth.end(),
                      [&](const auto& entry) { return Lower(entry.first) == want; });
  }
  if (it == o.registry_auth.end()) return std::optional<RegistryAuth>();
  RegistryAuth auth = it->second;
  if (auth.server_address.empty()) auth.server_address = ref.registry;
  return std::optional<RegistryAuth>(std::move(auth));
}

// One image, by the pull policy. Deployment errors out.
Result<void> EnsureOne(Run& run, const ImageReference& ref) {
  const ImagePullerOptions& o = run.options();
  const Engine engine(o.engine);  // one per thread: an Engine is not thread-safe
  const std::string image = ref.ImageName();
  int attempts = 0;
  if (!ref.AlwaysPull()) {
    auto present =
        Retrying(run, image, "inspect", &attempts, [&](int) { return engine.ImageInspect(image); });
    if (!present.ok()) return ToDeployment(present.error(), image, attempts);
    if (present->has_value()) {
      run.Log(image, "using present image " + (*present)->id + " (" +
                         (ref.digest.empty() ? "tag " + ref.tag : "digest") +
                         " is not pulled again)");
      return {};
    }
  }
  auto auth = AuthFor(o, ref, image);
  if (!auth.ok()) return auth.error();
  const std::string how =
      *auth ? " with the credentials of user " + (*auth)->username + " for " + ref.registry : "";
  // Engine::Pull parses the name again: with the scheme, a registry host named "docker"
  // is not taken for it.
  const std::string uri = "docker:" + image;
  auto pulled = Retrying(run, image, "pull", &attempts, [&](int attempt) {
    run.Log(image, "pulling" + how + " (attempt " + std::to_string(attempt) + " of " +
                       std::to_string(std::max(1, o.max_attempts)) + ")");
    ProgressLog progress(run, image);
    progress.Begin();  // the daemon may say nothing for a while (a registry that hangs)
    auto r = engine.Pull(uri, *auth, std::ref(progress), &run.cancelled());
    progress.Finish();
    return r;
  });
  if (pulled.ok()) {
    run.Log(image, std::string(pulled->downloaded ? "pulled" : "up to date") +
                       (pulled->digest.empty() ? "" : ", digest " + pulled->digest));
    return {};
  }
  const Error& e = pulled.error();
  // "latest" always asks the registry; when it cannot be reached, the copy on the device is
  // what an offline device has to run.
  if (ref.AlwaysPull() && e.code == kDockerRegistryUnreachable) {
    auto present = engine.ImageInspect(image);
    if (present.ok() && present->has_value()) {
      run.Log(image, "warning: the registry is unreachable (" + e.message +
                         "); using the present image " + (*present)->id +
                         ", which may be older than the registry's " + ref.tag);
      return {};
    }
  }
  Error out = ToDeployment(e, image, attempts);
  if (e.code == kDockerAuthFailed && *auth && ref.kind == RegistryKind::kPrivateEcr &&
      o.ecr_auth_refused) {
    o.ecr_auth_refused(ref);
  }
  if (e.code == kDockerAuthFailed && !*auth) {
    // Nothing was refused: the registry wants credentials (or hides a missing repository
    // behind "denied"). Not a login error.
    out.code = kDeployDockerPullError;
    out.message += "; no credentials are configured for registry " + ref.registry;
  }
  return out;
}

}  // namespace

std::string PullStatus::Describe() const {
  char bytes[64] = "";
  if (bytes_total > 0) {
    std::snprintf(bytes, sizeof bytes, ", %.1f of %.1f MB", static_cast<double>(bytes_done) / 1e6,
                  static_cast<double>(bytes_total) / 1e6);
  }
  return std::string(finished ? "pull ended" : "pulling") + ": " + std::to_string(layers_done) +
         " of " + std::to_string(layers) + " layers" + bytes;
}

ImagePuller::ImagePuller(ImagePullerOptions options) : options_(std::move(options)) {}

Result<void> ImagePuller::CheckAccess(std::optional<uid_t> uid, std::optional<gid_t> gid) const {
  const std::string& socket = options_.engine.socket_path;
  const Engine engine(options_.engine);
  auto ping = engine.Ping();
  if (!ping.ok()) {
    const Error& e = ping.error();
    if (e.code == kDockerPermissionDenied) {
      return MakeError(kDeployUserNotAuthorizedForDocker,
                       "Lichen itself (uid " + std::to_string(::geteuid()) + ", user " +
                           UserNameOf(::geteuid()) +
                           ") may not use the Docker socket: " + e.message);
    }
    std::string text = e.message;
    if (!Contains(text, socket))
      text = "the Docker daemon at " + socket + " does not answer: " + text;
    return MakeError(kDeployDockerServiceUnavailable, text);
  }
  if (!uid || *uid == 0) return {};
  auto may = UserMayUseSocket(socket, *uid, gid);
  if (may.ok()) return {};
  return MakeError(may.error().code == kDockerDaemonUnavailable ? kDeployDockerServiceUnavailable
                                                                : kDeployUserNotAuthorizedForDocker,
                   may.error().message);
}

Result<void> ImagePuller::EnsureImages(const std::vector<std::string>& uris) const {
  // Every reference first: a typo in the last one should not cost the pulls of the others.
  std::vector<ImageReference> refs;
  std::set<std::string> seen;
  for (const std::string& uri : uris) {
    auto ref = ParseImageReference(uri);
    if (!ref.ok()) return MakeError(kDeployDockerUriNotValid, ref.error().message);
    if (auto problem = ref->PullProblem()) {
      return MakeError(kDeployDockerUriNotValid,
                       "docker artifact URI '" + uri + "' cannot be pulled: " + *problem);
    }
    if (seen.insert(ref->ImageName()).second) refs.push_back(std::move(*ref));
  }
  if (refs.empty()) return {};

  Run run(options_, cancelled_);
  std::atomic<size_t> next{0};
  const auto work = [&] {
    for (size_t i = next++; i < refs.size() && !run.failed() && !cancelled_; i = next++) {
      auto r = EnsureOne(run, refs[i]);
      if (!r.ok()) run.Fail(r.error());
    }
  };
  const size_t threads = std::clamp<size_t>(options_.parallel, 1, refs.size());
  std::vector<std::thread> pool;
  pool.reserve(threads - 1);
  for (size_t t = 1; t < threads; ++t) pool.emplace_back(work);
  work();  // the caller's thread is one of the `parallel`
  for (auto& t : pool) t.join();
  if (auto e = run.first_error()) return *e;
  if (cancelled_)
    return MakeError(kDeployDockerPullError, "image pulls cancelled: the runtime is stopping");
  return {};
}

Result<void> ImagePuller::RemoveImage(const std::string& uri) const {
  auto ref = ParseImageReference(uri);
  if (!ref.ok()) return MakeError(kDeployDockerUriNotValid, ref.error().message);
  const std::string image = ref->ImageName();
  Run run(options_, cancelled_);
  const Engine engine(options_.engine);
  int attempts = 0;
  auto removed = Retrying(run, image, "remove", &attempts,
                          [&](int) { return engine.RemoveImage(image, /*force=*/false); });
  if (removed.ok()) {
    run.Log(image, "removed");
    return {};
  }
  const Error& e = removed.error();
  if (e.code == kDockerImageNotFound) return {};
  // Removal is cleanup, not a pull: only the socket's problems get deployment codes;
  // the rest keep the Engine's (DOCKER_CONFLICT: a container still uses the image).
  std::string text = Contains(e.message, image) ? e.message : "image " + image + ": " + e.message;
  if (attempts > 1) text += " (after " + std::to_string(attempts) + " attempts)";
  if (e.code == kDockerDaemonUnavailable) return MakeError(kDeployDockerServiceUnavailable, text);
  if (e.code == kDockerPermissionDenied) return MakeError(kDeployUserNotAuthorizedForDocker, text);
  if (e.code == kDockerConflict) text += ": remove the containers that use it first";
  return MakeError(e.code, text);
}

}  // namespace lichen::docker
