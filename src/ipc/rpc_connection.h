// The server side of the Greengrass IPC RPC layer (event-stream RPC) for one client
// connection: a state machine without I/O, so it can be tested and fuzzed without sockets.
//
// The owner hands it each decoded frame (OnMessage) or the decoder's failure
// (OnDecodeError), and the services' replies (Respond, SendEvent, SendError). Every call
// returns what the owner must do, in order: write frames, authenticate a token, dispatch a
// request, tell a service a stream ended, close the socket.
//
// Contract (spec "RPC layer"; behaviour of aws-c-event-stream's RPC server and of the
// Greengrass nucleus where the spec is silent):
// - Every client frame carries int32 `:message-type`, `:message-flags` and `:stream-id`.
// - The first frame must be CONNECT (type 4) on stream 0. A `:version` other than 0.1.0
//   (or none) is refused like a bad token, as the nucleus does: CONNECT_ACK without the
//   accepted flag, then close. The payload is a JSON object (at most
//   kMaxConnectPayloadSize bytes); its "authToken" string goes to the owner in
//   Authenticate, an absent one as "" (so a component started without a token is told
//   access denied). Until the owner calls Accept() or Reject(), any frame, a second
//   CONNECT included, is a protocol error.
// - Stream 0 carries connection-level frames only: a ping gets a ping response echoing
//   the payload and the headers not starting with ':'; a ping response is ignored; any
//   other type is a protocol error.
// - Only the client opens streams, with an application message (type 0) carrying a
//   non-empty string `operation` header, numbered 1 and then previous highest + 1. At most
//   max_open_streams are open at once. A first frame with TERMINATE opens and closes the
//   stream (the owner sees OpenStream then StreamClosed, and replies are dropped).
// - Clients send only application messages on streams. A later frame on an open stream is
//   a StreamMessage (unless it is an empty TERMINATE); TERMINATE closes the stream
//   (StreamClosed). A frame for an older stream that is closed is ignored when it has
//   TERMINATE (the two sides closed at once) and a protocol error otherwise.
// - Nothing is sent on a stream after either side terminated it: replies for a closed or
//   unknown stream are dropped (the call returns nothing). A stream gets one response
//   (Respond), then events (SendEvent, only after the response) until someone terminates
//   it; SendError terminates it at any point.
// - A protocol error is reported on stream 0 (type 6, JSON {"message": ...}) and followed
//   by CloseConnection; after CloseConnection every call returns nothing. Closing ends
//   every stream: the owner drops all of the connection's subscriptions.
// - Frames are not size-checked here. A client frame is under the limits by construction,
//   and so is the ping response echoing it; services keep reply payloads well under
//   kMaxMessageSize, or Encode() refuses the frame.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "common/result.h"
#include "ipc/event_stream.h"
#include "ipc/limits.h"

namespace lichen::ipc {

enum class MessageType : std::int32_t {
  kApplicationMessage = 0,
  kApplicationError = 1,
  kPing = 2,
  kPingResponse = 3,
  kConnect = 4,
  kConnectAck = 5,
  kProtocolError = 6,
  kInternalError = 7,
};

inline constexpr std::int32_t kFlagConnectionAccepted = 0x1;  // CONNECT_ACK only
inline constexpr std::int32_t kFlagTerminateStream = 0x2;

inline constexpr std::string_view kMessageTypeHeader = ":message-type";
inline constexpr std::string_view kMessageFlagsHeader = ":message-flags";
inline constexpr std::string_view kStreamIdHeader = ":stream-id";
inline constexpr std::string_view kVersionHeader = ":version";
inline constexpr std::string_view kContentTypeHeader = ":content-type";
inline constexpr std::string_view kOperationHeader = "operation";
inline constexpr std::string_view kServiceModelTypeHeader = "service-model-type";
inline constexpr std::string_view kContentTypeJson = "application/json";
inline constexpr std::string_view kProtocolVersion = "0.1.0";
inline constexpr std::string_view kShapePrefix = "aws.greengrass#";

// What the connection asks its owner to do.
struct Outgoing {  // a frame to write
  Message message;
};
struct Authenticate {  // check the token, then call Accept() or Reject()
  std::string auth_token;
};
struct OpenStream {  // a new request: dispatch on the operation
  std::int32_t stream_id;
  std::string operation;  // e.g. "aws.greengrass#PublishToTopic"
  std::string payload;
};
struct StreamMessage {  // a later message on an open stream (rare)
  std::int32_t stream_id;
  std::string payload;
};
struct StreamClosed {  // the client terminated the stream: unsubscribe, forget the request
  std::int32_t stream_id;
};
struct CloseConnection {  // write what was queued before it, then close the socket
  std::string reason;
};
using Action =
    std::variant<Outgoing, Authenticate, OpenStream, StreamMessage, StreamClosed, CloseConnection>;

class RpcConnection {
 public:
  explicit RpcConnection(std::size_t max_open_streams = kMaxOpenStreams);

  std::vector<Action> OnMessage(const Message& message);
  // The same, moving the request's operation and payload out of `message` instead of
  // copying them (the owner's decoded frame, which it drops afterwards).
  std::vector<Action> OnMessage(Message&& message);
  // The decoder failed: protocol error, then close.
  std::vector<Action> OnDecodeError(const Error& error);

  // Answers an Authenticate: CONNECT_ACK with the accepted flag; or CONNECT_ACK without it,
  // then close. Nothing happens unless an Authenticate is pending.
  std::vector<Action> Accept();
  std::vector<Action> Reject();

  // The response to a stream's request. model_type is a full shape id
  // ("aws.greengrass#PublishToTopicResponse"); terminate is true for request/response
  // operations and false for streaming ones. Dropped unless the stream is open and has no
  // response yet.
  std::vector<Action> Respond(std::int32_t stream, std::string_view model_type,
                              std::string payload_json, bool terminate);
  // A modeled error that ends the stream. error_shape is the bare shape name
  // ("ServiceError"; sent as "aws.greengrass#ServiceError"); empty for errors outside the
  // model (an unknown operation), which go without service-model-type. Dropped unless the
  // stream is open.
  std::vector<Action> SendError(std::int32_t stream, std::string_view error_shape,
                                std::string payload_json);
  // A streaming event (model_type as for Respond). Dropped unless the stream is open and
  // its response was sent.
  std::vector<Action> SendEvent(std::int32_t stream, std::string_view model_type,
                                std::string payload_json);

  // What Respond and SendEvent decide, for an owner that encodes the frame itself
  // (AppendApplicationFrame) instead of taking a Message: whether the frame may be sent.
  // BeginRespond records the response (and closes the stream when `terminate`), as
  // Respond does.
  bool BeginRespond(std::int32_t stream, bool terminate);
  bool MaySendEvent(std::int32_t stream) const;

  bool IsStreamOpen(std::int32_t stream) const;
  std::size_t OpenStreamCount() const { return streams_.size(); }
  bool IsClosed() const { return phase_ == Phase::kClosed; }

 private:
  enum class Phase { kAwaitingConnect, kAwaitingAuth, kConnected, kClosed };
  struct StreamState {
    bool responded = false;
  };

  std::vector<Action> OnMessage(Message& message, bool may_move);
  std::vector<Action> OnConnect(const Message& message, std::int32_t type, std::int32_t stream);
  std::vector<Action> OnConnectionLevel(const Message& message, std::int32_t type);
  std::vector<Action> OnStreamFrame(Message& message, bool may_move, std::int32_t type,
                                    std::int32_t flags, std::int32_t stream);
  std::vector<Action> ProtocolError(std::string message);
  // CONNECT_ACK without the accepted flag, then close.
  std::vector<Action> Refuse(std::string reason);

  Phase phase_ = Phase::kAwaitingConnect;
  std::size_t max_open_streams_;
  std::int32_t highest_stream_ = 0;
  std::unordered_map<std::int32_t, StreamState> streams_;  // the open ones
};

// Appends to `out` the wire bytes of an application message or error with the headers
// Respond, SendEvent and SendError write (`:content-type` application/json, then
// `service-model-type` unless model_type is empty, then the RPC headers): the same bytes as
// Encode() of their Message, without building one. False (nothing appended) when the frame
// would break the limits.
bool AppendApplicationFrame(std::string& out, MessageType type, std::int32_t flags,
                            std::int32_t stream, std::string_view model_type,
                            std::string_view payload_json);

}  // namespace lichen::ipc
