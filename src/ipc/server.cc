#include "ipc/server.h"

#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <vector>

#include "common/json_depth.h"
#include "ipc/canonical_json.h"
#include "ipc/event_stream.h"

namespace lichen::ipc {

namespace asio = boost::asio;
using asio::local::stream_protocol;

// Deeper requests are refused (common/json_depth.h says why).
constexpr size_t kMaxJsonDepth = 128;
// Reads are this large while a client keeps the small buffer full (a pipelining
// publisher): fewer wake-ups and system calls per message.
constexpr size_t kLargeReadSize = 64 * 1024;
// Write buffers larger than this are freed once written: an idle connection should not
// pin the memory of a burst.
constexpr size_t kKeepWriteCapacity = 16 * 1024;

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

  // An empty queue takes any one frame: messages up to the 16 MiB protocol limit are
  // allowed, and the bound is on what piles up, not on one message.
  bool QueueHasRoom(size_t bytes) const {
    return queued_bytes() == 0 || queued_bytes() + bytes <= kMaxQueuedBytesPerConnection;
  }

  // Encodes an application frame straight into the write buffer (see
  // AppendApplicationFrame); the caller asked rpc_ whether it may be sent.
  void SendFrame(MessageType type, int32_t flags, int32_t stream, std::string_view model_type,
                 std::string_view payload) {
    // Over the protocol limits it is dropped, as Enqueue drops it: services keep replies
    // smaller.
    if (AppendApplicationFrame(pending_, type, flags, stream, model_type, payload)) StartWrite();
  }
  void CountDroppedEvent() { ++server_.dropped_events_; }

  RpcConnection& rpc() { return rpc_; }
  IpcServer& server() { return server_; }

 private:
  void Dispatch(OpenStream& open) {
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
    auto it = server_.handlers_.find(open.operation);
    if (it == server_.handlers_.end()) {
      Json body = {{"message", "unknown operation " + open.operation}};
      Apply(rpc_.SendError(open.stream_id, "",
                           body.dump(-1, ' ', false, Json::error_handler_t::replace)));
      return;
    }
    std::string text = open.payload.empty() ? std::string("{}") : std::move(open.payload);
    // Text in canonical form is a valid object: no need to parse it to know.
    const bool canonical = IsCanonicalJsonObject(text);
    Json request;
    if (!canonical) request = Json::parse(text, nullptr, false);
    if (!canonical && (request.is_discarded() || !request.is_object())) {
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
    call->request_text_ = std::move(text);
    call->canonical_ = canonical;
    if (!canonical) {
      call->request_ = std::move(request);
      call->parsed_ = true;
    }
    it->second(call);
    // Only a stream left open needs the call kept: a non-streaming handler that answered
    // already terminated it (the handler runs to completion before any other frame of the
    // connection is handled).
    if (rpc_.IsStreamOpen(open.stream_id)) calls_[open.stream_id] = std::move(call);
  }

  void Enqueue(const Message& message) {
    auto bytes = Encode(message);
    if (!bytes) return;  // over the protocol limits: services keep replies smaller
    pending_ += *bytes;
    StartWrite();
  }

  size_t queued_bytes() const { return pending_.size() + in_flight_.size(); }

  // Everything queued goes out in one write: one system call and one wake-up of the
  // client for a burst of frames instead of one per frame. Frames are appended to
  // pending_ while in_flight_ is being written.
  void StartWrite() {
    if (writing_ || pending_.empty() || !socket_.is_open()) return;
    writing_ = true;
    in_flight_.swap(pending_);
    auto self = shared_from_this();
    asio::async_write(
        socket_, asio::buffer(in_flight_), [self](const boost::system::error_code& ec, size_t) {
          self->writing_ = false;
          if (self->in_flight_.capacity() > kKeepWriteCapacity) {
            std::string().swap(self->in_flight_);
          } else {
            self->in_flight_.clear();
          }
          if (ec) {
            self->Shutdown();
            return;
          }
          const bool resume =
              self->read_paused_ && self->queued_bytes() <= kMaxQueuedBytesPerConnection / 2;
          if (!self->pending_.empty()) {
            self->StartWrite();
          } else if (self->closing_) {
            self->Finish();
          }
          if (resume) {
            self->read_paused_ = false;
            // The frames already read first: the client may be waiting for their answers.
            self->HandleFrames();
            self->ReadLoop();
          }
        });
  }

  void ReadLoop() {
    if (reading_ || (closing_ && !draining_)) return;
    // A client that sends requests but does not read the answers stops being read
    // until its queue drains: replies cannot grow memory without bound either.
    if (!draining_ && queued_bytes() > kMaxQueuedBytesPerConnection) {
      read_paused_ = true;
      return;
    }
    reading_ = true;
    char* const data = large_buf_ ? large_buf_.get() : buf_.data();
    const size_t size = large_buf_ ? kLargeReadSize : buf_.size();
    auto self = shared_from_this();
    socket_.async_read_some(asio::buffer(data, size),
                            [self, data, size](const boost::system::error_code& ec, size_t n) {
                              self->reading_ = false;
                              if (ec) {
                                self->Shutdown();
                                return;
                              }
                              if (self->draining_) return self->ReadLoop();  // discarded
                              self->decoder_.Feed(std::string_view(data, n));
                              // A full read means the client sends faster than one buffer per
                              // wake-up: read more at a time. A small read means it slowed down:
                              // back to the small buffer, so quiet connections stay small.
                              if (n == size && !self->large_buf_) {
                                self->large_buf_.reset(new char[kLargeReadSize]);
                              } else if (n < self->buf_.size() && self->large_buf_) {
                                self->large_buf_.reset();
                              }
                              self->HandleFrames();
                              self->ReadLoop();
                            });
  }

  // Handles the frames read so far. Stops while the queue is over its bound (ReadLoop then
  // pauses, and the write that drains the queue comes back here): one read may bring in
  // hundreds of requests, and their replies are not checked against the bound as events are.
  void HandleFrames() {
    while (!closing_ && queued_bytes() <= kMaxQueuedBytesPerConnection) {
      auto next = decoder_.Next();
      if (!next) {
        Apply(rpc_.OnDecodeError(next.error()));
        break;
      }
      if (!next->has_value()) break;
      Apply(rpc_.OnMessage(std::move(**next)));
    }
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
  std::unique_ptr<char[]> large_buf_;  // kLargeReadSize bytes while the client is busy
  std::string pending_;                // frames waiting for the write in progress
  std::string in_flight_;              // the frames of the write in progress
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

const Json& Call::request() const {
  if (!parsed_) {
    // Canonical text is valid JSON: this cannot fail.
    request_ = Json::parse(request_text_, nullptr, false);
    parsed_ = true;
  }
  return request_;
}

void Call::Respond(const Json& payload, bool terminate) {
  auto c = connection_.lock();
  if (!c || !c->rpc().BeginRespond(stream_, terminate)) return;
  const size_t hash = operation_.find('#');
  const std::string_view name =
      std::string_view(operation_).substr(hash == std::string::npos ? 0 : hash + 1);
  std::string shape;
  shape.reserve(kShapePrefix.size() + name.size() + 8);
  shape.append(kShapePrefix).append(name).append("Response");
  // Most responses are the empty shape: no need to serialise it.
  const bool empty = payload.is_object() && payload.empty();
  std::string text;
  if (!empty) text = payload.dump(-1, ' ', false, Json::error_handler_t::replace);
  c->SendFrame(MessageType::kApplicationMessage, terminate ? kFlagTerminateStream : 0, stream_,
               shape, empty ? std::string_view("{}") : std::string_view(text));
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

bool Call::EventText(std::string_view model_type, std::string_view body) {
  auto c = connection_.lock();
  if (!c || !c->rpc().IsStreamOpen(stream_)) return false;
  if (!c->QueueHasRoom(body.size() + 256)) {
    c->CountDroppedEvent();
    return false;
  }
  if (!c->rpc().MaySendEvent(stream_)) return false;
  c->SendFrame(MessageType::kApplicationMessage, 0, stream_, model_type, body);
  return true;
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
