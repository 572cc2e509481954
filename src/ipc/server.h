// The Greengrass IPC server: a Unix socket, one RpcConnection per client, and a
// table of operations. Runs on one io_context thread; handlers run there too.
//
// A service registers a handler per operation name ("aws.greengrass#PublishToTopic").
// The handler gets a Call: the caller's component (from the token it connected
// with), the request JSON, and ways to answer. Streaming operations keep the Call
// and send events until the client closes the stream (Call::OnClose).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "common/result.h"
#include "ipc/rpc_connection.h"
#include "recipe/source_tree.h"

namespace lichen::ipc {

using Json = recipe::Json;

// Bytes one client may have waiting to be written before its events are dropped:
// a slow reader must not make the runtime grow without bound.
inline constexpr size_t kMaxQueuedBytesPerConnection = 8 * 1024 * 1024;

class Connection;

class Call : public std::enable_shared_from_this<Call> {
 public:
  const std::string& operation() const { return operation_; }
  const std::string& component() const { return component_; }  // who is calling
  // Parsed on first use: requests in canonical form (canonical_json.h) are served from
  // their text by the services that can, and never need a Json.
  const Json& request() const;
  // The request's JSON text ("{}" for an empty payload), and whether it is canonical.
  const std::string& request_text() const { return request_text_; }
  bool request_is_canonical() const { return canonical_; }

  // Response (type "aws.greengrass#<Op>Response"); terminate=false keeps the stream
  // open for events.
  void Respond(const Json& payload, bool terminate = true);
  // Modeled error: `shape` is the bare name ("UnauthorizedError"); ends the stream.
  void Error(std::string_view shape, const std::string& message, Json extra = Json::object());
  // An event on a streaming operation (never before Respond). Returns false when the
  // stream is closed or the client is too slow (the event is dropped and counted).
  bool Event(std::string_view model_type, const Json& payload);
  // The same with the payload already serialised (one text for many subscribers).
  bool EventText(std::string_view model_type, std::string_view payload);
  bool open() const;
  // Called once when the client closes the stream or disconnects.
  void OnClose(std::function<void()> callback) { on_close_ = std::move(callback); }

 private:
  friend class Connection;
  std::weak_ptr<Connection> connection_;
  int32_t stream_ = 0;
  std::string operation_;
  std::string component_;
  std::string request_text_;
  bool canonical_ = false;
  mutable bool parsed_ = false;
  mutable Json request_;
  std::function<void()> on_close_;
};

class IpcServer {
 public:
  using Handler = std::function<void(std::shared_ptr<Call>)>;
  // Maps a client's auth token to the component it belongs to; nullopt = refused.
  using Authenticator = std::function<std::optional<std::string>(const std::string& token)>;

  IpcServer(boost::asio::io_context& io, Authenticator authenticator);
  ~IpcServer();

  // Binds `socket_path` (a stale file is removed; paths longer than a Unix socket
  // allows are refused), makes it 0666 (the token is the gate) and starts accepting.
  Result<void> Listen(const std::string& socket_path);
  void Register(const std::string& operation, Handler handler);
  void Close();

  size_t connection_count() const;
  uint64_t dropped_events() const { return dropped_events_; }

 private:
  friend class Connection;
  void Accept();

  Authenticator authenticator_;
  std::map<std::string, Handler> handlers_;
  boost::asio::local::stream_protocol::acceptor acceptor_;
  std::string socket_path_;
  std::map<Connection*, std::weak_ptr<Connection>> connections_;
  uint64_t dropped_events_ = 0;
};

}  // namespace lichen::ipc
