// Downloading S3 objects (Greengrass s3:// artifacts) to files.
//
// A download streams into "<dest>.part" with constant memory, resumes a partial .part
// with a Range request (re-hashing what is on disk first), and renames the .part to
// <dest> only when the whole object is there and the caller's digest check passed: a
// failed or cut download never leaves a half-written <dest>.
//
// Errors carry the Greengrass deployment error code in Error::code:
//   S3_HEAD_OBJECT_ACCESS_DENIED / S3_ACCESS_DENIED          403 on HEAD / GET
//   S3_HEAD_OBJECT_RESOURCE_NOT_FOUND / S3_RESOURCE_NOT_FOUND 404 (object or bucket)
//   S3_BAD_REQUEST                                          other 4xx, bad URIs
//   ARTIFACT_DOWNLOAD_ERROR    retries used up (5xx, 429, expired token, network, size)
//   IO_ERROR                   the local file could not be written
//   whatever the verify hook returns (ARTIFACT_CHECKSUM_MISMATCH) after one re-download
// 403 and 404 are answered at once, without retries, naming bucket and key.
//
// Blocking (network, disk, backoff sleeps): never call it on the event loop.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "aws/credentials.h"
#include "aws/sigv4.h"
#include "common/result.h"

namespace lichen::aws {

struct S3Location {
  std::string bucket;
  std::string key;
};

// "s3://bucket/some/key" -> {bucket, "some/key"}. Code S3_BAD_REQUEST when malformed.
Result<S3Location> ParseS3Uri(std::string_view uri);

struct S3Options {
  // The region requests are signed for first. A bucket in another region is found from
  // S3's answer (x-amz-bucket-region) and remembered per bucket.
  std::string region = "us-east-1";
  // An S3-compatible server, "http://127.0.0.1:9000" (an optional base path is kept):
  // path-style requests go there. Empty: AWS itself, virtual-hosted style
  // (https://<bucket>.s3.<region>.amazonaws.com), path style for bucket names with dots.
  std::string endpoint;
  // Tries per download, the first included; each retry waits a jittered, doubling,
  // capped delay.
  int max_attempts = 5;
  std::chrono::milliseconds initial_backoff{500};
  std::chrono::milliseconds max_backoff{20'000};
  long connect_timeout_seconds = 10;
  // A transfer slower than 1 KiB/s for this long is cut and retried, so a dead link
  // can not hang a deployment.
  long low_speed_seconds = 30;
  // PEM bundle for TLS; empty = the system's.
  std::string ca_file;
  // networkProxy: the proxy URL (empty = none; the process's proxy variables are
  // ignored) and the hosts that bypass it (curl's NO_PROXY syntax).
  std::string proxy;
  std::string no_proxy;
};

struct DownloadResult {
  uint64_t size = 0;
  // SHA-256 of the whole object, computed while streaming (base64, as recipes write it).
  std::string sha256_base64;
  int attempts = 0;
  // Bytes that were already in <dest>.part from an earlier, interrupted download.
  uint64_t resumed_from = 0;
};

// Checks the complete "<dest>.part" before it becomes <dest>. An error discards the
// .part; the object is downloaded once more and checked again before the error is
// returned (a corrupted transfer heals, a wrong recipe digest fails).
using VerifyFn = std::function<Result<void>(const std::string& part_path, const DownloadResult&)>;

class S3Client {
 public:
  S3Client(S3Options options, std::shared_ptr<CredentialProvider> credentials);
  ~S3Client();
  S3Client(const S3Client&) = delete;
  S3Client& operator=(const S3Client&) = delete;

  // The object's size (HeadObject), with retries as for downloads.
  Result<uint64_t> HeadObject(const S3Location& location);

  // Downloads the object to `dest` (see the top of this file). `dest`'s directory must
  // exist. An existing <dest> is replaced only by a complete, verified object.
  Result<DownloadResult> Download(const S3Location& location, const std::string& dest,
                                  const VerifyFn& verify = {});

  // Uploads a small object from memory (single signed PUT; tests and tools).
  Result<void> PutObject(const S3Location& location, std::string_view body);

  const S3Options& options() const { return options_; }

  // Internals, defined in s3.cc (public only so its helpers can name them).
  struct Endpoint;
  struct Exchange;
  struct Outcome;
  struct Sink;

 private:
  Endpoint EndpointFor(const S3Location& location);
  Exchange Perform(void* curl, const Credentials& creds, const std::string& method,
                   const S3Location& location, const std::string& range, std::string_view body,
                   Sink* sink);
  Exchange Request(void* curl, const Credentials& creds, const std::string& method,
                   const S3Location& location, const std::string& range, std::string_view body,
                   Sink* sink);
  Outcome HeadOnce(void* curl, const Credentials& creds, const S3Location& location, uint64_t* size,
                   std::string* etag = nullptr);
  Outcome DownloadOnce(void* curl, const S3Location& location, const std::string& part,
                       std::string* etag, DownloadResult* result);
  void Backoff(int attempt);

  S3Options options_;
  std::shared_ptr<CredentialProvider> credentials_;
  std::mutex mu_;
  std::map<std::string, std::string> bucket_regions_;  // guarded by mu_
};

}  // namespace lichen::aws
