#include "aws/credential_providers.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>
#include <utility>

#include "common/text.h"

namespace lichen::aws {
namespace {

Error CredError(std::string_view code, std::string message) {
  return MakeError(std::string(code), std::move(message));
}

using text::Trim;

// Enough of the body to explain an error without flooding the log.
std::string Excerpt(std::string_view body) {
  constexpr size_t kMax = 200;
  std::string out(body.substr(0, kMax));
  for (char& c : out) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  if (body.size() > kMax) out += "...";
  return out;
}

}  // namespace

Result<std::chrono::system_clock::time_point> ParseIso8601(std::string_view text) {
  std::string s(Trim(text));
  int year = 0, mon = 0, day = 0, hour = 0, min = 0, sec = 0, consumed = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &year, &mon, &day, &hour, &min, &sec,
                  &consumed) != 6 ||
      consumed != 19) {
    return MakeError("not an ISO 8601 time: '" + Excerpt(s) + "'");
  }
  std::string_view rest = std::string_view(s).substr(19);
  if (!rest.empty() && rest.front() == '.') {  // fractional seconds: ignored
    rest.remove_prefix(1);
    while (!rest.empty() && std::isdigit(static_cast<unsigned char>(rest.front()))) {
      rest.remove_prefix(1);
    }
  }
  long offset_seconds = 0;
  if (rest == "Z" || rest == "z") {
  } else if (rest.size() == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':' &&
             std::isdigit(static_cast<unsigned char>(rest[1])) &&
             std::isdigit(static_cast<unsigned char>(rest[2])) &&
             std::isdigit(static_cast<unsigned char>(rest[4])) &&
             std::isdigit(static_cast<unsigned char>(rest[5]))) {
    long h = (rest[1] - '0') * 10 + (rest[2] - '0');
    long m = (rest[4] - '0') * 10 + (rest[5] - '0');
    offset_seconds = (rest[0] == '+' ? 1 : -1) * (h * 3600 + m * 60);
  } else {
    return MakeError("not an ISO 8601 UTC time: '" + Excerpt(s) + "'");
  }
  // Years outside 1970-2200 would overflow system_clock's nanoseconds (they end in 2262);
  // no credential expires then.
  if (year < 1970 || year > 2200 || mon < 1 || mon > 12 || day < 1 || day > 31 || hour < 0 ||
      hour > 23 || min < 0 || min > 59 || sec < 0 || sec > 60) {
    return MakeError("ISO 8601 time out of range: '" + Excerpt(s) + "'");
  }
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = mon - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = min;
  tm.tm_sec = sec;
  time_t t = timegm(&tm);
  return std::chrono::system_clock::from_time_t(t - offset_seconds);
}

std::string FormatIso8601(std::chrono::system_clock::time_point t) {
  time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// ---- static, environment, file ----

StaticCredentialProvider::StaticCredentialProvider(Credentials credentials)
    : credentials_(std::move(credentials)) {}

Result<Credentials> StaticCredentialProvider::Get() {
  if (credentials_.access_key_id.empty() || credentials_.secret_access_key.empty()) {
    return CredError(kCredentialsUnavailable,
                     "static credentials: access key id or secret access key is empty");
  }
  return credentials_;
}

Result<Credentials> EnvironmentCredentialProvider::Get() {
  const char* id = std::getenv("AWS_ACCESS_KEY_ID");
  const char* secret = std::getenv("AWS_SECRET_ACCESS_KEY");
  if (id == nullptr || secret == nullptr || *id == '\0' || *secret == '\0') {
    return CredError(kCredentialsUnavailable,
                     "environment credentials: AWS_ACCESS_KEY_ID or AWS_SECRET_ACCESS_KEY unset");
  }
  Credentials c{id, secret, "", std::nullopt};
  if (const char* token = std::getenv("AWS_SESSION_TOKEN"); token != nullptr)
    c.session_token = token;
  return c;
}

Result<Credentials> ParseSharedCredentials(std::string_view text, std::string_view profile) {
  Credentials c;
  bool in_profile = false, found = false;
  size_t line_no = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = Trim(text.substr(0, nl));
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    ++line_no;
    if (line.empty() || line.front() == '#' || line.front() == ';') continue;
    if (line.front() == '[') {
      if (line.back() != ']') {
        return CredError(kCredentialsUnavailable,
                         "credentials file line " + std::to_string(line_no) + ": unclosed [");
      }
      std::string_view name = Trim(line.substr(1, line.size() - 2));
      // The config file's "[profile x]" spelling is accepted here too.
      if (name.substr(0, 8) == "profile " && name != "profile") name = Trim(name.substr(8));
      in_profile = name == profile;
      found = found || in_profile;
      continue;
    }
    if (!in_profile) continue;
    size_t eq = line.find('=');
    if (eq == std::string_view::npos) continue;  // continuation lines of other keys
    const std::string key = text::Lower(Trim(line.substr(0, eq)));
    std::string value(Trim(line.substr(eq + 1)));
    if (key == "aws_access_key_id") {
      c.access_key_id = value;
    } else if (key == "aws_secret_access_key") {
      c.secret_access_key = value;
    } else if (key == "aws_session_token") {
      c.session_token = value;
    }
  }
  if (!found) {
    return CredError(kCredentialsUnavailable,
                     "credentials file has no profile '" + std::string(profile) + "'");
  }
  if (c.access_key_id.empty() || c.secret_access_key.empty()) {
    return CredError(kCredentialsUnavailable,
                     "credentials file profile '" + std::string(profile) +
                         "' lacks aws_access_key_id or aws_secret_access_key");
  }
  return c;
}

FileCredentialProvider::FileCredentialProvider(std::filesystem::path path, std::string profile)
    : path_(std::move(path)), profile_(std::move(profile)) {}

Result<Credentials> FileCredentialProvider::Get() {
  std::ifstream in(path_, std::ios::binary);
  if (!in) {
    return CredError(kCredentialsUnavailable, "cannot read credentials file " + path_.string());
  }
  std::stringstream ss;
  ss << in.rdbuf();
  auto r = ParseSharedCredentials(ss.str(), profile_);
  if (!r) return CredError(kCredentialsUnavailable, path_.string() + ": " + r.error().message);
  return r;
}

// ---- AWS IoT credentials provider ----

Result<Credentials> ParseIotCredentialsResponse(std::string_view body) {
  nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    // A successful answer carries secrets: its text never goes into an error or a log.
    return CredError(kCredentialsUnavailable, "credentials provider answered malformed JSON (" +
                                                  std::to_string(body.size()) + " bytes)");
  }
  if (!j.is_object() || !j.contains("credentials") || !j["credentials"].is_object()) {
    return CredError(kCredentialsUnavailable,
                     "credentials provider answer has no \"credentials\" object");
  }
  const auto& c = j["credentials"];
  auto str = [&](const char* key) -> std::optional<std::string> {
    auto it = c.find(key);
    if (it == c.end() || !it->is_string() || it->get_ref<const std::string&>().empty()) {
      return std::nullopt;
    }
    return it->get<std::string>();
  };
  auto id = str("accessKeyId"), secret = str("secretAccessKey"), token = str("sessionToken"),
       expiration = str("expiration");
  if (!id || !secret || !token || !expiration) {
    std::string missing;
    for (const auto& [name, value] :
         {std::pair{"accessKeyId", &id}, std::pair{"secretAccessKey", &secret},
          std::pair{"sessionToken", &token}, std::pair{"expiration", &expiration}}) {
      if (!*value) missing += std::string(missing.empty() ? "" : ", ") + name;
    }
    return CredError(kCredentialsUnavailable, "credentials provider answer lacks " + missing);
  }
  auto when = ParseIso8601(*expiration);
  if (!when) {
    return CredError(kCredentialsUnavailable,
                     "credentials provider answer: expiration: " + when.error().message);
  }
  return Credentials{*id, *secret, *token, *when};
}

namespace {

void CurlGlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// Bounds what a misbehaving endpoint can make us buffer.
constexpr size_t kMaxBody = 64 * 1024;

size_t WriteBody(char* data, size_t size, size_t n, void* user) {
  auto* body = static_cast<std::string*>(user);
  if (body->size() + size * n > kMaxBody) return 0;  // aborts the transfer
  body->append(data, size * n);
  return size * n;
}

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

}  // namespace

IotCredentialProvider::IotCredentialProvider(IotCredentialsConfig config)
    : config_(std::move(config)) {
  CurlGlobalInit();
}

Result<Credentials> IotCredentialProvider::Get() {
  int attempts = std::max(1, config_.max_attempts);
  auto backoff = config_.retry_backoff;
  for (int i = 1;; ++i) {
    bool retryable = false;
    auto r = Attempt(retryable);
    if (r.ok() || i >= attempts || !retryable) return r;
    std::this_thread::sleep_for(backoff);  // deliberate backoff between attempts
    backoff *= 2;
  }
}

Result<Credentials> IotCredentialProvider::Attempt(bool& retryable) {
  const auto& c = config_;
  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  if (!curl) return CredError(kCredentialsUnavailable, "curl_easy_init failed");
  CURL* h = curl.get();

  char* alias = curl_easy_escape(h, c.role_alias.data(), static_cast<int>(c.role_alias.size()));
  std::string url = "https://" + c.endpoint + ":" + std::to_string(c.port) + "/role-aliases/" +
                    (alias != nullptr ? alias : "") + "/credentials";
  curl_free(alias);
  std::string thing_header = "x-amzn-iot-thingname: " + c.thing_name;
  std::unique_ptr<curl_slist, SlistDeleter> headers(
      curl_slist_append(nullptr, thing_header.c_str()));
  std::unique_ptr<curl_slist, SlistDeleter> resolve;
  if (!c.connect_address.empty()) {
    std::string addr = c.connect_address;
    if (addr.find(':') != std::string::npos && addr.front() != '[') addr = "[" + addr + "]";
    resolve.reset(curl_slist_append(
        nullptr, (c.endpoint + ":" + std::to_string(c.port) + ":" + addr).c_str()));
  }

  std::string body;
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get());
  if (resolve) curl_easy_setopt(h, CURLOPT_RESOLVE, resolve.get());
  if (!c.certificate.empty()) {
    curl_easy_setopt(h, CURLOPT_SSLCERT, c.certificate.c_str());
    curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
  }
  if (!c.private_key.empty()) {
    curl_easy_setopt(h, CURLOPT_SSLKEY, c.private_key.c_str());
    curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
  }
  curl_easy_setopt(h, CURLOPT_CAINFO, c.root_ca.c_str());
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
  // "" disables proxies from the environment; only the configured one is used.
  curl_easy_setopt(h, CURLOPT_PROXY, c.proxy.c_str());
  if (!c.no_proxy.empty()) curl_easy_setopt(h, CURLOPT_NOPROXY, c.no_proxy.c_str());
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(c.connect_timeout.count()));
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(c.request_timeout.count()));
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);  // timeouts without SIGALRM: we are threaded
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, WriteBody);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);

  CURLcode rc = curl_easy_perform(h);
  std::string where = "credentials provider " + c.endpoint + " (role alias " + c.role_alias + ")";
  if (rc != CURLE_OK) {
    std::string detail = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc);
    // Network trouble may pass; certificate, key and TLS verification problems will not.
    retryable = rc == CURLE_OPERATION_TIMEDOUT || rc == CURLE_COULDNT_CONNECT ||
                rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_COULDNT_RESOLVE_PROXY ||
                rc == CURLE_SEND_ERROR || rc == CURLE_RECV_ERROR || rc == CURLE_GOT_NOTHING;
    if (rc == CURLE_OPERATION_TIMEDOUT) {
      return CredError(kCredentialsTimeout, where + ": timed out: " + detail);
    }
    if (rc == CURLE_SSL_CERTPROBLEM || rc == CURLE_SSL_CACERT_BADFILE) {
      return CredError(kCredentialsUnavailable,
                       where + ": cannot use the device certificate, key or root CA: " + detail);
    }
    if (rc == CURLE_WRITE_ERROR) {
      return CredError(kCredentialsUnavailable,
                       where + ": answer larger than " + std::to_string(kMaxBody) + " bytes");
    }
    return CredError(kCredentialsUnavailable, where + ": cannot reach: " + detail);
  }
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  if (status != 200) {
    retryable = status >= 500 || status == 429;
    std::string_view code = status >= 500                    ? kCredentialsServerError
                            : status >= 400 && status != 429 ? kCredentialsClientError
                            : status == 429                  ? kCredentialsServerError
                                                             : kCredentialsUnavailable;
    return CredError(code, where + ": HTTP " + std::to_string(status) + ": " + Excerpt(body));
  }
  auto parsed = ParseIotCredentialsResponse(body);
  if (!parsed) return CredError(parsed.error().code, where + ": " + parsed.error().message);
  return parsed;
}

// ---- cache ----

CachingCredentialProvider::CachingCredentialProvider(std::shared_ptr<CredentialProvider> inner,
                                                     CachingOptions options)
    : inner_(std::move(inner)), options_(std::move(options)) {}

bool CachingCredentialProvider::FreshLocked(std::chrono::system_clock::time_point now) const {
  return cached_.has_value() && now < cached_until_;
}

std::optional<Result<Credentials>> CachingCredentialProvider::TryCached() {
  std::lock_guard lock(mu_);
  if (FreshLocked(options_.clock())) return cached_;
  return std::nullopt;
}

void CachingCredentialProvider::Invalidate() {
  std::lock_guard lock(mu_);
  cached_.reset();
}

CachingCredentialProvider::Stats CachingCredentialProvider::stats() {
  std::lock_guard lock(mu_);
  return stats_;
}

Result<Credentials> CachingCredentialProvider::Get() {
  std::unique_lock lock(mu_);
  if (FreshLocked(options_.clock())) return *cached_;
  if (fetching_) {
    // Wait for the fetch in progress and share its result, even one too close to expiry
    // to cache: that is what "concurrent callers wait for it" means.
    uint64_t gen = generation_;
    ++stats_.waiting;
    bool done = cv_.wait_for(lock, options_.max_wait, [&] { return generation_ != gen; });
    --stats_.waiting;
    if (!done) {
      return CredError(kCredentialsTimeout, "timed out waiting for a credentials fetch");
    }
    if (cached_) return *cached_;
    return last_.has_value() ? *last_
                             : Result<Credentials>(CredError(kCredentialsUnavailable,
                                                             "credentials fetch gave no result"));
  }
  fetching_ = true;
  ++stats_.fetches;
  lock.unlock();
  Result<Credentials> r = inner_->Get();
  lock.lock();
  auto now = options_.clock();
  cached_.reset();
  if (r.ok()) {
    if (!r->expiration) {
      cached_until_ = now + options_.non_expiring_ttl;
      cached_ = r;
    } else if (*r->expiration - options_.refresh_before_expiry > now) {
      cached_until_ = *r->expiration - options_.refresh_before_expiry;
      cached_ = r;
    }
  } else {
    const std::string& code = r.error().code;
    auto ttl = code == kCredentialsClientError   ? options_.client_error_ttl
               : code == kCredentialsServerError ? options_.server_error_ttl
                                                 : options_.other_error_ttl;
    if (ttl.count() > 0) {
      cached_until_ = now + ttl;
      cached_ = r;
    }
  }
  last_ = r;
  fetching_ = false;
  ++generation_;
  cv_.notify_all();
  return r;
}

}  // namespace lichen::aws
