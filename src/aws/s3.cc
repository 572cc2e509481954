#include "aws/s3.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "common/text.h"

namespace lichen::aws {

namespace {

constexpr size_t kMaxErrorBody = 64 * 1024;

using text::Lower;
using text::Trim;

// <Code>...</Code> of an S3 XML error body; empty when there is none.
std::string XmlCode(const std::string& body) {
  const auto b = body.find("<Code>");
  const auto e = body.find("</Code>");
  if (b == std::string::npos || e == std::string::npos || e < b) {
    return "";
  }
  return body.substr(b + 6, e - b - 6);
}

struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) {
      ::close(fd);
    }
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

struct CurlHandle {
  CURL* curl = curl_easy_init();
  ~CurlHandle() {
    if (curl != nullptr) {
      curl_easy_cleanup(curl);
    }
  }
};

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

}  // namespace

struct S3Client::Endpoint {
  std::string base;  // scheme://host[:port]
  std::string host;  // host[:port], the signed Host header
  std::string path;  // unencoded
  std::string region;
};

// Where a successful GET's body goes: appended to `fd` at `offset`, hashed, never more
// than `limit` bytes. Anything else (error bodies, probes) is kept in memory, capped.
struct S3Client::Sink {
  int fd = -1;
  Sha256* hash = nullptr;
  uint64_t offset = 0;
  uint64_t limit = 0;
  uint64_t size = 0;  // the whole object, for a restart when a Range is ignored
  bool started = false;
  std::string if_match;  // the ETag a resumed range must still have
};

struct S3Client::Exchange {
  CURLcode code = CURLE_OK;
  std::string curl_error;
  long status = 0;
  std::map<std::string, std::string> headers;  // lower-case names, last response only
  std::string body;
  uint64_t written = 0;
  bool too_long = false;
  int io_errno = 0;
  std::string region;  // the region the request was signed for
  void* curl = nullptr;
  Sink* sink = nullptr;
};

struct S3Client::Outcome {
  enum Kind { kOk, kRetry, kFatal } kind = kOk;
  Error error;
  bool restart = false;  // the .part is no good: start over
  static Outcome Ok() { return {}; }
  static Outcome Retry(std::string message, bool restart_part = false) {
    return {kRetry, MakeError("ARTIFACT_DOWNLOAD_ERROR", std::move(message)), restart_part};
  }
  static Outcome Fatal(Error e) { return {kFatal, std::move(e), false}; }
};

Result<S3Location> ParseS3Uri(std::string_view uri) {
  constexpr std::string_view kScheme = "s3://";
  if (uri.substr(0, kScheme.size()) != kScheme) {
    return MakeError("S3_BAD_REQUEST", "not an s3:// URI: " + std::string(uri));
  }
  const std::string_view rest = uri.substr(kScheme.size());
  const auto slash = rest.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == rest.size()) {
    return MakeError(
        "S3_BAD_REQUEST",
        "an S3 artifact URI needs a bucket and a key (s3://bucket/key): " + std::string(uri));
  }
  return S3Location{std::string(rest.substr(0, slash)), std::string(rest.substr(slash + 1))};
}

S3Client::S3Client(S3Options options, std::shared_ptr<CredentialProvider> credentials)
    : options_(std::move(options)), credentials_(std::move(credentials)) {
  GlobalInit();
}

S3Client::~S3Client() = default;

S3Client::Endpoint S3Client::EndpointFor(const S3Location& location) {
  Endpoint e;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const auto it = bucket_regions_.find(location.bucket);
    e.region = it != bucket_regions_.end() ? it->second : options_.region;
  }
  if (!options_.endpoint.empty()) {
    std::string_view ep = options_.endpoint;
    const auto scheme_end = ep.find("://");
    const size_t host_start = scheme_end == std::string_view::npos ? 0 : scheme_end + 3;
    const auto path_start = ep.find('/', host_start);
    e.host = std::string(ep.substr(host_start, path_start - host_start));
    e.base = (scheme_end == std::string_view::npos ? "https://" : "") +
             std::string(ep.substr(0, path_start));
    std::string base_path =
        path_start == std::string_view::npos ? "" : std::string(ep.substr(path_start));
    while (!base_path.empty() && base_path.back() == '/') {
      base_path.pop_back();
    }
    e.path = base_path + "/" + location.bucket + "/" + location.key;
    return e;
  }
  const std::string domain = e.region.rfind("cn-", 0) == 0 ? "amazonaws.com.cn" : "amazonaws.com";
  // Virtual-hosted style unless the bucket name would break the TLS wildcard (dots).
  if (location.bucket.find('.') == std::string::npos) {
    e.host = location.bucket + ".s3." + e.region + "." + domain;
    e.path = "/" + location.key;
  } else {
    e.host = "s3." + e.region + "." + domain;
    e.path = "/" + location.bucket + "/" + location.key;
  }
  e.base = "https://" + e.host;
  return e;
}

namespace {

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* ex = static_cast<S3Client::Exchange*>(user);
  const std::string_view line(data, size * n);
  if (line.rfind("HTTP/", 0) == 0) {
    ex->headers.clear();  // a new response (after 100 Continue or a redirect)
  } else if (const auto colon = line.find(':'); colon != std::string_view::npos) {
    ex->headers[Lower(line.substr(0, colon))] = Trim(line.substr(colon + 1));
  }
  return size * n;
}

bool WriteAll(int fd, const char* data, size_t size, uint64_t offset) {
  while (size > 0) {
    const ssize_t w = ::pwrite(fd, data, size, static_cast<off_t>(offset));
    if (w < 0) {
      if (errno == EINTR) {
        continue;
      }
      return false;
    }
    data += w;
    size -= static_cast<size_t>(w);
    offset += static_cast<uint64_t>(w);
  }
  return true;
}

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* ex = static_cast<S3Client::Exchange*>(user);
  const size_t total = size * n;
  long status = 0;
  curl_easy_getinfo(static_cast<CURL*>(ex->curl), CURLINFO_RESPONSE_CODE, &status);
  S3Client::Sink* sink = ex->sink;
  if (sink == nullptr || sink->fd < 0 || (status != 200 && status != 206)) {
    if (ex->body.size() < kMaxErrorBody) {
      ex->body.append(data, std::min(total, kMaxErrorBody - ex->body.size()));
    }
    return total;
  }
  if (!sink->started) {
    sink->started = true;
    if (status == 200 && sink->offset > 0) {
      // The server ignored our Range and sends the whole object: start the file over.
      if (::ftruncate(sink->fd, 0) != 0) {
        ex->io_errno = errno;
        return 0;
      }
      *sink->hash = Sha256();
      sink->offset = 0;
      sink->limit = sink->size;
    }
  }
  if (ex->written + total > sink->limit) {
    ex->too_long = true;
    return 0;  // aborts the transfer
  }
  if (!WriteAll(sink->fd, data, total, sink->offset + ex->written)) {
    ex->io_errno = errno;
    return 0;
  }
  sink->hash->Update(data, total);
  ex->written += total;
  return total;
}

}  // namespace

S3Client::Exchange S3Client::Perform(void* handle, const Credentials& creds,
                                     const std::string& method, const S3Location& location,
                                     const std::string& range, std::string_view body, Sink* sink) {
  Exchange ex;
  ex.curl = handle;
  ex.sink = sink;
  const Endpoint ep = EndpointFor(location);
  ex.region = ep.region;

  SigningRequest req{method, ep.host, ep.path, {}, {}};
  if (!range.empty()) {
    req.headers.emplace_back("range", range);
    if (sink != nullptr && !sink->if_match.empty()) {
      req.headers.emplace_back("if-match", sink->if_match);
    }
  }
  if (method == "PUT") {
    req.headers.emplace_back("content-type", "application/octet-stream");
  }
  // GET bodies are hashed as they arrive instead; a signed payload hash only matters
  // for bodies we send.
  const SignedRequest signed_req =
      Sign(req, creds, {ep.region, "s3", std::chrono::system_clock::now(), Sha256Hex(body)});

  CURL* curl = static_cast<CURL*>(handle);
  curl_easy_reset(curl);  // keeps the connection cache: HEAD and GET share a connection
  curl_slist* list = nullptr;
  for (const auto& [k, v] : req.headers) {
    list = curl_slist_append(list, (k + ": " + v).c_str());
  }
  for (const auto& [k, v] : signed_req.headers) {
    list = curl_slist_append(list, (k + ": " + v).c_str());
  }
  list = curl_slist_append(list, "Expect:");  // no 100-continue round trip for PUT
  const std::string url = ep.base + EncodePath(ep.path);
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
  // The configured proxy only: "" turns off the variables curl would otherwise read.
  curl_easy_setopt(curl, CURLOPT_PROXY, options_.proxy.c_str());
  if (!options_.no_proxy.empty())
    curl_easy_setopt(curl, CURLOPT_NOPROXY, options_.no_proxy.c_str());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, options_.connect_timeout_seconds);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1024L);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, options_.low_speed_seconds);
  curl_easy_setopt(curl, CURLOPT_BUFFERSIZE, 256L * 1024L);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &ex);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &ex);
  if (!options_.ca_file.empty()) {
    curl_easy_setopt(curl, CURLOPT_CAINFO, options_.ca_file.c_str());
  }
  if (method == "HEAD") {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else if (method == "PUT") {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, "PUT");
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  }
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
  ex.code = curl_easy_perform(curl);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &ex.status);
  if (ex.code != CURLE_OK) {
    ex.curl_error = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(ex.code);
  }
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, nullptr);
  curl_slist_free_all(list);
  return ex;
}

// Perform, once more in the bucket's own region when S3 says the bucket lives elsewhere.
S3Client::Exchange S3Client::Request(void* curl, const Credentials& creds,
                                     const std::string& method, const S3Location& location,
                                     const std::string& range, std::string_view body, Sink* sink) {
  Exchange ex = Perform(curl, creds, method, location, range, body, sink);
  const auto it = ex.headers.find("x-amz-bucket-region");
  if ((ex.status == 301 || ex.status == 400) && it != ex.headers.end() && !it->second.empty() &&
      it->second != ex.region) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      bucket_regions_[location.bucket] = it->second;
    }
    ex = Perform(curl, creds, method, location, range, body, sink);
  }
  return ex;
}

namespace {

bool RetryableCode(const std::string& code) {
  return code == "ExpiredToken" || code == "TokenRefreshRequired" || code == "RequestTimeout" ||
         code == "SlowDown" || code == "InternalError" || code == "ServiceUnavailable";
}

}  // namespace

// What an HTTP answer means for a download: go on, try again, or stop now.
static S3Client::Outcome Classify(const S3Client::Exchange& ex, bool head, const S3Location& loc,
                                  const std::string& probe_code) {
  using O = S3Client::Outcome;
  const std::string what = "s3://" + loc.bucket + "/" + loc.key;
  if (ex.io_errno != 0) {
    return O::Fatal(MakeError(
        "IO_ERROR", "writing the download of " + what + ": " + std::strerror(ex.io_errno)));
  }
  if (ex.too_long) {
    return O::Retry(what + " is longer than its announced size (it may have changed)", true);
  }
  if (ex.code != CURLE_OK && ex.status == 0) {
    return O::Retry("cannot reach S3 for " + what + ": " + ex.curl_error);
  }
  const std::string code = !probe_code.empty() ? probe_code : XmlCode(ex.body);
  const std::string detail =
      " (HTTP " + std::to_string(ex.status) + (code.empty() ? "" : " " + code) + ")";
  if (ex.status == 403 || ex.status == 400) {
    if (RetryableCode(code)) {
      return O::Retry("S3 refused the credentials for " + what + detail);
    }
  }
  if (ex.status == 403) {
    return O::Fatal(MakeError(head ? "S3_HEAD_OBJECT_ACCESS_DENIED" : "S3_ACCESS_DENIED",
                              "access denied to bucket '" + loc.bucket + "' key '" + loc.key + "'" +
                                  detail + ": the device role needs s3:GetObject on it"));
  }
  if (ex.status == 404) {
    const std::string missing = code == "NoSuchBucket"
                                    ? "bucket '" + loc.bucket + "' does not exist"
                                    : "no object '" + loc.key + "' in bucket '" + loc.bucket + "'";
    return O::Fatal(MakeError(head ? "S3_HEAD_OBJECT_RESOURCE_NOT_FOUND" : "S3_RESOURCE_NOT_FOUND",
                              missing + detail));
  }
  if (ex.status == 408 || ex.status == 429 || ex.status >= 500) {
    return O::Retry("S3 answered " + what + detail);
  }
  if (ex.code != CURLE_OK) {
    return O::Retry("the transfer of " + what + " broke: " + ex.curl_error);
  }
  if (ex.status == 301 || ex.status == 307) {
    return O::Fatal(MakeError(
        "S3_BAD_REQUEST", "bucket '" + loc.bucket + "' is not served by this endpoint" + detail));
  }
  if (ex.status == 412) {
    return O::Retry(what + " changed during the download", true);
  }
  if (ex.status == 416) {
    return O::Retry(what + ": the partial download no longer fits the object", true);
  }
  return O::Fatal(MakeError("S3_BAD_REQUEST", "S3 refused the request for bucket '" + loc.bucket +
                                                  "' key '" + loc.key + "'" + detail));
}

S3Client::Outcome S3Client::HeadOnce(void* curl, const Credentials& creds,
                                     const S3Location& location, uint64_t* size,
                                     std::string* etag) {
  const Exchange ex = Request(curl, creds, "HEAD", location, "", "", nullptr);
  if (ex.code == CURLE_OK && ex.status == 200) {
    const auto it = ex.headers.find("content-length");
    if (it == ex.headers.end()) {
      return Outcome::Retry("S3 did not give the size of s3://" + location.bucket + "/" +
                            location.key);
    }
    *size = std::strtoull(it->second.c_str(), nullptr, 10);
    if (etag != nullptr) {
      const auto e = ex.headers.find("etag");
      *etag = e != ex.headers.end() ? e->second : "";
    }
    return Outcome::Ok();
  }
  std::string probe_code;
  if (ex.code == CURLE_OK && (ex.status == 400 || ex.status == 403)) {
    // A HEAD answer has no body to say why; one byte of GET does (ExpiredToken or not).
    probe_code = XmlCode(Request(curl, creds, "GET", location, "bytes=0-0", "", nullptr).body);
  }
  return Classify(ex, true, location, probe_code);
}

S3Client::Outcome S3Client::DownloadOnce(void* curl, const S3Location& location,
                                         const std::string& part, std::string* etag,
                                         DownloadResult* result) {
  // Fetched per attempt: a retry after ExpiredToken gets the refreshed ones.
  auto creds = credentials_->Get();
  if (!creds.ok()) {
    return Outcome::Retry("no AWS credentials for s3://" + location.bucket + "/" + location.key +
                          ": " + creds.error().message);
  }
  uint64_t size = 0;
  std::string now_etag;
  if (Outcome o = HeadOnce(curl, *creds, location, &size, &now_etag); o.kind != Outcome::kOk) {
    return o;
  }
  // A .part from an earlier attempt of this download is only a prefix of the object
  // if the object did not change in between.
  const bool changed = !etag->empty() && !now_etag.empty() && now_etag != *etag;
  *etag = now_etag;
  const std::string what = "s3://" + location.bucket + "/" + location.key;
  Fd fd(::open(part.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  struct stat st {};
  if (fd.fd < 0 || ::fstat(fd.fd, &st) != 0) {
    return Outcome::Fatal(
        MakeError("IO_ERROR", "cannot open " + part + ": " + std::strerror(errno)));
  }
  uint64_t have = static_cast<uint64_t>(st.st_size);
  if (have > size || changed) {
    // Larger than the object, or the object changed: not a prefix of it.
    if (::ftruncate(fd.fd, 0) != 0) {
      return Outcome::Fatal(MakeError("IO_ERROR", "cannot truncate " + part));
    }
    have = 0;
  }
  Sha256 hash;
  if (have > 0) {
    // Re-hash what an earlier attempt left, so the digest covers the whole object.
    std::vector<char> buf(1 << 20);
    uint64_t done = 0;
    while (done < have) {
      const ssize_t r = ::pread(fd.fd, buf.data(), std::min<uint64_t>(buf.size(), have - done),
                                static_cast<off_t>(done));
      if (r <= 0) {
        if (r < 0 && errno == EINTR) {
          continue;
        }
        return Outcome::Fatal(MakeError("IO_ERROR", "cannot read " + part));
      }
      hash.Update(buf.data(), static_cast<size_t>(r));
      done += static_cast<uint64_t>(r);
    }
    result->resumed_from = have;
  }
  if (have < size) {
    Sink sink{fd.fd, &hash, have, size - have, size, false, have > 0 ? *etag : ""};
    const std::string range = have > 0 ? "bytes=" + std::to_string(have) + "-" : "";
    const Exchange ex = Request(curl, *creds, "GET", location, range, "", &sink);
    if (ex.code != CURLE_OK || (ex.status != 200 && ex.status != 206)) {
      return Classify(ex, false, location, "");
    }
    if (sink.offset + ex.written != size) {
      return Outcome::Retry(what + " ended after " + std::to_string(sink.offset + ex.written) +
                            " of " + std::to_string(size) + " bytes");
    }
  }
  if (::fsync(fd.fd) != 0) {
    return Outcome::Fatal(
        MakeError("IO_ERROR", "cannot write " + part + ": " + std::strerror(errno)));
  }
  result->size = size;
  result->sha256_base64 = Base64(hash.Finish());
  return Outcome::Ok();
}

void S3Client::Backoff(int attempt) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  auto delay = options_.initial_backoff;
  for (int i = 1; i < attempt && delay < options_.max_backoff; ++i) {
    delay *= 2;
  }
  delay = std::min(delay, options_.max_backoff);
  // Full jitter over the upper half: devices that lost the network together do not
  // come back in lockstep.
  const auto ms = delay.count();
  std::uniform_int_distribution<long long> dist(ms / 2, std::max<long long>(ms, 0));
  std::this_thread::sleep_for(std::chrono::milliseconds(dist(rng)));
}

Result<uint64_t> S3Client::HeadObject(const S3Location& location) {
  CurlHandle h;
  Error last;
  for (int attempt = 1; attempt <= std::max(1, options_.max_attempts); ++attempt) {
    uint64_t size = 0;
    auto creds = credentials_->Get();
    Outcome o = creds.ok() ? HeadOnce(h.curl, *creds, location, &size)
                           : Outcome::Retry("no AWS credentials: " + creds.error().message);
    if (o.kind == Outcome::kOk) {
      return size;
    }
    if (o.kind == Outcome::kFatal) {
      return o.error;
    }
    last = o.error;
    if (attempt < options_.max_attempts) {
      Backoff(attempt);
    }
  }
  last.message += " (gave up after " + std::to_string(options_.max_attempts) + " attempts)";
  return last;
}

Result<DownloadResult> S3Client::Download(const S3Location& location, const std::string& dest,
                                          const VerifyFn& verify) {
  CurlHandle h;
  const std::string part = dest + ".part";
  DownloadResult result;
  std::string etag;
  bool verified_once = false;
  Error last;
  const int max_attempts = std::max(1, options_.max_attempts);
  for (int attempt = 1; attempt <= max_attempts; ++attempt) {
    result.attempts = attempt;
    Outcome o = DownloadOnce(h.curl, location, part, &etag, &result);
    if (o.kind == Outcome::kOk) {
      if (verify) {
        if (auto v = verify(part, result); !v.ok()) {
          ::unlink(part.c_str());
          if (verified_once) {
            return v.error();
          }
          // Once more from scratch: a transfer corrupted on the way heals, a wrong
          // digest in the recipe fails the same way again.
          verified_once = true;
          result.resumed_from = 0;
          last = v.error();
          continue;
        }
      }
      if (::rename(part.c_str(), dest.c_str()) != 0) {
        return MakeError("IO_ERROR",
                         "cannot move " + part + " to " + dest + ": " + std::strerror(errno));
      }
      return result;
    }
    if (o.kind == Outcome::kFatal) {
      ::unlink(part.c_str());
      return o.error;
    }
    if (o.restart) {
      ::unlink(part.c_str());
    }
    last = o.error;
    if (attempt < max_attempts) {
      Backoff(attempt);
    }
  }
  last.message += " (gave up after " + std::to_string(max_attempts) + " attempts)";
  return last;
}

Result<void> S3Client::PutObject(const S3Location& location, std::string_view body) {
  auto creds = credentials_->Get();
  if (!creds.ok()) {
    return creds.error();
  }
  CurlHandle h;
  const Exchange ex = Request(h.curl, *creds, "PUT", location, "", body, nullptr);
  if (ex.code != CURLE_OK) {
    return MakeError("S3_BAD_REQUEST",
                     "PUT s3://" + location.bucket + "/" + location.key + ": " + ex.curl_error);
  }
  if (ex.status != 200) {
    return MakeError("S3_BAD_REQUEST", "PUT s3://" + location.bucket + "/" + location.key +
                                           ": HTTP " + std::to_string(ex.status) + " " +
                                           XmlCode(ex.body));
  }
  return {};
}

}  // namespace lichen::aws
