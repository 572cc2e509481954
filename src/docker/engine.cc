#include "docker/engine.h"

#include <curl/curl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string_view>

#include "common/text.h"
#include "docker/image_reference.h"

namespace lichen::docker {
namespace {

using Json = nlohmann::json;
using std::chrono::milliseconds;

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

using text::Contains;
using text::Lower;

// Percent-encodes everything but unreserved characters and those image names and ids
// use in paths (":" "/" "@"), which the daemon's router expects verbatim.
std::string Escape(const std::string& s, bool path) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    const bool keep = std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' ||
                      (path && (c == ':' || c == '/' || c == '@'));
    if (keep) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string Base64Url(const std::string& in) {
  static const char* table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const uint32_t v = (static_cast<uint8_t>(in[i]) << 16) |
                       (static_cast<uint8_t>(in[i + 1]) << 8) | static_cast<uint8_t>(in[i + 2]);
    for (int shift : {18, 12, 6, 0}) out += table[(v >> shift) & 63];
  }
  if (i < in.size()) {
    uint32_t v = static_cast<uint8_t>(in[i]) << 16;
    if (i + 1 < in.size()) v |= static_cast<uint8_t>(in[i + 1]) << 8;
    out += table[(v >> 18) & 63];
    out += table[(v >> 12) & 63];
    out += i + 1 < in.size() ? table[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

// What a daemon or registry error message means. `status` is the HTTP status (0 for an
// error reported inside a stream); `subject` names what the call was about.
Error Classify(int status, const std::string& message, const std::string& subject,
               bool container = false) {
  const std::string m = Lower(message);
  const std::string text = subject + ": " + message;
  if (Contains(m, "no space left on device")) {
    return MakeError(kDockerNoSpace, text + " (free disk space for Docker's data root)");
  }
  if (Contains(m, "invalid reference format") || Contains(m, "invalid tag format")) {
    return MakeError(kDockerInvalidReference, text);
  }
  if (Contains(m, "unauthorized") || Contains(m, "authentication required") ||
      Contains(m, "no basic auth credentials") || Contains(m, "incorrect username or password") ||
      Contains(m, "denied: ") || Contains(m, "access denied") || Contains(m, "access forbidden")) {
    return MakeError(kDockerAuthFailed,
                     text + " (check the registry credentials and the image's permissions)");
  }
  if (Contains(m, "manifest unknown") || Contains(m, "repository does not exist") ||
      Contains(m, "unknown blob") || Contains(m, "blob unknown") || Contains(m, "not found") ||
      Contains(m, "no such image") || status == 404) {
    if (container || Contains(m, "no such container")) {
      return MakeError(kDockerContainerNotFound, text);
    }
    return MakeError(kDockerImageNotFound, text);
  }
  // The daemon could not reach the registry: the network may come back.
  if (Contains(m, "connection refused") || Contains(m, "no such host") ||
      Contains(m, "i/o timeout") || Contains(m, "tls handshake timeout") ||
      Contains(m, "connection reset") || Contains(m, "network is unreachable") ||
      Contains(m, "server misbehaving") || Contains(m, "client.timeout") ||
      Contains(m, "request canceled") || Contains(m, ": eof") || Contains(m, "unexpected eof") ||
      Contains(m, "temporary failure in name resolution") || status == 502 || status == 503 ||
      status == 504) {
    return MakeError(kDockerRegistryUnreachable, text);
  }
  if (status == 409) return MakeError(kDockerConflict, text);
  if (status >= 400 && status < 500) return MakeError(kDockerBadRequest, text);
  return MakeError(kDockerEngineError, text);
}

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

struct Request {
  std::string method = "GET";
  std::string path;  // with its query
  std::vector<std::string> headers;
  FILE* upload = nullptr;  // request body, streamed
  int64_t upload_size = -1;
  milliseconds timeout{30000};
  // Set: fewer than one byte in this long ends the exchange (DOCKER_REGISTRY_UNREACHABLE).
  std::chrono::seconds stall{0};
  // Called with each complete response line (streamed endpoints); null = buffer the body.
  std::function<void(const std::string&)> on_line;
  // Called with the raw bytes of a successful response as they arrive (nothing is
  // buffered); takes precedence over on_line.
  std::function<void(std::string_view)> on_bytes;
  // Set: the exchange ends, without error, once it becomes true. timeout 0 = none.
  const std::atomic<bool>* stop = nullptr;
  // Asked about every two seconds while the exchange runs (with `stop` set); false ends
  // it like `stop` does.
  std::function<bool()> keep_going;
};

Request Simple(std::string method, std::string path, milliseconds timeout) {
  Request r;
  r.method = std::move(method);
  r.path = std::move(path);
  r.timeout = timeout;
  return r;
}

struct Response {
  long status = 0;
  std::string body;  // the whole body, or (streamed) what followed the last newline
};

struct Sink {
  Response* response;
  const Request* request;
  CURL* handle;
};

size_t OnData(char* data, size_t size, size_t n, void* user) {
  auto* sink = static_cast<Sink*>(user);
  std::string& body = sink->response->body;
  body.append(data, size * n);
  // Only a successful response streams lines; an error status carries one JSON message,
  // which the caller reads from the buffered body.
  long status = 0;
  curl_easy_getinfo(sink->handle, CURLINFO_RESPONSE_CODE, &status);
  if (sink->request->on_bytes && status == 200) {
    sink->request->on_bytes(std::string_view(data, size * n));
    body.clear();
    return size * n;
  }
  if (sink->request->on_line && status == 200) {
    size_t start = 0;
    for (size_t nl = body.find('\n'); nl != std::string::npos; nl = body.find('\n', start)) {
      if (nl > start) sink->request->on_line(body.substr(start, nl - start));
      start = nl + 1;
    }
    body.erase(0, start);
  }
  return size * n;
}

// Progress callback: a non-zero answer aborts the transfer (how `stop` ends a follow).
struct StopCheck {
  const Request* request;
  std::chrono::steady_clock::time_point next_ask;
  bool ended = false;  // keep_going said no
};
int OnProgress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* check = static_cast<StopCheck*>(user);
  if (check->request->stop->load()) return 1;
  if (check->request->keep_going && std::chrono::steady_clock::now() >= check->next_ask) {
    check->next_ask = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    if (!check->request->keep_going()) {
      check->ended = true;
      return 1;
    }
  }
  return 0;
}

size_t OnRead(char* buffer, size_t size, size_t n, void* user) {
  return std::fread(buffer, size, n, static_cast<FILE*>(user));
}

}  // namespace

bool IsRetryable(const Error& error) {
  const std::string& c = error.code;
  return c == kDockerDaemonUnavailable || c == kDockerTimeout || c == kDockerRegistryUnreachable ||
         c == kDockerConflict || c == kDockerEngineError;
}

std::string EncodeRegistryAuth(const RegistryAuth& auth) {
  Json j = {{"username", auth.username},
            {"password", auth.password},
            {"serveraddress", auth.server_address}};
  return Base64Url(j.dump());
}

Engine::Engine(EngineOptions options) : options_(std::move(options)) { GlobalInit(); }

namespace {

// One HTTP exchange over the socket. Transport failures become errors here; HTTP
// statuses are the caller's to judge.
Result<Response> Send(const EngineOptions& o, const Request& req) {
  const std::string& sock = o.socket_path;
  // Say precisely why the socket cannot be used: curl only reports "couldn't connect".
  struct stat st {};
  if (::stat(sock.c_str(), &st) != 0) {
    return MakeError(kDockerDaemonUnavailable,
                     "the Docker socket " + sock + " does not exist (" + std::strerror(errno) +
                         "): is dockerd running? (tests: scripts/services.sh start)");
  }
  if (::access(sock.c_str(), R_OK | W_OK) != 0 && errno == EACCES) {
    return MakeError(kDockerPermissionDenied,
                     "permission denied on the Docker socket " + sock +
                         ": run as root or add the user to the socket's group (docker)");
  }
  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  if (!curl) return MakeError(kDockerEngineError, "curl_easy_init failed");
  CURL* h = curl.get();
  const std::string url = "http://docker" + req.path;
  std::unique_ptr<curl_slist, SlistDeleter> headers;
  for (const auto& line : req.headers) {
    curl_slist* l = curl_slist_append(headers.get(), line.c_str());
    if (l == nullptr) return MakeError(kDockerEngineError, "curl_slist_append failed");
    (void)headers.release();
    headers.reset(l);
  }
  Response resp;
  Sink sink{&resp, &req, h};
  char errbuf[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, sock.c_str());
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req.method.c_str());
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, OnData);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(req.timeout.count()));
  curl_easy_setopt(
      h, CURLOPT_CONNECTTIMEOUT_MS,
      static_cast<long>(req.timeout.count() == 0 ? 10000
                                                 : std::min<int64_t>(req.timeout.count(), 10000)));
  if (req.stall.count() > 0) {
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, static_cast<long>(req.stall.count()));
  }
  const auto started = std::chrono::steady_clock::now();
  StopCheck check{&req, std::chrono::steady_clock::now() + std::chrono::seconds(2)};
  if (req.stop != nullptr) {
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, OnProgress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &check);
  }
  if (req.upload != nullptr) {
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, OnRead);
    curl_easy_setopt(h, CURLOPT_READDATA, req.upload);
    if (req.upload_size >= 0) {
      curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(req.upload_size));
    }
  } else if (req.method == "POST") {
    // An empty body: without it curl waits for a body that never comes.
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
  }
  const CURLcode rc = curl_easy_perform(h);
  if (rc == CURLE_ABORTED_BY_CALLBACK && req.stop != nullptr && (req.stop->load() || check.ended)) {
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp.status);
    return resp;  // asked to stop: not an error
  }
  if (rc != CURLE_OK) {
    const std::string detail = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc);
    const std::string what = req.method + " " + req.path + " on " + sock;
    // curl reports both bounds as a timeout; only the overall one can have run out.
    if (rc == CURLE_OPERATION_TIMEDOUT && req.stall.count() > 0 &&
        (req.timeout.count() == 0 || std::chrono::steady_clock::now() - started < req.timeout)) {
      return MakeError(kDockerRegistryUnreachable,
                       what + ": the daemon reported nothing for " +
                           std::to_string(req.stall.count()) +
                           " s; the registry accepts connections but does not answer "
                           "(lichen.docker.pullStallSeconds)");
    }
    if (rc == CURLE_OPERATION_TIMEDOUT) {
      return MakeError(kDockerTimeout,
                       what + " timed out after " + std::to_string(req.timeout.count()) + " ms");
    }
    if (rc == CURLE_COULDNT_CONNECT) {
      return MakeError(kDockerDaemonUnavailable, "cannot connect to the Docker daemon at " + sock +
                                                     " (" + detail +
                                                     "): is dockerd running? (tests: "
                                                     "scripts/services.sh start)");
    }
    return MakeError(kDockerDaemonUnavailable, what + " failed: " + detail);
  }
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp.status);
  return resp;
}

// The daemon's error message: {"message": "..."} or the raw body.
std::string MessageOf(const std::string& body) {
  auto j = Json::parse(body, nullptr, false);
  if (j.is_object() && j.contains("message") && j["message"].is_string()) {
    return j["message"].get<std::string>();
  }
  std::string trimmed = body;
  while (!trimmed.empty() && (trimmed.back() == '\n' || trimmed.back() == '\r')) trimmed.pop_back();
  return trimmed;
}

Result<Json> ParseJson(const Response& r, const std::string& what) {
  auto j = Json::parse(r.body, nullptr, false);
  if (j.is_discarded())
    return MakeError(kDockerEngineError, what + ": the daemon sent invalid JSON");
  return j;
}

std::vector<std::string> Strings(const Json& j, const char* key) {
  std::vector<std::string> out;
  if (!j.contains(key) || !j[key].is_array()) return out;
  for (const auto& v : j[key]) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

std::string Str(const Json& j, const char* key) {
  return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : "";
}

// An error line in a streamed response: {"error": "...", "errorDetail": {...}}.
std::optional<std::string> StreamError(const Json& line) {
  if (!line.is_object()) return std::nullopt;
  if (line.contains("errorDetail") && line["errorDetail"].is_object()) {
    std::string m = Str(line["errorDetail"], "message");
    if (!m.empty()) return m;
  }
  if (line.contains("error") && line["error"].is_string()) return line["error"].get<std::string>();
  return std::nullopt;
}

}  // namespace

Result<void> Engine::Ping() const {
  auto r = Send(options_, Simple("GET", "/_ping", options_.timeout));
  if (!r.ok()) return r.error();
  if (r->status != 200) {
    return Classify(static_cast<int>(r->status), MessageOf(r->body),
                    "ping " + options_.socket_path);
  }
  return {};
}

Result<VersionInfo> Engine::Version() const {
  auto r = Send(options_, Simple("GET", "/version", options_.timeout));
  if (!r.ok()) return r.error();
  if (r->status != 200) return Classify(static_cast<int>(r->status), MessageOf(r->body), "version");
  auto j = ParseJson(*r, "version");
  if (!j.ok()) return j.error();
  VersionInfo v;
  v.version = Str(*j, "Version");
  v.api_version = Str(*j, "ApiVersion");
  v.min_api_version = Str(*j, "MinAPIVersion");
  v.os = Str(*j, "Os");
  v.arch = Str(*j, "Arch");
  return v;
}

Result<std::optional<ImageInfo>> Engine::ImageInspect(const std::string& image) const {
  auto r =
      Send(options_, Simple("GET", "/images/" + Escape(image, true) + "/json", options_.timeout));
  if (!r.ok()) return r.error();
  if (r->status == 404) return std::optional<ImageInfo>();
  if (r->status != 200) {
    return Classify(static_cast<int>(r->status), MessageOf(r->body), "inspect image " + image);
  }
  auto j = ParseJson(*r, "inspect image " + image);
  if (!j.ok()) return j.error();
  ImageInfo info;
  info.id = Str(*j, "Id");
  info.repo_tags = Strings(*j, "RepoTags");
  info.repo_digests = Strings(*j, "RepoDigests");
  if (j->contains("Size") && (*j)["Size"].is_number()) info.size = (*j)["Size"].get<int64_t>();
  return std::optional<ImageInfo>(std::move(info));
}

Result<PullResult> Engine::Pull(const std::string& image, const std::optional<RegistryAuth>& auth,
                                const PullProgressCallback& progress,
                                const std::atomic<bool>* cancel) const {
  auto ref = ParseImageReference(image);
  if (!ref.ok()) return MakeError(kDockerInvalidReference, ref.error().message);
  PullResult result;
  result.image = ref->ImageName();
  // fromImage + tag, always with a tag or digest: an empty tag would pull every tag.
  const std::string name = ref->registry + "/" + ref->repository;
  const std::string tag = ref->digest.empty() ? ref->tag : ref->digest;
  Request req;
  req.method = "POST";
  req.path = "/images/create?fromImage=" + Escape(name, false) + "&tag=" + Escape(tag, false);
  req.timeout = options_.transfer_timeout;
  req.stall = options_.pull_stall_timeout;
  req.stop = cancel;
  if (auth) req.headers.push_back("X-Registry-Auth: " + EncodeRegistryAuth(*auth));
  std::optional<std::string> stream_error;
  req.on_line = [&](const std::string& line) {
    auto j = Json::parse(line, nullptr, false);
    if (!j.is_object()) return;
    if (auto e = StreamError(j)) {
      if (!stream_error) stream_error = *e;
      return;
    }
    PullProgress p{Str(j, "status"), Str(j, "id"), Str(j, "progress"), 0, 0, line};
    if (auto d = j.find("progressDetail"); d != j.end() && d->is_object()) {
      if (auto c = d->find("current"); c != d->end() && c->is_number())
        p.current = c->get<int64_t>();
      if (auto t = d->find("total"); t != d->end() && t->is_number()) p.total = t->get<int64_t>();
    }
    if (p.status.rfind("Digest: ", 0) == 0) result.digest = p.status.substr(8);
    if (p.status.rfind("Status: Downloaded newer image", 0) == 0) result.downloaded = true;
    if (progress) progress(p);
  };
  auto r = Send(options_, req);
  if (cancel != nullptr && cancel->load()) {
    return MakeError(kDockerCancelled, "pull " + result.image + " cancelled");
  }
  if (!r.ok()) return r.error();
  if (r->status != 200) {
    return Classify(static_cast<int>(r->status), MessageOf(r->body), "pull " + result.image);
  }
  if (!r->body.empty()) req.on_line(r->body);  // a last line without a newline
  if (stream_error) return Classify(0, *stream_error, "pull " + result.image);
  return result;
}

Result<void> Engine::RemoveImage(const std::string& image, bool force) const {
  auto r =
      Send(options_,
           Simple("DELETE", "/images/" + Escape(image, true) + (force ? "?force=1" : "?force=0"),
                  options_.timeout));
  if (!r.ok()) return r.error();
  if (r->status != 200) {
    return Classify(static_cast<int>(r->status), MessageOf(r->body), "remove image " + image);
  }
  return {};
}

Result<std::vector<std::string>> Engine::LoadImage(const std::string& tarball_path) const {
  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(tarball_path.c_str(), "rb"), &std::fclose);
  if (!file) {
    return MakeError(kDockerIoError,
                     "cannot open the image tarball " + tarball_path + ": " + std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(::fileno(file.get()), &st) != 0) {
    return MakeError(kDockerIoError, "cannot stat " + tarball_path + ": " + std::strerror(errno));
  }
  std::vector<std::string> loaded;
  std::optional<std::string> stream_error;
  Request req;
  req.method = "POST";
  req.path = "/images/load?quiet=1";
  req.headers = {"Content-Type: application/x-tar", "Expect:"};
  req.upload = file.get();
  req.upload_size = st.st_size;
  req.timeout = options_.transfer_timeout;
  req.on_line = [&](const std::string& line) {
    auto j = Json::parse(line, nullptr, false);
    if (auto e = StreamError(j)) {
      if (!stream_error) stream_error = *e;
      return;
    }
    // {"stream":"Loaded image: name:tag\n"} or "Loaded image ID: sha256:...".
    std::string s = Str(j, "stream");
    for (const char* prefix : {"Loaded image: ", "Loaded image ID: "}) {
      if (s.rfind(prefix, 0) != 0) continue;
      s = s.substr(std::strlen(prefix));
      while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
      loaded.push_back(s);
      break;
    }
  };
  auto r = Send(options_, req);
  if (!r.ok()) return r.error();
  if (r->status != 200) {
    return Classify(static_cast<int>(r->status), MessageOf(r->body), "load " + tarball_path);
  }
  if (!r->body.empty()) req.on_line(r->body);
  if (stream_error) {
    // The daemon read the upload and refused it: a damaged or foreign archive, which
    // trying again will not mend (a full disk aside).
    Error e = Classify(0, *stream_error, "load " + tarball_path);
    if (e.code != kDockerNoSpace) e.code = kDockerInvalidTarball;
    return e;
  }
  if (loaded.empty()) {
    return MakeError(kDockerEngineError, "load " + tarball_path + ": the daemon loaded no image");
  }
  return loaded;
}

namespace {

// The `filters` query value that keeps only objects carrying every label ("key" alone
// matches any value).
std::string LabelFilter(const std::map<std::string, std::string>& labels) {
  Json values = Json::array();
  for (const auto& [k, v] : labels) values.push_back(v.empty() ? k : k + "=" + v);
  return Escape(Json{{"label", values}}.dump(), false);
}

}  // namespace

Result<std::vector<ContainerInfo>> Engine::ListContainers(
    const std::map<std::string, std::string>& labels, bool all) const {
  std::string path = std::string("/containers/json?all=") + (all ? "1" : "0");
  if (!labels.empty()) path += "&filters=" + LabelFilter(labels);
  auto r = Send(options_, Simple("GET", path, options_.timeout));
  if (!r.ok()) return r.error();
  if (r->status != 200) {
    return Classify(static_cast<int>(r->status), MessageOf(r->body), "list containers");
  }
  auto j = ParseJson(*r, "list containers");
  if (!j.ok()) return j.error();
  std::vector<ContainerInfo> out;
  if (!j->is_array()) return out;
  for (const auto& c : *j) {
    ContainerInfo info;
    info.id = Str(c, "Id");
    for (auto n : Strings(c, "Names")) info.names.push_back(n.rfind('/', 0) == 0 ? n.substr(1) : n);
    info.image = Str(c, "Image");
    info.state = Str(c, "State");
    info.status = Str(c, "Status");
    if (c.contains("Labels") && c["Labels"].is_object()) {
      for (const auto& [k, v] : c["Labels"].items()) {
        if (v.is_string()) info.labels[k] = v.get<std::string>();
      }
    }
    out.push_back(std::move(info));
  }
  return out;
}

Result<void> Engine::StopContainer(const std::string& id, std::chrono::seconds grace) const {
  // The daemon waits out the grace period before SIGKILL: allow for it.
  auto r = Send(
      options_,
      Simple("POST", "/containers/" + Escape(id, true) + "/stop?t=" + std::to_string(grace.count()),
             options_.timeout + grace));
  if (!r.ok()) return r.error();
  if (r->status == 204 || r->status == 304) return {};  // 304: already stopped
  return Classify(static_cast<int>(r->status), MessageOf(r->body), "stop container " + id, true);
}

Result<void> Engine::RemoveContainer(const std::string& id, bool force) const {
  auto r =
      Send(options_,
           Simple("DELETE", "/containers/" + Escape(id, true) + (force ? "?force=1" : "?force=0"),
                  options_.timeout));
  if (!r.ok()) return r.error();
  if (r->status == 204) return {};
  return Classify(static_cast<int>(r->status), MessageOf(r->body), "remove container " + id, true);
}

Result<std::map<std::string, std::string>> Engine::ListNetworks(
    const std::map<std::string, std::string>& labels) const {
  std::string path = "/networks";
  if (!labels.empty()) path += "?filters=" + LabelFilter(labels);
  auto r = Send(options_, Simple("GET", path, options_.timeout));
  if (!r.ok()) return r.error();
  if (r->status != 200) {
    return Classify(static_cast<int>(r->status), MessageOf(r->body), "list networks");
  }
  auto j = ParseJson(*r, "list networks");
  if (!j.ok()) return j.error();
  std::map<std::string, std::string> out;
  if (!j->is_array()) return out;
  for (const auto& n : *j) out[Str(n, "Id")] = Str(n, "Name");
  return out;
}

Result<void> Engine::RemoveNetwork(const std::string& id) const {
  auto r = Send(options_, Simple("DELETE", "/networks/" + Escape(id, true), options_.timeout));
  if (!r.ok()) return r.error();
  if (r->status == 204 || r->status == 200 || r->status == 404) return {};
  return Classify(static_cast<int>(r->status), MessageOf(r->body), "remove network " + id);
}

Result<ContainerDetails> Engine::InspectContainer(const std::string& id) const {
  auto r =
      Send(options_, Simple("GET", "/containers/" + Escape(id, true) + "/json", options_.timeout));
  if (!r.ok()) return r.error();
  if (r->status != 200)
    return Classify(static_cast<int>(r->status), MessageOf(r->body), "container " + id, true);
  auto j = ParseJson(*r, "container " + id);
  if (!j.ok()) return j.error();
  ContainerDetails d;
  d.id = Str(*j, "Id");
  d.name = Str(*j, "Name");
  if (!d.name.empty() && d.name[0] == '/') d.name.erase(0, 1);
  if (auto st = j->find("State"); st != j->end() && st->is_object()) d.state = Str(*st, "Status");
  if (auto c = j->find("Config"); c != j->end() && c->is_object()) {
    d.image = Str(*c, "Image");
    d.tty = c->value("Tty", false);
    d.attach_stdout = c->value("AttachStdout", false);
    if (auto l = c->find("Labels"); l != c->end() && l->is_object()) {
      for (auto it = l->begin(); it != l->end(); ++it) {
        if (it.value().is_string()) d.labels[it.key()] = it.value().get<std::string>();
      }
    }
  }
  return d;
}

namespace {

// Splits a stream into lines; what follows the last newline waits for more.
class LineSplitter {
 public:
  LineSplitter(LogStream stream, const LogLineCallback& sink) : stream_(stream), sink_(sink) {}
  void Feed(std::string_view bytes) {
    pending_.append(bytes);
    size_t start = 0;
    for (size_t nl = pending_.find('\n'); nl != std::string::npos;
         nl = pending_.find('\n', start)) {
      std::string_view line(pending_.data() + start, nl - start);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      sink_(stream_, line);
      start = nl + 1;
    }
    pending_.erase(0, start);
    // A line without end (a progress bar) is cut rather than buffered without bound.
    if (pending_.size() > 64 * 1024) Flush();
  }
  void Flush() {
    if (!pending_.empty()) sink_(stream_, pending_);
    pending_.clear();
  }

 private:
  LogStream stream_;
  const LogLineCallback& sink_;
  std::string pending_;
};

}  // namespace

Result<void> Engine::FollowLogs(const std::string& id, bool tty, const LogLineCallback& on_line,
                                const std::atomic<bool>* stop,
                                std::function<bool()> keep_going) const {
  LineSplitter out(LogStream::kStdout, on_line);
  LineSplitter err(LogStream::kStderr, on_line);
  // Bytes of each stream delivered so far: a catch-up read skips them.
  size_t seen_out = 0, seen_err = 0;
  size_t skip_out = 0, skip_err = 0;
  auto deliver = [&](bool is_err, std::string_view bytes) {
    size_t& skip = is_err ? skip_err : skip_out;
    const size_t dropped = std::min(skip, bytes.size());
    skip -= dropped;
    bytes.remove_prefix(dropped);
    if (bytes.empty()) return;
    (is_err ? seen_err : seen_out) += bytes.size();
    (is_err ? err : out).Feed(bytes);
  };
  // Without a TTY the daemon multiplexes: frames of an 8-byte header (stream, 0, 0, 0,
  // big-endian size) and the payload.
  std::string frame;
  auto on_bytes = [&](std::string_view bytes) {
    if (tty) {
      deliver(false, bytes);
      return;
    }
    frame.append(bytes);
    size_t at = 0;
    while (frame.size() - at >= 8) {
      const auto* h = reinterpret_cast<const unsigned char*>(frame.data() + at);
      const size_t size = (size_t{h[4]} << 24) | (size_t{h[5]} << 16) | (size_t{h[6]} << 8) | h[7];
      if (frame.size() - at - 8 < size) break;
      deliver(h[0] == 2, std::string_view(frame.data() + at + 8, size));
      at += 8 + size;
    }
    frame.erase(0, at);
  };
  const std::string path = "/containers/" + Escape(id, true) + "/logs?stdout=1&stderr=1";
  Request req = Simple("GET", path + "&follow=1", milliseconds(0));
  req.stop = stop;
  req.keep_going = std::move(keep_going);
  req.on_bytes = on_bytes;
  auto r = Send(options_, req);
  // dockerd may end a follow (the container stopped) before it has sent the last lines
  // the container wrote. The whole log, read once more without following, has them:
  // what was delivered already is skipped. Bounded by the log's size.
  if (r.ok() && r->status == 200 && !(stop != nullptr && stop->load())) {
    frame.clear();
    skip_out = seen_out;
    skip_err = seen_err;
    Request again = Simple("GET", path, options_.transfer_timeout);
    again.on_bytes = on_bytes;
    (void)Send(options_, again);  // best effort: the follow's lines are out already
  }
  out.Flush();
  err.Flush();
  if (!r.ok()) return r.error();
  if (r->status != 200 && !(stop != nullptr && stop->load())) {
    return Classify(static_cast<int>(r->status), MessageOf(r->body), "container " + id, true);
  }
  return {};
}

}  // namespace lichen::docker
