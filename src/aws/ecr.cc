#include "aws/ecr.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <exception>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>
#include <vector>

#include "aws/sigv4.h"
#include "common/text.h"

namespace lichen::aws {

namespace {

constexpr char kTarget[] = "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken";
constexpr char kContentType[] = "application/x-amz-json-1.1";
// Answers are a few KiB (the token is ~2-3 KiB); this bounds what a misbehaving
// endpoint can make us buffer.
constexpr size_t kMaxBody = 256 * 1024;

Error EcrError(std::string message) {
  return MakeError(std::string(kEcrCredentialError), std::move(message));
}

using text::Lower;
using text::Trim;

// Server-supplied text fit for one line of an error: printable, bounded.
std::string Excerpt(std::string_view s, size_t max = 300) {
  std::string out;
  for (char c : s.substr(0, max)) {
    out += std::isprint(static_cast<unsigned char>(c)) != 0 ? c : ' ';
  }
  if (s.size() > max) {
    out += "...";
  }
  return std::string(Trim(out));
}

bool IsRegistryId(std::string_view id) {
  return id.size() == 12 && std::all_of(id.begin(), id.end(), [](char c) {
           return std::isdigit(static_cast<unsigned char>(c)) != 0;
         });
}

// Goes into a host name, so nothing but what region names are made of.
bool IsRegion(std::string_view region) {
  return !region.empty() && region.size() <= 32 &&
         std::all_of(region.begin(), region.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
         });
}

// Strict RFC 4648 base64 with padding; nullopt on anything else.
std::optional<std::string> DecodeBase64(std::string_view in) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  if (in.empty() || in.size() % 4 != 0) {
    return std::nullopt;
  }
  size_t pad = 0;
  while (pad < 2 && in[in.size() - 1 - pad] == '=') {
    ++pad;
  }
  std::string out;
  out.reserve(in.size() / 4 * 3);
  for (size_t i = 0; i < in.size(); i += 4) {
    uint32_t bits = 0;
    for (size_t j = 0; j < 4; ++j) {
      const size_t at = i + j;
      const bool padding = at >= in.size() - pad;
      const int v = padding ? 0 : value(in[at]);
      if (v < 0) {
        return std::nullopt;
      }
      bits = bits << 6 | static_cast<uint32_t>(v);
    }
    out += static_cast<char>(bits >> 16);
    out += static_cast<char>(bits >> 8 & 0xff);
    out += static_cast<char>(bits & 0xff);
  }
  out.resize(out.size() - pad);
  return out;
}

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

}  // namespace

std::optional<EcrRegistry> ParseEcrRegistryHost(std::string_view host) {
  std::string h = Lower(host);
  if (const auto colon = h.find(':'); colon != std::string::npos) {
    h.resize(colon);
  }
  std::vector<std::string> labels;
  size_t start = 0;
  for (size_t dot = h.find('.'); dot != std::string::npos; dot = h.find('.', start)) {
    labels.push_back(h.substr(start, dot - start));
    start = dot + 1;
  }
  labels.push_back(h.substr(start));
  const bool china = labels.size() == 7 && labels[6] == "cn";
  if ((labels.size() != 6 && !china) || !IsRegistryId(labels[0]) || labels[1] != "dkr" ||
      (labels[2] != "ecr" && labels[2] != "ecr-fips") || !IsRegion(labels[3]) ||
      labels[4] != "amazonaws" || labels[5] != "com") {
    return std::nullopt;
  }
  return EcrRegistry{labels[0], labels[3]};
}

Result<EcrAuthorization> ParseEcrAuthorizationResponse(std::string_view body) {
  // The answer carries the registry password: its text never goes into an error.
  const nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return EcrError("the answer is not a JSON object (" + std::to_string(body.size()) + " bytes)");
  }
  const auto data = j.find("authorizationData");
  if (data == j.end() || !data->is_array() || data->empty() || !(*data)[0].is_object()) {
    return EcrError("the answer has no authorizationData");
  }
  const nlohmann::json& d = (*data)[0];
  const auto token = d.find("authorizationToken");
  if (token == d.end() || !token->is_string()) {
    return EcrError("the answer has no authorizationToken");
  }
  const auto decoded = DecodeBase64(token->get_ref<const std::string&>());
  if (!decoded) {
    return EcrError("the answer's authorizationToken is not base64");
  }
  const auto colon = decoded->find(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == decoded->size()) {
    return EcrError("the answer's authorizationToken is not \"user:password\"");
  }
  const auto expires = d.find("expiresAt");
  // A number of epoch seconds (JSON 1.1 timestamps), fractional as AWS sends them;
  // bounded so the conversion can not overflow.
  if (expires == d.end() || !expires->is_number() || !std::isfinite(expires->get<double>()) ||
      expires->get<double>() <= 0 || expires->get<double>() > 4'102'444'800.0) {
    return EcrError("the answer has no expiresAt in epoch seconds");
  }
  const auto proxy = d.find("proxyEndpoint");
  if (proxy == d.end() || !proxy->is_string() || proxy->get_ref<const std::string&>().empty()) {
    return EcrError("the answer has no proxyEndpoint");
  }
  EcrAuthorization a;
  a.username = decoded->substr(0, colon);
  a.password = decoded->substr(colon + 1);
  a.proxy_endpoint = proxy->get<std::string>();
  // Rounded to AWS's millisecond precision: 1700000000.123 is 1700000000.12299... as a
  // double, and truncating it would lose the last millisecond.
  a.expires_at = std::chrono::system_clock::time_point(
      std::chrono::milliseconds(std::llround(expires->get<double>() * 1000)));
  return a;
}

struct EcrClient::Exchange {
  CURLcode code = CURLE_OK;
  std::string curl_error;
  long status = 0;
  std::map<std::string, std::string> headers;  // lower-case names, last response only
  std::string body;
};

namespace {

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* ex = static_cast<EcrClient::Exchange*>(user);
  const std::string_view line(data, size * n);
  if (line.rfind("HTTP/", 0) == 0) {
    ex->headers.clear();  // a new response (after 100 Continue)
  } else if (const auto colon = line.find(':'); colon != std::string_view::npos) {
    ex->headers[Lower(line.substr(0, colon))] = Trim(line.substr(colon + 1));
  }
  return size * n;
}

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* body = &static_cast<EcrClient::Exchange*>(user)->body;
  if (body->size() + size * n > kMaxBody) {
    return 0;  // aborts the transfer
  }
  body->append(data, size * n);
  return size * n;
}

// Error types that say "later" rather than "no" (AWS JSON protocol services answer
// throttling with 400).
bool RetryableType(const std::string& type) {
  return type == "ThrottlingException" || type == "ThrottledException" ||
         type == "TooManyRequestsException" || type == "RequestLimitExceeded" ||
         type == "ServerException" || type == "InternalFailure" || type == "ServiceUnavailable" ||
         type == "ServiceUnavailableException" || type == "ExpiredTokenException" ||
         type == "RequestTimeout" || type == "RequestTimeoutException";
}

// What a caller can do about a refusal.
std::string Hint(const std::string& type) {
  if (type == "AccessDeniedException") {
    return "; the device role (the token exchange role) needs ecr:GetAuthorizationToken";
  }
  if (type == "UnrecognizedClientException" || type == "InvalidSignatureException" ||
      type == "InvalidClientTokenId" || type == "IncompleteSignatureException" ||
      type == "MissingAuthenticationTokenException" || type == "SignatureDoesNotMatch") {
    return "; AWS did not accept the credentials: check the device's AWS credentials and its "
           "clock";
  }
  return "";
}

// The AWS error type and message of an error answer: "com.amazonaws.ecr#X" in the body's
// __type, else the x-amzn-ErrorType header ("X:http://internal..."); empty when neither.
std::pair<std::string, std::string> AwsError(const EcrClient::Exchange& ex) {
  std::string type;
  std::string message;
  const nlohmann::json j = nlohmann::json::parse(ex.body, nullptr, /*allow_exceptions=*/false);
  if (j.is_object()) {
    for (const char* key : {"__type", "code", "Code"}) {
      if (const auto it = j.find(key); it != j.end() && it->is_string()) {
        type = it->get<std::string>();
        break;
      }
    }
    for (const char* key : {"message", "Message", "errorMessage"}) {
      if (const auto it = j.find(key); it != j.end() && it->is_string()) {
        message = it->get<std::string>();
        break;
      }
    }
  }
  if (const auto it = ex.headers.find("x-amzn-errortype"); type.empty() && it != ex.headers.end()) {
    type = it->second.substr(0, it->second.find(':'));
  }
  if (const auto hash = type.rfind('#'); hash != std::string::npos) {
    type = type.substr(hash + 1);
  }
  if (!j.is_object() && !ex.body.empty()) {
    message = ex.body;  // a proxy's or load balancer's page, not JSON: show its start
  }
  return {Excerpt(type, 100), Excerpt(message)};
}

bool RetryableCurlCode(CURLcode rc) {
  // Network trouble may pass; certificate problems and bad URLs will not.
  return rc == CURLE_OPERATION_TIMEDOUT || rc == CURLE_COULDNT_CONNECT ||
         rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_COULDNT_RESOLVE_PROXY ||
         rc == CURLE_SEND_ERROR || rc == CURLE_RECV_ERROR || rc == CURLE_GOT_NOTHING ||
         rc == CURLE_PARTIAL_FILE || rc == CURLE_SSL_CONNECT_ERROR || rc == CURLE_HTTP2 ||
         rc == CURLE_HTTP2_STREAM;
}

struct Attempt {
  std::optional<Result<EcrAuthorization>> done;  // set: return this
  Error retry;                                   // otherwise: why to try again
};

void Backoff(const EcrOptions& o, int attempt) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  auto delay = o.initial_backoff;
  for (int i = 1; i < attempt && delay < o.max_backoff; ++i) {
    delay *= 2;
  }
  delay = std::min(delay, o.max_backoff);
  // Jittered over the upper half, so devices that failed together do not retry together.
  const auto ms = std::max<long long>(delay.count(), 0);
  std::uniform_int_distribution<long long> dist(ms / 2, ms);
  std::this_thread::sleep_for(std::chrono::milliseconds(dist(rng)));
}

}  // namespace

EcrClient::EcrClient(EcrOptions options, std::shared_ptr<CredentialProvider> credentials)
    : options_(std::move(options)), credentials_(std::move(credentials)) {
  GlobalInit();
}

EcrClient::~EcrClient() = default;

Result<EcrAuthorization> EcrClient::GetAuthorization(const std::string& registry_id,
                                                     const std::string& region) const {
  const std::string what =
      "ECR GetAuthorizationToken for registry " + registry_id + " in " + region;
  if (!IsRegistryId(registry_id)) {
    return EcrError("cannot get ECR credentials: registry id '" + Excerpt(registry_id, 40) +
                    "' is not a 12-digit AWS account id");
  }
  if (!IsRegion(region)) {
    return EcrError("cannot get ECR credentials for registry " + registry_id + ": region '" +
                    Excerpt(region, 40) + "' is not an AWS region name");
  }

  // Where to send it: scheme://host[:port][/path] of the endpoint, else AWS's.
  std::string base;
  std::string host;
  std::string path = "/";
  if (!options_.endpoint.empty()) {
    const std::string_view ep = options_.endpoint;
    const auto scheme_end = ep.find("://");
    const size_t host_start = scheme_end == std::string_view::npos ? 0 : scheme_end + 3;
    const auto path_start = ep.find('/', host_start);
    host = std::string(ep.substr(host_start, path_start - host_start));
    base = (scheme_end == std::string_view::npos ? "https://" : "") +
           std::string(ep.substr(0, path_start));
    if (path_start != std::string_view::npos) {
      path = std::string(ep.substr(path_start));
    }
  } else {
    host = "api.ecr." + region +
           (region.rfind("cn-", 0) == 0 ? ".amazonaws.com.cn" : ".amazonaws.com");
    base = "https://" + host;
  }
  const std::string url = base + EncodePath(path);
  const std::string body =
      nlohmann::json{{"registryIds", nlohmann::json::array({registry_id})}}.dump();
  const std::string payload_hash = Sha256Hex(body);

  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  if (!curl) {
    return EcrError(what + ": curl_easy_init failed");
  }
  auto once = [&]() -> Attempt {
    // Fetched per attempt: a retry after ExpiredTokenException gets refreshed ones.
    auto creds = credentials_->Get();
    if (!creds.ok()) {
      // The provider retries on its own; more here would only multiply its delays.
      return {EcrError("cannot get ECR credentials for registry " + registry_id + " in " + region +
                       ": no AWS credentials could be obtained: " + creds.error().message),
              {}};
    }
    SigningRequest req{
        "POST", host, path, {}, {{"content-type", kContentType}, {"x-amz-target", kTarget}}};
    const SignedRequest signed_req =
        Sign(req, *creds, {region, "ecr", std::chrono::system_clock::now(), payload_hash});

    CURL* h = curl.get();
    curl_easy_reset(h);  // keeps the connection cache for the retries
    curl_slist* list = nullptr;
    for (const auto& [k, v] : req.headers) {
      list = curl_slist_append(list, (k + ": " + v).c_str());
    }
    for (const auto& [k, v] : signed_req.headers) {
      list = curl_slist_append(list, (k + ": " + v).c_str());
    }
    list = curl_slist_append(list, "Expect:");  // no 100-continue round trip
    std::unique_ptr<curl_slist, SlistDeleter> headers(list);
    Exchange ex;
    curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get());
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    // The configured proxy only: "" turns off the variables curl would otherwise read.
    curl_easy_setopt(h, CURLOPT_PROXY, options_.proxy.c_str());
    if (!options_.no_proxy.empty()) {
      curl_easy_setopt(h, CURLOPT_NOPROXY, options_.no_proxy.c_str());
    }
    if (!options_.ca_file.empty()) {
      curl_easy_setopt(h, CURLOPT_CAINFO, options_.ca_file.c_str());
    }
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(options_.connect_timeout.count()));
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.request_timeout.count()));
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);  // timeouts without SIGALRM: we are threaded
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, OnHeader);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &ex);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, OnBody);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &ex);
    char errbuf[CURL_ERROR_SIZE] = {0};
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    ex.code = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &ex.status);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, nullptr);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, nullptr);
    if (ex.code != CURLE_OK) {
      ex.curl_error = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(ex.code);
    }

    if (ex.code == CURLE_WRITE_ERROR) {
      return {EcrError(what + ": the answer is larger than " + std::to_string(kMaxBody) + " bytes"),
              {}};
    }
    if (ex.code != CURLE_OK) {
      const std::string why = ex.code == CURLE_OPERATION_TIMEDOUT
                                  ? "timed out waiting for " + base + " (" + ex.curl_error + ")"
                                  : "cannot reach " + base + ": " + ex.curl_error;
      if (RetryableCurlCode(ex.code)) {
        return {std::nullopt, EcrError(what + ": " + why)};
      }
      return {EcrError(what + ": " + why), {}};
    }
    if (ex.status == 200) {
      auto parsed = ParseEcrAuthorizationResponse(ex.body);
      if (!parsed.ok()) {
        return {EcrError(what + ": " + parsed.error().message), {}};
      }
      return {std::move(parsed), {}};
    }
    const auto [type, message] = AwsError(ex);
    std::string detail = "HTTP " + std::to_string(ex.status);
    if (const auto id = ex.headers.find("x-amzn-requestid"); id != ex.headers.end()) {
      detail += ", request id " + Excerpt(id->second, 80);
    }
    const std::string text = what + ": " + (type.empty() ? "unexpected answer" : type) +
                             (message.empty() ? "" : ": " + message) + " (" + detail + ")";
    if (ex.status >= 500 || ex.status == 429 || ex.status == 408 || RetryableType(type)) {
      return {std::nullopt, EcrError(text)};
    }
    return {EcrError(text + Hint(type)), {}};
  };

  const int max_attempts = std::max(1, options_.max_attempts);
  Error last;
  for (int attempt = 1; attempt <= max_attempts; ++attempt) {
    Attempt a = once();
    if (a.done) {
      return std::move(*a.done);
    }
    last = std::move(a.retry);
    if (attempt < max_attempts) {
      Backoff(options_, attempt);
    }
  }
  last.message += " (gave up after " + std::to_string(max_attempts) +
                  (max_attempts == 1 ? " attempt)" : " attempts)");
  return last;
}

// ---- cache ----

EcrTokenCache::EcrTokenCache(std::shared_ptr<const EcrClient> client, EcrTokenCacheOptions options)
    : fetch_([client = std::move(client)](const std::string& id, const std::string& region) {
        return client->GetAuthorization(id, region);
      }),
      options_(std::move(options)) {}

EcrTokenCache::EcrTokenCache(Fetch fetch, EcrTokenCacheOptions options)
    : fetch_(std::move(fetch)), options_(std::move(options)) {}

Result<EcrAuthorization> EcrTokenCache::Get(const std::string& registry_id,
                                            const std::string& region) {
  std::unique_lock lock(mu_);
  // Entries are never erased, so the reference outlives the unlocked fetch below.
  Entry& e = entries_[{registry_id, region}];
  if (e.cached && options_.clock() < e.cached->expires_at - options_.refresh_before_expiry) {
    return *e.cached;
  }
  if (e.fetching) {
    const uint64_t gen = e.generation;
    ++stats_.waiting;
    const bool done = cv_.wait_for(lock, options_.max_wait, [&] { return e.generation != gen; });
    --stats_.waiting;
    if (!done || !e.last) {
      return EcrError("timed out after " + std::to_string(options_.max_wait.count()) +
                      " s waiting for another fetch of the ECR credentials for registry " +
                      registry_id + " in " + region);
    }
    return *e.last;
  }
  e.fetching = true;
  ++stats_.fetches;
  lock.unlock();
  // A throwing fetch must still end the fetch, or its waiters would wait it out.
  Result<EcrAuthorization> r = [&]() -> Result<EcrAuthorization> {
    try {
      return fetch_(registry_id, region);
    } catch (const std::exception& ex) {
      return EcrError("ECR GetAuthorizationToken for registry " + registry_id + " in " + region +
                      ": " + ex.what());
    }
  }();
  lock.lock();
  e.fetching = false;
  ++e.generation;
  e.last = r;
  e.cached.reset();
  // One already due (a short-lived token, a large margin) is handed out but not kept.
  if (r.ok() && options_.clock() < r->expires_at - options_.refresh_before_expiry) {
    e.cached = *r;
  }
  cv_.notify_all();
  return r;
}

void EcrTokenCache::Invalidate(const std::string& registry_id, const std::string& region) {
  std::lock_guard lock(mu_);
  const auto it = entries_.find({registry_id, region});
  if (it != entries_.end()) {
    it->second.cached.reset();
  }
}

EcrTokenCache::Stats EcrTokenCache::stats() {
  std::lock_guard lock(mu_);
  return stats_;
}

}  // namespace lichen::aws
