// Where credentials come from: fixed keys or a shared credentials file for devices that
// are not IoT things, the AWS IoT credentials provider (mutual TLS with the device
// certificate) for those that are, and a cache in front of any of them that the token
// exchange service and the S3/ECR clients share.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "aws/credentials.h"
#include "common/result.h"

namespace lichen::aws {

// Error::code values of credential failures, so callers can tell them apart (the cache
// keeps failures for different times; the token exchange service answers 504 for a
// timeout and 500 otherwise).
inline constexpr std::string_view kCredentialsClientError = "CREDENTIALS_UPSTREAM_4XX";
inline constexpr std::string_view kCredentialsServerError = "CREDENTIALS_UPSTREAM_5XX";
inline constexpr std::string_view kCredentialsTimeout = "CREDENTIALS_UPSTREAM_TIMEOUT";
// Anything else: connection or TLS failures, malformed answers, missing files.
inline constexpr std::string_view kCredentialsUnavailable = "CREDENTIALS_UNAVAILABLE";

// ISO 8601 in UTC as AWS writes it: "2026-11-28T23:00:00Z" (fractional seconds and a
// numeric offset are accepted when parsing).
Result<std::chrono::system_clock::time_point> ParseIso8601(std::string_view text);
std::string FormatIso8601(std::chrono::system_clock::time_point t);

// Long-term keys from the runtime configuration.
class StaticCredentialProvider : public CredentialProvider {
 public:
  explicit StaticCredentialProvider(Credentials credentials);
  Result<Credentials> Get() override;

 private:
  Credentials credentials_;
};

// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN of this process.
class EnvironmentCredentialProvider : public CredentialProvider {
 public:
  Result<Credentials> Get() override;
};

// The AWS shared credentials file format (an INI file, `[profile]` sections with
// aws_access_key_id / aws_secret_access_key / aws_session_token).
Result<Credentials> ParseSharedCredentials(std::string_view text, std::string_view profile);

// One profile of a shared credentials file, read on every Get() so a rotated file is
// picked up (put a CachingCredentialProvider in front to read it less often).
class FileCredentialProvider : public CredentialProvider {
 public:
  explicit FileCredentialProvider(std::filesystem::path path, std::string profile = "default");
  Result<Credentials> Get() override;

 private:
  std::filesystem::path path_;
  std::string profile_;
};

struct IotCredentialsConfig {
  std::string endpoint;  // iotCredEndpoint: host name, also used for SNI and verification
  std::string role_alias;
  std::string thing_name;
  std::filesystem::path certificate;  // device certificate (PEM)
  std::filesystem::path private_key;  // its key (PEM)
  std::filesystem::path root_ca;      // CA bundle the endpoint's certificate chains to
  uint16_t port = 443;
  // Connect to this address instead of resolving `endpoint` (tests: "127.0.0.1"); the
  // TLS name check still uses `endpoint`.
  std::string connect_address;
  std::string proxy;     // networkProxy URL; empty = none (environment proxies are ignored)
  std::string no_proxy;  // hosts that bypass it (curl's NO_PROXY syntax)
  std::chrono::milliseconds connect_timeout{5000};
  // Per attempt, so a hanging endpoint cannot hold the caller for longer than
  // attempts x this plus the backoff.
  std::chrono::milliseconds request_timeout{10000};
  int max_attempts = 3;  // retries only connection failures, timeouts, 429 and 5xx
  std::chrono::milliseconds retry_backoff{250};  // doubles per retry
};

// GET https://<endpoint>/role-aliases/<role_alias>/credentials over mutual TLS.
class IotCredentialProvider : public CredentialProvider {
 public:
  explicit IotCredentialProvider(IotCredentialsConfig config);
  Result<Credentials> Get() override;

 private:
  Result<Credentials> Attempt(bool& retryable);
  IotCredentialsConfig config_;
};

// Turns a credentials-provider answer into Credentials (exposed for tests and fuzzing).
Result<Credentials> ParseIotCredentialsResponse(std::string_view body);

struct CachingOptions {
  // Fetch again this long before the credentials expire (the spec's 300 s).
  std::chrono::seconds refresh_before_expiry{300};
  // Credentials without an expiration (long-term keys) are fetched again after this.
  std::chrono::seconds non_expiring_ttl{3600};
  // How long a failure is answered from the cache (spec: 4xx 120 s, 5xx 60 s, other 300 s).
  std::chrono::seconds client_error_ttl{120};
  std::chrono::seconds server_error_ttl{60};
  std::chrono::seconds other_error_ttl{300};
  // Upper bound on waiting for another caller's fetch (the inner provider's own timeouts
  // should end it long before).
  std::chrono::seconds max_wait{120};
  // Tests replace the clock.
  std::function<std::chrono::system_clock::time_point()> clock = [] {
    return std::chrono::system_clock::now();
  };
};

// Caches another provider's answer: success until `refresh_before_expiry` before it
// expires, failures for their TTL. One upstream fetch at a time: callers arriving while
// one runs wait for it and get its result. Thread-safe.
class CachingCredentialProvider : public CredentialProvider {
 public:
  explicit CachingCredentialProvider(std::shared_ptr<CredentialProvider> inner,
                                     CachingOptions options = {});
  Result<Credentials> Get() override;

  // The cached answer if it is still fresh, else nullopt; never fetches nor waits on a
  // fetch, so an event loop may call it.
  std::optional<Result<Credentials>> TryCached();

  // Forget the cached answer (e.g. after AWS rejected the credentials).
  void Invalidate();

  struct Stats {
    uint64_t fetches = 0;  // upstream calls made
    uint64_t waiting = 0;  // callers currently waiting for another caller's fetch
  };
  Stats stats();

 private:
  bool FreshLocked(std::chrono::system_clock::time_point now) const;

  std::shared_ptr<CredentialProvider> inner_;
  CachingOptions options_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<Result<Credentials>> cached_;
  std::optional<Result<Credentials>> last_;  // of the latest fetch, for its waiters
  std::chrono::system_clock::time_point cached_until_{};
  bool fetching_ = false;
  uint64_t generation_ = 0;  // bumped when a fetch ends
  Stats stats_;
};

}  // namespace lichen::aws
