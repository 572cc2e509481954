#include "docker/socket_proxy.h"

#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/asio/write.hpp>
#include <cctype>
#include <charconv>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/json_depth.h"
#include "common/text.h"

namespace lichen::docker {
namespace {

namespace asio = boost::asio;
using Local = asio::local::stream_protocol;
using Json = nlohmann::json;

constexpr size_t kMaxHead = 64 * 1024;
constexpr size_t kMaxCreateBodyDepth = 64;
constexpr size_t kMaxChunkLine = 1024;

// HTTP's optional white space is spaces and tabs only, and no line may hold another
// control character: a bare CR or LF that this parser kept inside a line could end a
// line for dockerd's, which would then see a request boundary (say, an unlabelled
// create) where this one does not.
std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool HasControl(std::string_view s) {
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7f) return true;
  }
  return false;
}

// The request target's path without the API version prefix and the query.
std::string_view ApiPath(std::string_view target) {
  target = target.substr(0, target.find('?'));
  if (target.size() > 2 && target[0] == '/' && target[1] == 'v') {
    size_t i = 2;
    while (i < target.size() &&
           (std::isdigit(static_cast<unsigned char>(target[i])) || target[i] == '.')) {
      ++i;
    }
    if (i > 2 && i < target.size() && target[i] == '/') target.remove_prefix(i);
  }
  return target;
}

std::optional<uint64_t> ParseHex(std::string_view s) {
  s = TrimOws(s.substr(0, s.find(';')));
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 16);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

}  // namespace

bool IsContainerCreate(std::string_view method, std::string_view target) {
  return method == "POST" && ApiPath(target) == "/containers/create";
}

bool IsLabelledCreate(std::string_view method, std::string_view target) {
  return IsContainerCreate(method, target) ||
         (method == "POST" && ApiPath(target) == "/networks/create");
}

namespace {

// "POST [/vX.Y]/containers/<id><suffix>[?query]" -> "<id>".
std::optional<std::string> ContainerOf(std::string_view method, std::string_view target,
                                       std::string_view kSuffix) {
  if (method != "POST") return std::nullopt;
  std::string_view path = ApiPath(target);
  constexpr std::string_view kPrefix = "/containers/";
  if (path.size() <= kPrefix.size() + kSuffix.size() || path.substr(0, kPrefix.size()) != kPrefix ||
      path.substr(path.size() - kSuffix.size()) != kSuffix) {
    return std::nullopt;
  }
  std::string_view id = path.substr(kPrefix.size(), path.size() - kPrefix.size() - kSuffix.size());
  if (id.empty() || id.find('/') != std::string_view::npos) return std::nullopt;
  return std::string(id);
}

}  // namespace

std::optional<std::string> StartedContainer(std::string_view method, std::string_view target) {
  return ContainerOf(method, target, "/start");
}

std::optional<std::string> AttachedContainer(std::string_view method, std::string_view target) {
  return ContainerOf(method, target, "/attach");
}

Result<std::string> AddLabelsToCreateBody(std::string_view body,
                                          const std::map<std::string, std::string>& labels) {
  if (JsonNestsDeeperThan(body, kMaxCreateBodyDepth)) {  // see common/json_depth.h
    return MakeError("the create body nests deeper than " +
                     std::to_string(kMaxCreateBodyDepth) + " levels");
  }
  Json doc = body.empty() ? Json::object() : Json::parse(body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    return MakeError("the create body is not a JSON object");
  }
  Json& current = doc["Labels"];
  if (current.is_null()) current = Json::object();
  if (!current.is_object()) return MakeError("the create body's Labels is not an object");
  for (const auto& [k, v] : labels) current[k] = v;
  return doc.dump();
}

RequestRewriter::RequestRewriter(std::map<std::string, std::string> labels, size_t max_create_body,
                                 std::function<void(const std::string&)> on_started,
                                 std::function<void()> on_created,
                                 std::function<void(const std::string&)> on_attached)
    : labels_(std::move(labels)),
      max_create_body_(max_create_body),
      on_started_(std::move(on_started)),
      on_created_(std::move(on_created)),
      on_attached_(std::move(on_attached)) {}

Result<std::string> RequestRewriter::Feed(std::string_view bytes) {
  if (!error_.empty()) return MakeError(error_);
  in_.append(bytes);
  std::string out;
  Advance(out, error_);
  if (!error_.empty()) return MakeError(error_);
  return out;
}

// The request state machine: consumes in_, appends what goes upstream to `out`.
void RequestRewriter::Advance(std::string& out, std::string& error) {
  while (true) {
    switch (phase_) {
      case Phase::kRaw:
        out += in_;
        in_.clear();
        return;
      case Phase::kHead: {
        const size_t end = in_.find("\r\n\r\n");
        if (end == std::string::npos) {
          if (in_.size() > kMaxHead) error = "request head over 64 KiB";
          return;
        }
        std::string head = in_.substr(0, end + 4);
        in_.erase(0, end + 4);
        if (!StartRequest(std::move(head), out, error)) return;
        break;
      }
      case Phase::kBody: {
        const size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, in_.size()));
        out.append(in_, 0, take);
        in_.erase(0, take);
        remaining_ -= take;
        if (remaining_ > 0) return;
        phase_ = after_body_;
        break;
      }
      case Phase::kChunkSize: {
        const size_t eol = in_.find("\r\n");
        if (eol == std::string::npos) {
          if (in_.size() > kMaxChunkLine) error = "chunk-size line too long";
          return;
        }
        const std::string_view size_line = std::string_view(in_).substr(0, eol);
        auto size = HasControl(size_line) ? std::nullopt : ParseHex(size_line);
        if (!size) {
          error = "malformed chunk size";
          return;
        }
        if (dechunk_) {
          in_.erase(0, eol + 2);
        } else {
          out.append(in_, 0, eol + 2);
          in_.erase(0, eol + 2);
        }
        if (*size == 0) {
          phase_ = Phase::kTrailer;
        } else {
          remaining_ = *size;
          phase_ = Phase::kChunkData;
        }
        break;
      }
      case Phase::kChunkData: {
        const size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, in_.size()));
        if (dechunk_) {
          create_body_.append(in_, 0, take);
          if (create_body_.size() > max_create_body_) {
            error = "create body too large";
            return;
          }
        } else {
          out.append(in_, 0, take);
        }
        in_.erase(0, take);
        remaining_ -= take;
        if (remaining_ > 0) return;
        phase_ = Phase::kChunkEnd;
        break;
      }
      case Phase::kChunkEnd: {  // the CRLF after a chunk's data, and nothing else
        if (in_.size() < 2) return;
        if (in_.compare(0, 2, "\r\n") != 0) {
          error = "chunk data not followed by CRLF";
          return;
        }
        if (!dechunk_) out.append("\r\n");
        in_.erase(0, 2);
        phase_ = Phase::kChunkSize;
        break;
      }
      case Phase::kTrailer: {
        const size_t eol = in_.find("\r\n");
        if (eol == std::string::npos) {
          if (in_.size() > kMaxHead) error = "trailer too long";
          return;
        }
        if (HasControl(std::string_view(in_).substr(0, eol))) {
          error = "control character in a trailer line";
          return;
        }
        const bool last = eol == 0;
        if (!dechunk_) out.append(in_, 0, eol + 2);
        in_.erase(0, eol + 2);
        if (!last) break;
        if (dechunk_) {
          dechunk_ = false;
          if (!EmitCreate(out, error)) return;
        }
        phase_ = after_body_;
        break;
      }
      case Phase::kCreateBody: {
        const size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, in_.size()));
        create_body_.append(in_, 0, take);
        in_.erase(0, take);
        remaining_ -= take;
        if (remaining_ > 0) return;
        if (!EmitCreate(out, error)) return;
        phase_ = Phase::kHead;
        break;
      }
    }
    if (in_.empty()) return;
  }
}

// Parses a request head; forwards it, or holds it back when it is a create.
bool RequestRewriter::StartRequest(std::string head, std::string& out, std::string& error) {
  const size_t line_end = head.find("\r\n");
  std::string_view line = std::string_view(head).substr(0, line_end);
  if (HasControl(line)) {
    error = "control character in the request line";
    return false;
  }
  const size_t sp1 = line.find(' ');
  const size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp1 == std::string_view::npos || sp2 == std::string_view::npos) {
    error = "malformed request line";
    return false;
  }
  const std::string_view method = line.substr(0, sp1);
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);

  std::optional<uint64_t> length;
  std::optional<bool> chunked_coding;  // whether Transfer-Encoding ends in chunked
  bool upgrade = false;
  std::string kept;  // the head without its framing headers (for a rewritten create)
  kept.append(line).append("\r\n");
  size_t at = line_end + 2;
  while (at < head.size()) {
    const size_t eol = head.find("\r\n", at);
    std::string_view h = std::string_view(head).substr(at, eol - at);
    at = eol + 2;
    if (h.empty()) break;
    if (HasControl(h)) {
      error = "control character in a header line";
      return false;
    }
    const size_t colon = h.find(':');
    // No white space in or after the name: obsolete line folding, and "Name :" that
    // parsers read differently, are refused.
    const std::string_view name = h.substr(0, colon);
    if (colon == std::string_view::npos || name.empty() ||
        name.find_first_of(" \t") != std::string_view::npos) {
      error = "malformed header line";
      return false;
    }
    const std::string_view value = TrimOws(h.substr(colon + 1));
    bool framing = false;
    if (text::EqualsIgnoreCase(name, "Content-Length")) {
      if (length) {
        error = "more than one Content-Length";
        return false;
      }
      uint64_t v = 0;
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
      if (ec != std::errc() || p != value.data() + value.size()) {
        error = "malformed Content-Length";
        return false;
      }
      length = v;
      framing = true;
    } else if (text::EqualsIgnoreCase(name, "Transfer-Encoding")) {
      if (chunked_coding) {
        error = "more than one Transfer-Encoding";
        return false;
      }
      const size_t comma = value.rfind(',');
      chunked_coding = text::EqualsIgnoreCase(
          TrimOws(comma == std::string_view::npos ? value : value.substr(comma + 1)), "chunked");
      framing = true;
    } else if (text::EqualsIgnoreCase(name, "Expect")) {
      framing = true;  // the body is read here before anything goes upstream
    } else if (text::EqualsIgnoreCase(name, "Upgrade") ||
               (text::EqualsIgnoreCase(name, "Connection") &&
                text::ContainsIgnoreCase(value, "upgrade"))) {
      upgrade = true;
    }
    if (!framing) kept.append(h).append("\r\n");
  }
  // A request whose length the two parsers could read differently is refused (as
  // RFC 9112 section 6.1 allows), not forwarded.
  if (chunked_coding && length) {
    error = "both Content-Length and Transfer-Encoding";
    return false;
  }
  if (chunked_coding && !*chunked_coding) {
    error = "a Transfer-Encoding that does not end in chunked";
    return false;
  }
  const bool chunked = chunked_coding.value_or(false);
  after_body_ = upgrade ? Phase::kRaw : Phase::kHead;

  if (IsLabelledCreate(method, target)) {
    create_head_ = std::move(kept);
    create_body_.clear();
    if (chunked) {
      dechunk_ = true;
      after_body_ = Phase::kHead;
      phase_ = Phase::kChunkSize;
    } else {
      remaining_ = length.value_or(0);
      if (remaining_ > max_create_body_) {
        error = "create body too large";
        return false;
      }
      phase_ = Phase::kCreateBody;
      if (remaining_ == 0) {
        if (!EmitCreate(out, error)) return false;
        phase_ = Phase::kHead;
      }
    }
    return true;
  }

  if (auto id = StartedContainer(method, target); id && on_started_) on_started_(*id);
  if (auto id = AttachedContainer(method, target); id && on_attached_) on_attached_(*id);
  out += head;
  if (chunked) {
    phase_ = Phase::kChunkSize;
  } else if (length.value_or(0) > 0) {
    remaining_ = *length;
    phase_ = Phase::kBody;
  } else {
    phase_ = after_body_;
  }
  return true;
}

bool RequestRewriter::EmitCreate(std::string& out, std::string& error) {
  auto body = AddLabelsToCreateBody(create_body_, labels_);
  if (!body.ok()) {
    error = body.error().message;
    return false;
  }
  out += create_head_;
  out += "Content-Length: " + std::to_string(body->size()) + "\r\n\r\n";
  out += *body;
  create_body_.clear();
  ++containers_created_;
  if (on_created_) on_created_();
  return true;
}

// One client connection and its upstream connection to the real daemon.
class SocketProxy::Session : public std::enable_shared_from_this<Session> {
 public:
  Session(SocketProxy& owner, Local::socket client)
      : owner_(owner),
        client_(std::move(client)),
        upstream_(owner.io_),
        rewriter_(
            owner.options_.labels, owner.options_.max_create_body,
            [&owner](const std::string& id) {
              if (owner.options_.on_container_started) owner.options_.on_container_started(id);
            },
            [&owner] { ++owner.containers_created_; },
            [&owner](const std::string& id) {
              if (owner.options_.on_container_attached) owner.options_.on_container_attached(id);
            }) {}

  void Start() {
    auto self = shared_from_this();
    upstream_.async_connect(
        Local::endpoint(owner_.options_.upstream), [self](const boost::system::error_code& ec) {
          if (self->closed_) return;  // stopped meanwhile: the proxy may be gone
          if (ec) {
            self->Fail(502, "Lichen could not reach the Docker daemon at " +
                                self->owner_.options_.upstream + ": " + ec.message());
            return;
          }
          self->PumpResponses();
          self->ReadClient();
        });
  }

  void Close() {
    if (closed_) return;
    closed_ = true;
    boost::system::error_code ec;
    client_.close(ec);
    upstream_.close(ec);
    owner_.sessions_.erase(shared_from_this());
  }

 private:
  void ReadClient() {
    auto self = shared_from_this();
    client_.async_read_some(asio::buffer(from_client_),
                            [self](const boost::system::error_code& ec, size_t n) {
                              if (self->closed_) return;
                              if (ec) {
                                // The client is done sending: pass the half-close on, and
                                // let the daemon's answer still flow back.
                                boost::system::error_code ignored;
                                self->upstream_.shutdown(Local::socket::shutdown_send, ignored);
                                self->client_done_ = true;
                                if (self->upstream_done_) self->Close();
                                return;
                              }
                              self->last_read_ = n;
                              self->Process();
                            });
  }

  // Forwards what can be forwarded of in_, then reads more.
  void Process() {
    auto forwarded = rewriter_.Feed(std::string_view(from_client_.data(), last_read_));
    if (!forwarded.ok()) {
      Fail(400, forwarded.error().message);
      return;
    }
    std::string out = std::move(*forwarded);
    if (out.empty()) {
      ReadClient();
      return;
    }
    auto self = shared_from_this();
    auto data = std::make_shared<std::string>(std::move(out));
    asio::async_write(upstream_, asio::buffer(*data),
                      [self, data](const boost::system::error_code& ec, size_t) {
                        if (self->closed_) return;
                        if (ec) return self->Close();
                        self->ReadClient();
                      });
  }

  // The daemon's answers go back untouched.
  void PumpResponses() {
    auto self = shared_from_this();
    upstream_.async_read_some(
        asio::buffer(from_upstream_), [self](const boost::system::error_code& ec, size_t n) {
          if (self->closed_) return;
          if (ec) {
            boost::system::error_code ignored;
            self->client_.shutdown(Local::socket::shutdown_send, ignored);
            self->upstream_done_ = true;
            if (self->client_done_) self->Close();
            return;
          }
          asio::async_write(self->client_, asio::buffer(self->from_upstream_.data(), n),
                            [self](const boost::system::error_code& wec, size_t) {
                              if (self->closed_) return;
                              if (wec) return self->Close();
                              self->PumpResponses();
                            });
        });
  }

  // Answers the client itself (the daemon never saw the request) and closes.
  void Fail(unsigned status, const std::string& message) {
    const std::string body = Json{{"message", "lichen docker proxy: " + message}}.dump();
    auto data = std::make_shared<std::string>(
        "HTTP/1.1 " + std::to_string(status) + (status == 502 ? " Bad Gateway" : " Bad Request") +
        "\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: " +
        std::to_string(body.size()) + "\r\n\r\n" + body);
    auto self = shared_from_this();
    asio::async_write(client_, asio::buffer(*data),
                      [self, data](const boost::system::error_code&, size_t) { self->Close(); });
  }

  SocketProxy& owner_;
  Local::socket client_;
  Local::socket upstream_;
  std::array<char, 64 * 1024> from_client_{};
  std::array<char, 64 * 1024> from_upstream_{};
  size_t last_read_ = 0;
  RequestRewriter rewriter_;
  bool client_done_ = false;
  bool upstream_done_ = false;
  bool closed_ = false;
};

SocketProxy::SocketProxy(asio::io_context& io, std::string path, SocketProxyOptions options)
    : io_(io), path_(std::move(path)), options_(std::move(options)) {}

SocketProxy::~SocketProxy() { Stop(); }

Result<void> SocketProxy::Start() {
  std::error_code fs_ec;
  std::filesystem::remove(path_, fs_ec);
  if (path_.size() >= sizeof(sockaddr_un::sun_path)) {
    return MakeError(path_ + ": too long for a Unix socket path");
  }
  boost::system::error_code ec;
  acceptor_ = std::make_unique<Local::acceptor>(io_);
  acceptor_->open(Local(), ec);
  if (!ec) acceptor_->bind(Local::endpoint(path_), ec);
  if (!ec) acceptor_->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return MakeError(path_ + ": cannot listen: " + ec.message());
  // Only the component's user may use it: it reaches a daemon that is root's equal.
  if (::chmod(path_.c_str(), 0600) != 0) return MakeError(path_ + ": cannot chmod");
  if (options_.owner && ::chown(path_.c_str(), *options_.owner,
                                options_.group.value_or(static_cast<gid_t>(-1))) != 0) {
    return MakeError(path_ + ": cannot give it to uid " + std::to_string(*options_.owner));
  }
  Accept();
  return {};
}

void SocketProxy::Accept() {
  acceptor_->async_accept([this, alive = std::weak_ptr<bool>(alive_)](
                              const boost::system::error_code& ec, Local::socket socket) {
    // An accept that completed just before Stop() or the destructor still runs here.
    if (alive.expired() || !acceptor_ || !acceptor_->is_open()) return;
    if (ec) {
      if (ec == asio::error::operation_aborted) return;
      Accept();
      return;
    }
    auto session = std::make_shared<Session>(*this, std::move(socket));
    sessions_.insert(session);
    session->Start();
    Accept();
  });
}

void SocketProxy::Stop() {
  if (acceptor_) {
    boost::system::error_code ec;
    acceptor_->close(ec);
    acceptor_.reset();
    std::error_code fs_ec;
    std::filesystem::remove(path_, fs_ec);
  }
  auto sessions = sessions_;
  for (const auto& s : sessions) s->Close();
  sessions_.clear();
}

}  // namespace lichen::docker
