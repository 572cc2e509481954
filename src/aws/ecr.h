// Amazon ECR registry credentials: the ECR API's GetAuthorizationToken, which trades AWS
// credentials for a 12-hour user name and password of a private registry, as
// `aws ecr get-login-password` does before a docker pull of a component's image.
//
// Every failure carries Error::code GET_ECR_CREDENTIAL_ERROR (the Greengrass deployment
// error code): AWS refused (the message names the AWS error type, e.g.
// AccessDeniedException), no AWS credentials, a malformed answer, or the retries (5xx,
// throttling, network, timeouts) used up. The token itself never appears in an error.
//
// Blocking (network, backoff sleeps): never call it on the event loop.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "aws/credentials.h"
#include "common/result.h"

namespace lichen::aws {

inline constexpr std::string_view kEcrCredentialError = "GET_ECR_CREDENTIAL_ERROR";

struct EcrOptions {
  // An ECR-compatible endpoint, "http://127.0.0.1:8080" (tests, stand-ins): requests go
  // there, still signed for the region asked for. Empty: AWS itself,
  // https://api.ecr.<region>.amazonaws.com (.com.cn in China).
  std::string endpoint;
  // Tries per call, the first included; each retry waits a jittered, doubling, capped
  // delay. Only 5xx, 429, throttling, expired tokens, network errors and timeouts retry.
  int max_attempts = 3;
  std::chrono::milliseconds initial_backoff{250};
  std::chrono::milliseconds max_backoff{2000};
  std::chrono::milliseconds connect_timeout{5000};
  // The whole exchange, per attempt: a stuck endpoint holds a caller at most
  // max_attempts x this plus the backoff.
  std::chrono::milliseconds request_timeout{15000};
  // PEM bundle for TLS; empty = the system's.
  std::string ca_file;
  // networkProxy, as for S3: the proxy URL (empty = none; the process's proxy variables
  // are ignored) and the hosts that bypass it (curl's NO_PROXY syntax).
  std::string proxy;
  std::string no_proxy;
};

struct EcrAuthorization {
  std::string username;  // "AWS"
  std::string password;
  // The registry the credentials are for: "https://<id>.dkr.ecr.<region>.amazonaws.com".
  std::string proxy_endpoint;
  std::chrono::system_clock::time_point expires_at;
};

// A private ECR registry as named in an image reference.
struct EcrRegistry {
  std::string registry_id;  // the 12-digit account id
  std::string region;
};

// "<id>.dkr.ecr.<region>.amazonaws.com[.cn]" (also dkr.ecr-fips, and with a ":443"
// port) -> the registry; nullopt for any other host (Docker Hub, public.ecr.aws, ...).
std::optional<EcrRegistry> ParseEcrRegistryHost(std::string_view host);

// A GetAuthorizationToken answer -> the first registry's credentials (exposed for tests
// and fuzzing). Malformed answers are GET_ECR_CREDENTIAL_ERROR naming what is wrong.
Result<EcrAuthorization> ParseEcrAuthorizationResponse(std::string_view body);

// Stateless besides its options: one call may run on each of several threads.
class EcrClient {
 public:
  EcrClient(EcrOptions options, std::shared_ptr<CredentialProvider> credentials);
  ~EcrClient();
  EcrClient(const EcrClient&) = delete;
  EcrClient& operator=(const EcrClient&) = delete;

  // GetAuthorizationToken for one registry (12-digit account id) in `region`, signed
  // for that region with the provider's credentials, fetched per attempt.
  Result<EcrAuthorization> GetAuthorization(const std::string& registry_id,
                                            const std::string& region) const;

  const EcrOptions& options() const { return options_; }

  // Internal, defined in ecr.cc (public only so its helpers can name it).
  struct Exchange;

 private:
  EcrOptions options_;
  std::shared_ptr<CredentialProvider> credentials_;
};

struct EcrTokenCacheOptions {
  // A cached token is fetched anew this long before it expires, so a pull never starts
  // with a token about to lapse (ECR tokens last 12 hours).
  std::chrono::seconds refresh_before_expiry{600};
  // Upper bound on waiting for another caller's fetch of the same registry (the
  // client's own timeouts end it long before).
  std::chrono::seconds max_wait{120};
  // Tests replace the clock.
  std::function<std::chrono::system_clock::time_point()> clock = [] {
    return std::chrono::system_clock::now();
  };
};

// Registry credentials per (registry id, region), reused until `refresh_before_expiry`
// before they expire. One fetch at a time per registry: callers arriving while one runs
// wait for it and share its result, failures included; failures are not cached (the
// next call fetches again). Thread-safe.
class EcrTokenCache {
 public:
  using Fetch = std::function<Result<EcrAuthorization>(const std::string& registry_id,
                                                       const std::string& region)>;
  explicit EcrTokenCache(std::shared_ptr<const EcrClient> client,
                         EcrTokenCacheOptions options = {});
  explicit EcrTokenCache(Fetch fetch, EcrTokenCacheOptions options = {});

  Result<EcrAuthorization> Get(const std::string& registry_id, const std::string& region);

  // Forget a registry's token (e.g. the registry refused it).
  void Invalidate(const std::string& registry_id, const std::string& region);

  struct Stats {
    uint64_t fetches = 0;  // GetAuthorizationToken calls made
    uint64_t waiting = 0;  // callers currently waiting for another caller's fetch
  };
  Stats stats();

 private:
  struct Entry {
    std::optional<EcrAuthorization> cached;
    std::optional<Result<EcrAuthorization>> last;  // of the latest fetch, for its waiters
    bool fetching = false;
    uint64_t generation = 0;  // bumped when a fetch ends
  };

  Fetch fetch_;
  EcrTokenCacheOptions options_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::pair<std::string, std::string>, Entry> entries_;  // guarded by mu_
  Stats stats_;                                                   // guarded by mu_
};

}  // namespace lichen::aws
