#include "tes/tes_server.h"

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <iostream>
#include <nlohmann/json.hpp>
#include <utility>

namespace lichen::tes {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;

std::map<std::string, std::string> ComponentEnvironment(uint16_t port, std::string_view token) {
  return {
      {"AWS_CONTAINER_CREDENTIALS_FULL_URI",
       "http://localhost:" + std::to_string(port) + std::string(kCredentialsPath)},
      {"AWS_CONTAINER_AUTHORIZATION_TOKEN", std::string(token)},
  };
}

namespace {

// Requests are a GET line and a few headers; anything bigger is not a client of ours.
constexpr uint32_t kHeaderLimit = 8 * 1024;
constexpr uint64_t kBodyLimit = 8 * 1024;
constexpr auto kWriteTimeout = std::chrono::seconds(10);

std::string CredentialsJson(const aws::Credentials& c) {
  // The SDKs require all four fields as strings; long-term keys get a nominal hour so
  // clients come back for them (and see rotated keys) instead of treating them as stale.
  auto expiration = c.expiration.value_or(std::chrono::system_clock::now() + std::chrono::hours(1));
  nlohmann::json j = {{"AccessKeyId", c.access_key_id},
                      {"SecretAccessKey", c.secret_access_key},
                      {"Token", c.session_token},
                      {"Expiration", aws::FormatIso8601(expiration)}};
  return j.dump();
}

bool IsCredentialsPath(std::string_view target) {
  if (size_t q = target.find('?'); q != std::string_view::npos) target = target.substr(0, q);
  // The trailing slash is what the URI we hand out has; accept its absence too.
  return target == kCredentialsPath ||
         target == kCredentialsPath.substr(0, kCredentialsPath.size() - 1);
}

}  // namespace

class TesServer::Session : public std::enable_shared_from_this<TesServer::Session> {
 public:
  Session(TesServer* server, tcp::socket socket)
      : server_(server), alive_(server->alive_), stream_(std::move(socket)) {}

  void Start() { Read(); }
  void Close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
  }

 private:
  void Read() {
    parser_.emplace();
    parser_->header_limit(kHeaderLimit);
    parser_->body_limit(kBodyLimit);
    stream_.expires_after(server_->options_.idle_timeout);
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    if (alive_.expired()) return;
    if (ec) {
      if (ec != http::error::end_of_stream && ec != asio::error::operation_aborted &&
          ec != beast::error::timeout && ec != asio::error::connection_reset) {
        // Malformed or oversized request: say so once, then close.
        Send(400, "bad request\n", /*keep_alive=*/false, "text/plain");
        return;
      }
      Finish();
      return;
    }
    stream_.expires_never();  // a credentials wait is bounded by upstream_wait instead
    const auto& req = parser_->get();
    ++server_->stats_.requests;
    bool keep_alive = req.keep_alive();
    version_ = req.version();
    if (req.method() != http::verb::get) {
      Send(405, "method not allowed\n", keep_alive, "text/plain");
      return;
    }
    if (!IsCredentialsPath(std::string_view(req.target().data(), req.target().size()))) {
      Send(400, "unknown path\n", keep_alive, "text/plain");
      return;
    }
    auto auth = req.find(http::field::authorization);
    if (auth == req.end() ||
        !server_->Authorized(std::string_view(auth->value().data(), auth->value().size()))) {
      Send(403, "missing or unknown Authorization token\n", keep_alive, "text/plain");
      return;
    }
    server_->Credentials(
        [self = shared_from_this(), keep_alive](unsigned status, std::string body) {
          self->Send(status, std::move(body), keep_alive,
                     status == 200 ? "application/json" : "text/plain");
        });
  }

  void Send(unsigned status, std::string body, bool keep_alive, const char* content_type) {
    if (alive_.expired()) return;
    auto res = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(status), version_ == 0 ? 11 : version_);
    res->set(http::field::content_type, content_type);
    res->keep_alive(keep_alive);
    res->body() = std::move(body);
    res->prepare_payload();
    stream_.expires_after(kWriteTimeout);
    http::async_write(stream_, *res,
                      [self = shared_from_this(), res](beast::error_code ec, size_t) {
                        if (self->alive_.expired()) return;
                        if (ec || !res->keep_alive()) {
                          self->Close();
                          self->Finish();
                          return;
                        }
                        self->Read();
                      });
  }

  void Finish() {
    if (alive_.expired()) return;
    server_->sessions_.erase(shared_from_this());
  }

  TesServer* server_;
  std::weak_ptr<bool> alive_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  unsigned version_ = 11;
};

TesServer::TesServer(asio::io_context& io, std::shared_ptr<aws::CredentialProvider> provider,
                     std::vector<std::string> tokens, TesOptions options)
    : io_(io), provider_(std::move(provider)), options_(std::move(options)) {
  cache_ = dynamic_cast<aws::CachingCredentialProvider*>(provider_.get());
  for (auto& t : tokens) {
    if (!t.empty()) tokens_.insert(std::move(t));
  }
}

TesServer::~TesServer() {
  Stop();
  *alive_ = false;
  alive_.reset();  // handlers still queued on io_ see the weak pointer expired
  worker_.join();  // a running fetch ends within the provider's own timeouts
}

void TesServer::Log(std::string_view line) {
  if (options_.log) {
    options_.log(line);
  } else {
    std::cerr << "[TokenExchangeService] " << line << "\n";
  }
}

Result<uint16_t> TesServer::Start() {
  auto listen = [&](const asio::ip::address& addr, uint16_t port,
                    beast::error_code& ec) -> std::unique_ptr<tcp::acceptor> {
    auto a = std::make_unique<tcp::acceptor>(io_);
    tcp::endpoint ep(addr, port);
    a->open(ep.protocol(), ec);
    if (!ec) a->set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec && addr.is_v6()) a->set_option(asio::ip::v6_only(true), ec);
    if (!ec) a->bind(ep, ec);
    if (!ec) a->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return nullptr;
    return a;
  };
  // With port 0 the kernel picks the IPv4 port, which may be taken on ::1; try a few.
  constexpr int kAttempts = 16;
  std::string last_error;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    beast::error_code ec;
    auto v4 = listen(asio::ip::make_address("127.0.0.1"), options_.port, ec);
    if (!v4) {
      return MakeError("token exchange service: cannot listen on 127.0.0.1:" +
                       std::to_string(options_.port) + ": " + ec.message());
    }
    uint16_t port = v4->local_endpoint().port();
    auto v6 = listen(asio::ip::make_address("::1"), port, ec);
    if (!v6 && ec == asio::error::address_in_use && options_.port == 0) {
      last_error = ec.message();
      continue;
    }
    if (!v6 && (ec == boost::system::errc::address_not_available ||
                ec == asio::error::address_family_not_supported)) {
      Log("no IPv6 loopback (" + ec.message() +
          "): listening on 127.0.0.1:" + std::to_string(port) + " only");
    } else if (!v6) {
      return MakeError("token exchange service: cannot listen on [::1]:" + std::to_string(port) +
                       ": " + ec.message());
    }
    port_ = port;
    acceptors_.push_back(std::move(v4));
    if (v6) acceptors_.push_back(std::move(v6));
    for (auto& a : acceptors_) Accept(*a);
    return port_;
  }
  return MakeError("token exchange service: no port free on both 127.0.0.1 and ::1: " + last_error);
}

void TesServer::Stop() {
  if (stopped_) return;
  stopped_ = true;
  for (auto& a : acceptors_) {
    beast::error_code ec;
    a->close(ec);
  }
  auto sessions = std::move(sessions_);
  sessions_.clear();
  for (auto& s : sessions) s->Close();
  auto waiters = std::move(waiters_);
  waiters_.clear();
  for (auto& [id, w] : waiters) w.timer->cancel();
}

void TesServer::Accept(tcp::acceptor& acceptor) {
  acceptor.async_accept([this, &acceptor, alive = std::weak_ptr<bool>(alive_)](beast::error_code ec,
                                                                               tcp::socket socket) {
    if (alive.expired() || stopped_) return;
    if (ec == asio::error::operation_aborted) return;
    if (!ec) {
      if (sessions_.size() >= options_.max_connections) {
        beast::error_code ignored;
        socket.close(ignored);
      } else {
        socket.set_option(tcp::no_delay(true), ec);
        auto s = std::make_shared<Session>(this, std::move(socket));
        sessions_.insert(s);
        s->Start();
      }
    }
    Accept(acceptor);
  });
}

void TesServer::AddToken(std::string token) {
  if (token.empty()) return;
  std::lock_guard lock(tokens_mu_);
  tokens_.insert(std::move(token));
}

void TesServer::RemoveToken(const std::string& token) {
  std::lock_guard lock(tokens_mu_);
  tokens_.erase(token);
}

bool TesServer::Authorized(std::string_view token) {
  if (token.empty()) return false;
  if (options_.authorize && options_.authorize(token)) return true;
  std::lock_guard lock(tokens_mu_);
  return tokens_.find(token) != tokens_.end();
}

void TesServer::Answer(const Reply& reply, const Result<aws::Credentials>& r) {
  if (r.ok()) {
    // Rendering JSON per request is most of a cached answer's cost; reuse the last body
    // while the credentials are the same ones.
    const aws::Credentials& c = *r;
    bool same = c.expiration.has_value() && rendered_for_.expiration == c.expiration &&
                rendered_for_.access_key_id == c.access_key_id &&
                rendered_for_.secret_access_key == c.secret_access_key &&
                rendered_for_.session_token == c.session_token;
    if (!same) {
      rendered_ = CredentialsJson(c);
      rendered_for_ = c;
    }
    reply(200, rendered_);
  } else if (r.error().code == aws::kCredentialsTimeout) {
    reply(504, "credentials upstream timed out\n");
  } else {
    reply(500, "credentials unavailable\n");
  }
}

void TesServer::Credentials(Reply reply) {
  // Fast path: fresh credentials answered on the loop without a thread hop.
  if (cache_ != nullptr) {
    if (auto cached = cache_->TryCached()) {
      Answer(reply, *cached);
      return;
    }
  }
  uint64_t id = next_waiter_++;
  auto timer = std::make_shared<asio::steady_timer>(io_, options_.upstream_wait);
  timer->async_wait([this, id, alive = std::weak_ptr<bool>(alive_)](beast::error_code ec) {
    if (ec || alive.expired()) return;
    auto it = waiters_.find(id);
    if (it == waiters_.end()) return;
    Reply late = std::move(it->second.reply);
    waiters_.erase(it);
    Log("credentials request waited over " + std::to_string(options_.upstream_wait.count()) +
        " ms for the upstream: answering 504");
    late(504, "credentials upstream timed out\n");
  });
  waiters_.emplace(id, Waiter{std::move(reply), std::move(timer)});
  if (fetching_) return;  // the fetch in progress answers this waiter too
  fetching_ = true;
  ++stats_.upstream_fetches;
  asio::post(worker_, [this, provider = provider_, alive = std::weak_ptr<bool>(alive_)] {
    Result<aws::Credentials> r = provider->Get();
    if (alive.expired()) return;
    asio::post(io_, [this, alive, r = std::move(r)]() mutable {
      if (alive.expired()) return;
      FetchDone(std::move(r));
    });
  });
}

void TesServer::FetchDone(Result<aws::Credentials> result) {
  fetching_ = false;
  if (!result.ok()) {
    Log("cannot get credentials: " + result.error().message +
        (result.error().code.empty() ? "" : " [" + result.error().code + "]"));
  }
  auto waiters = std::move(waiters_);
  waiters_.clear();
  for (auto& [id, w] : waiters) {
    w.timer->cancel();
    Answer(w.reply, result);
  }
}

}  // namespace lichen::tes
