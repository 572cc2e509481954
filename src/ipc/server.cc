#include "ipc/server.h"

#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <deque>
#include <vector>

#include "common/json_depth.h"
#include "ipc/event_stream.h"

namespace lichen::ipc {

namespace asio = boost::asio;
using asio::local::stream_protocol;

// IOV_MAX is 1024 on Linux; stay well below it.
constexpr size_t kMaxFramesPerWrite = 256;
// Deeper requests are refused (common/json_depth.h says why).
constexpr size_t kMaxJsonDepth = 128;

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(IpcServer& server, stream_protocol::socket socket)
      : server_(server), socket_(std::move(socket)), linger_(socket_.get_executor()) {}

  void Start() { ReadLoop(); }

  void Shutdown() {
    closing_ = true;
    boost::system::error_code ignored;
    socket_.close(ignored);
    linger_.cancel();
    CloseAllCalls();
  }

  void Apply(std::vector<Action> actions) {
    for (auto& action : actions) {
      if (auto* out = std::get_if<Outgoing>(&action)) {
        Enqueue(out->message);
      } else if (auto* auth = std::get_if<Authenticate>(&action)) {
        auto component =
            server_.authenticator_ ? server_.authenticator_(auth->auth_token) : std::nullopt;
        if (component) {
          component_ = *component;
          Apply(rpc_.Accept());
        } else {
          Apply(rpc_.Reject());
        }
      } else if (auto* open = std::get_if<OpenStream>(&action)) {
        Dispatch(*open);
      } else if (auto* closed = std::get_if<StreamClosed>(&action)) {
        auto it = calls_.find(closed->stream_id);
        if (it != calls_.end()) {
          auto call = it->second;
          calls_.erase(it);
          if (call->on_close_) std::exchange(call->on_close_, nullptr)();
        }
      } else if (std::holds_alternative<CloseConnection>(action)) {
        closing_ = true;
        CloseAllCalls();
        if (!writing_) Finish();
      }
      // StreamMessage: no Greengrass operation sends more than one request message.
    }
  }

  bool QueueHasRoom(size_t bytes) const {
    return queued_bytes_ + bytes <= kMaxQueuedBytesPerConnection;
  }
  void CountDroppedEvent() { ++server_.dropped_events_; }

  RpcConnection& rpc() { return rpc_; }
  IpcServer& server() { return server_; }

 private:
  void Dispatch(const OpenStream& open) {
    if (JsonNestsDeeperThan(open.payload, kMaxJsonDepth)) {
      const std::string why =
          "the request nests deeper than " + std::to_string(kMaxJsonDepth) + " levels";
      Json body = {{"message", why},
                   {"_message", why},
                   {"_errorCode", "ServiceError"},
                   {"_service", "aws.greengrass#GreengrassCoreIPC"}};
      Apply(rpc_.SendError(open.stream_id, "ServiceError", body.dump()));
      return;
    }
    auto request =
        Json::parse(open.payload.empty() ? std::string("{}") : open.payload, nullptr, false);
    auto it = server_.handlers_.find(open.operation);
    if (it == server_.handlers_.end()) {
      Json body = {{"message", "unknown operation " + open.operation}};
      Apply(rpc_.SendError(open.stream_id, "",
                           body.dump(-1, ' ', false, Json::error_handler_t::replace)));
      return;
    }
    if (request.is_discarded() || !request.is_object()) {
      Json body = {{"message", "the request is not a JSON object"},
                   {"_message", "the request is not a JSON object"},
                   {"_errorCode", "ServiceError"},
                   {"_service", "aws.greengrass#GreengrassCoreIPC"}};
      Apply(rpc_.SendError(open.stream_id, "ServiceError", body.dump()));
      return;
    }
    auto call = std::make_shared<Call>();
    call->connection_ = weak_from_this();
    call->stream_ = open.stream_id;
    call->operation_ = open.operation;
    call->component_ = component_;
    call->request_ = std::move(request);
    calls_[open.stream_id] = call;
    it->second(call);
    // A non-streaming handler that answered already terminated the stream.
    if (!rpc_.IsStreamOpen(open.stream_id)) calls_.erase(open.stream_id);
  }

  void Enqueue(const Message& message) {
    auto bytes = Encode(message);
    if (!bytes) return;  // over the protocol limits: services keep replies smaller
    queued_bytes_ += bytes->size();
    queue_.push_back(std::move(*bytes));
    StartWrite();
  }

  // Everything queued goes out in one gather write: one system call and one wake-up of
  // the client for a burst of frames instead of one per frame.
  void StartWrite() {
    if (writing_ || queue_.empty() || !socket_.is_open()) return;
    writing_ = true;
    in_flight_.clear();
    while (!queue_.empty() && in_flight_.size() < kMaxFramesPerWrite) {
      in_flight_.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    std::vector<asio::const_buffer> buffers;
    buffers.reserve(in_flight_.size());
    for (const auto& frame : in_flight_) buffers.emplace_back(asio::buffer(frame));
    auto self = shared_from_this();
    asio::async_write(socket_, buffers, [self](const boost::system::error_code& ec, size_t) {
      self->writing_ = false;
      for (const auto& frame : self->in_flight_) self->queued_bytes_ -= frame.size();
      self->in_flight_.clear();
      if (ec) {
        self->Shutdown();
        return;
      }
      if (self->read_paused_ && self->queued_bytes_ <= kMaxQueuedBytesPerConnection / 2) {
        self->read_paused_ = false;
        self->ReadLoop();
      }
      if (!self->queue_.empty()) {
        self->StartWrite();
      } else if (self->closing_) {
        self->Finish();
      }
    });
  }

  void ReadLoop() {
    if (reading_ || (closing_ && !draining_)) return;
    // A client that sends requests but does not read the answers stops being read
    // until its queue drains: replies cannot grow memory without bound either.
    if (!draining_ && queued_bytes_ > kMaxQueuedBytesPerConnection) {
      read_paused_ = true;
      return;
    }
    reading_ = true;
    auto self = shared_from_this();
    socket_.async_read_some(asio::buffer(buf_),
                            [self](const boost::system::error_code& ec, size_t n) {
                              self->reading_ = false;
                              if (ec) {
                                self->Shutdown();
                                return;
                              }
                              if (self->draining_) return self->ReadLoop();  // discarded
                              self->decoder_.Feed(std::string_view(self->buf_.data(), n));
                              while (!self->closing_) {
                                auto next = self->decoder_.Next();
                                if (!next) {
                                  self->Apply(self->rpc_.OnDecodeError(next.error()));
                                  break;
                                }
                                if (!next->has_value()) break;
                                self->Apply(self->rpc_.OnMessage(**next));
                              }
                              self->ReadLoop();
                            });
  }

  // Ends the connection after the last frame went out: the client closes first, or
  // two seconds pass. Closing at once makes the SDK clients see the end of the
  // connection before they have read the last frame, so a refusing CONNECT_ACK looked
  // like a network error instead of access denied. What the client still sends is
  // discarded.
  void Finish() {
    if (draining_) return;
    draining_ = true;
    linger_.expires_after(std::chrono::seconds(2));
    linger_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (!ec) self->Shutdown();
    });
    ReadLoop();
  }

  void CloseAllCalls() {
    auto calls = std::move(calls_);
    calls_.clear();
    for (auto& [id, call] : calls) {
      if (call->on_close_) std::exchange(call->on_close_, nullptr)();
    }
  }

  IpcServer& server_;
  stream_protocol::socket socket_;
  Decoder decoder_;
  RpcConnection rpc_;
  // Not zero-filled: an idle connection should not keep these pages resident. Frames
  // larger than one read are assembled by the decoder.
  std::array<char, 8 * 1024> buf_;
  std::deque<std::string> queue_;
  std::vector<std::string> in_flight_;  // the frames of the write in progress
  size_t queued_bytes_ = 0;
  bool writing_ = false;
  bool reading_ = false;
  bool read_paused_ = false;  // the client's answers are not being read
  bool closing_ = false;
  bool draining_ = false;  // after Finish(): reading only to see the client close
  asio::steady_timer linger_;
  std::string component_;
  std::map<int32_t, std::shared_ptr<Call>> calls_;

  friend class IpcServer;
};

void Call::Respond(const Json& payload, bool terminate) {
  auto c = connection_.lock();
  if (!c) return;
  const std::string shape =
      std::string(kShapePrefix) +
      operation_.substr(operation_.find('#') == std::string::npos ? 0 : operation_.find('#') + 1) +
      "Response";
  c->Apply(c->rpc().Respond(
      stream_, shape, payload.dump(-1, ' ', false, Json::error_handler_t::replace), terminate));
}

void Call::Error(std::string_view shape, const std::string& message, Json extra) {
  auto c = connection_.lock();
  if (!c) return;
  Json body = {{"message", message},
               {"_message", message},
               {"_errorCode", std::string(shape)},
               {"_service", "aws.greengrass#GreengrassCoreIPC"}};
  for (const auto& [k, v] : extra.items()) body[k] = v;
  c->Apply(c->rpc().SendError(stream_, shape,
                              body.dump(-1, ' ', false, Json::error_handler_t::replace)));
}

bool Call::Event(std::string_view model_type, const Json& payload) {
  if (!open()) return false;
  return EventText(model_type, payload.dump(-1, ' ', false, Json::error_handler_t::replace));
}

bool Call::EventText(std::string_view model_type, std::string body) {
  auto c = connection_.lock();
  if (!c || !c->rpc().IsStreamOpen(stream_)) return false;
  if (!c->QueueHasRoom(body.size() + 256)) {
    c->CountDroppedEvent();
    return false;
  }
  auto actions = c->rpc().SendEvent(stream_, model_type, std::move(body));
  const bool sent = !actions.empty();
  c->Apply(std::move(actions));
  return sent;
}

bool Call::open() const {
  auto c = connection_.lock();
  return c && c->rpc().IsStreamOpen(stream_);
}

IpcServer::IpcServer(asio::io_context& io, Authenticator authenticator)
    : authenticator_(std::move(authenticator)), acceptor_(io) {}

IpcServer::~IpcServer() { Close(); }

Result<void> IpcServer::Listen(const std::string& socket_path) {
  if (socket_path.size() >= sizeof(sockaddr_un::sun_path)) {
    return MakeError("IPC socket path '" + socket_path + "' is longer than the " +
                     std::to_string(sizeof(sockaddr_un::sun_path) - 1) +
                     " bytes a Unix socket allows; use a shorter root or a symlink to it");
  }
  ::unlink(socket_path.c_str());  // a stale socket from a previous run
  boost::system::error_code ec;
  acceptor_.open(stream_protocol(), ec);
  if (!ec) acceptor_.bind(stream_protocol::endpoint(socket_path), ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return MakeError("cannot listen on " + socket_path + ": " + ec.message());
  ::chmod(socket_path.c_str(), 0666);
  socket_path_ = socket_path;
  Accept();
  return {};
}

void IpcServer::Register(const std::string& operation, Handler handler) {
  handlers_[operation] = std::move(handler);
}

void IpcServer::Accept() {
  acceptor_.async_accept(
      [this](const boost::system::error_code& ec, stream_protocol::socket socket) {
        if (ec) return;  // closed
        auto connection = std::make_shared<Connection>(*this, std::move(socket));
        // Forget connections that are gone, so the map stays as large as what is open.
        for (auto it = connections_.begin(); it != connections_.end();) {
          it = it->second.expired() ? connections_.erase(it) : std::next(it);
        }
        connections_[connection.get()] = connection;
        connection->Start();
        Accept();
      });
}

size_t IpcServer::connection_count() const {
  size_t n = 0;
  for (const auto& [p, weak] : connections_) n += weak.expired() ? 0 : 1;
  return n;
}

void IpcServer::Close() {
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  for (auto& [p, weak] : connections_) {
    if (auto c = weak.lock()) c->Shutdown();
  }
  connections_.clear();
  if (!socket_path_.empty()) ::unlink(socket_path_.c_str());
  socket_path_.clear();
}

}  // namespace lichen::ipc
