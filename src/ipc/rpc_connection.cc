#include "ipc/rpc_connection.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>

namespace lichen::ipc {
namespace {

using Json = nlohmann::json;

Header StringHeader(std::string_view name, std::string_view value) {
  return Header{std::string(name), std::string(value)};
}

// A frame with the RPC headers after the others, in the order aws-c-event-stream writes.
Message Frame(MessageType type, std::int32_t flags, std::int32_t stream,
              std::vector<Header> headers, std::string payload) {
  headers.push_back(Header{std::string(kMessageTypeHeader), static_cast<std::int32_t>(type)});
  headers.push_back(Header{std::string(kMessageFlagsHeader), flags});
  headers.push_back(Header{std::string(kStreamIdHeader), stream});
  return Message{std::move(headers), std::move(payload)};
}

bool HasFlag(std::int32_t flags, std::int32_t flag) { return (flags & flag) != 0; }

// Moves the action in: a braced list would copy it, payload included.
std::vector<Action> Just(Action action) {
  std::vector<Action> actions;
  actions.push_back(std::move(action));
  return actions;
}

}  // namespace

RpcConnection::RpcConnection(std::size_t max_open_streams) : max_open_streams_(max_open_streams) {}

bool RpcConnection::IsStreamOpen(std::int32_t stream) const { return streams_.contains(stream); }

std::vector<Action> RpcConnection::OnMessage(const Message& message) {
  // Not modified: may_move is false.
  return OnMessage(const_cast<Message&>(message), /*may_move=*/false);
}

std::vector<Action> RpcConnection::OnMessage(Message&& message) {
  return OnMessage(message, /*may_move=*/true);
}

std::vector<Action> RpcConnection::OnMessage(Message& message, bool may_move) {
  if (phase_ == Phase::kClosed) return {};
  const std::optional<std::int32_t> type = message.GetInt32(kMessageTypeHeader);
  const std::optional<std::int32_t> flags = message.GetInt32(kMessageFlagsHeader);
  const std::optional<std::int32_t> stream = message.GetInt32(kStreamIdHeader);
  if (!type || !flags || !stream) {
    return ProtocolError(
        "every message needs int32 headers :message-type, :message-flags and :stream-id");
  }
  switch (phase_) {
    case Phase::kAwaitingConnect:
      return OnConnect(message, *type, *stream);
    case Phase::kAwaitingAuth:
      return ProtocolError("no message is allowed until the CONNECT is answered");
    case Phase::kConnected:
      if (*stream < 0) return ProtocolError("negative :stream-id");
      if (*stream == 0) return OnConnectionLevel(message, *type);
      return OnStreamFrame(message, may_move, *type, *flags, *stream);
    case Phase::kClosed:
      break;
  }
  return {};
}

std::vector<Action> RpcConnection::OnConnect(const Message& message, std::int32_t type,
                                             std::int32_t stream) {
  if (type != static_cast<std::int32_t>(MessageType::kConnect) || stream != 0) {
    return ProtocolError("the first message must be a CONNECT on stream 0");
  }
  if (message.GetString(kVersionHeader) != kProtocolVersion) {
    return Refuse("unsupported or missing :version (expected 0.1.0)");
  }
  if (message.payload.size() > kMaxConnectPayloadSize) {
    return ProtocolError("CONNECT payload exceeds " + std::to_string(kMaxConnectPayloadSize) +
                         " bytes");
  }
  // allow_exceptions=false: malformed input yields a discarded value instead of throwing.
  const Json body = Json::parse(message.payload, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded() || !body.is_object()) {
    return ProtocolError("CONNECT payload must be a JSON object");
  }
  std::string token;
  if (const auto it = body.find("authToken"); it != body.end()) {
    if (!it->is_string()) return ProtocolError("CONNECT authToken must be a string");
    token = it->get<std::string>();
  }
  phase_ = Phase::kAwaitingAuth;
  return Just(Authenticate{std::move(token)});
}

std::vector<Action> RpcConnection::OnConnectionLevel(const Message& message, std::int32_t type) {
  switch (static_cast<MessageType>(type)) {
    case MessageType::kPing: {
      std::vector<Header> echoed;
      for (const Header& header : message.headers) {
        if (!header.name.starts_with(':')) echoed.push_back(header);
      }
      return Just(
          Outgoing{Frame(MessageType::kPingResponse, 0, 0, std::move(echoed), message.payload)});
    }
    case MessageType::kPingResponse:
      return {};  // we never ping, but a response is harmless
    case MessageType::kConnect:
      return ProtocolError("only one CONNECT is allowed on a connection");
    default:
      return ProtocolError("message type " + std::to_string(type) + " is not valid on stream 0");
  }
}

std::vector<Action> RpcConnection::OnStreamFrame(Message& message, bool may_move, std::int32_t type,
                                                 std::int32_t flags, std::int32_t stream) {
  auto take_payload = [&] { return may_move ? std::move(message.payload) : message.payload; };
  const bool terminate = HasFlag(flags, kFlagTerminateStream);
  const bool application = type == static_cast<std::int32_t>(MessageType::kApplicationMessage);
  if (stream <= highest_stream_) {
    if (!streams_.contains(stream)) {
      // Both sides may terminate at once: a late TERMINATE is expected, anything else is not.
      if (terminate &&
          (application || type == static_cast<std::int32_t>(MessageType::kApplicationError))) {
        return {};
      }
      return ProtocolError("message for closed stream " + std::to_string(stream));
    }
    if (!application) {
      return ProtocolError("message type " + std::to_string(type) + " is not valid on a stream");
    }
    std::vector<Action> actions;
    if (!terminate || !message.payload.empty()) {
      actions.emplace_back(StreamMessage{stream, take_payload()});
    }
    if (terminate) {
      streams_.erase(stream);
      actions.emplace_back(StreamClosed{stream});
    }
    return actions;
  }

  // Widened: highest_stream_ + 1 overflows int32 once the last id is used.
  if (static_cast<std::int64_t>(stream) != static_cast<std::int64_t>(highest_stream_) + 1) {
    return ProtocolError("new stream " + std::to_string(stream) + " must be " +
                         std::to_string(static_cast<std::int64_t>(highest_stream_) + 1));
  }
  if (!application) {
    return ProtocolError("a stream must open with an application message");
  }
  const Header* operation_header = message.Find(kOperationHeader);
  auto* operation = operation_header == nullptr
                        ? nullptr
                        : std::get_if<std::string>(&const_cast<Header*>(operation_header)->value);
  if (operation == nullptr || operation->empty()) {
    return ProtocolError("the first message on a stream needs a string operation header");
  }
  if (streams_.size() >= max_open_streams_) {
    return ProtocolError("too many open streams (limit " + std::to_string(max_open_streams_) + ")");
  }
  highest_stream_ = stream;
  std::vector<Action> actions;
  actions.emplace_back(
      OpenStream{stream, may_move ? std::move(*operation) : *operation, take_payload()});
  if (terminate) {
    actions.emplace_back(StreamClosed{stream});
  } else {
    streams_.emplace(stream, StreamState{});
  }
  return actions;
}

std::vector<Action> RpcConnection::OnDecodeError(const Error& error) {
  if (phase_ == Phase::kClosed) return {};
  return ProtocolError(error.message);
}

std::vector<Action> RpcConnection::Accept() {
  if (phase_ != Phase::kAwaitingAuth) return {};
  phase_ = Phase::kConnected;
  return Just(Outgoing{Frame(MessageType::kConnectAck, kFlagConnectionAccepted, 0, {}, {})});
}

std::vector<Action> RpcConnection::Reject() {
  if (phase_ != Phase::kAwaitingAuth) return {};
  return Refuse("authentication failed");
}

std::vector<Action> RpcConnection::Refuse(std::string reason) {
  phase_ = Phase::kClosed;
  streams_.clear();
  std::vector<Action> actions;
  actions.emplace_back(Outgoing{Frame(MessageType::kConnectAck, 0, 0, {}, {})});
  actions.emplace_back(CloseConnection{std::move(reason)});
  return actions;
}

bool RpcConnection::BeginRespond(std::int32_t stream, bool terminate) {
  const auto it = streams_.find(stream);
  if (phase_ != Phase::kConnected || it == streams_.end() || it->second.responded) return false;
  if (terminate) {
    streams_.erase(it);
  } else {
    it->second.responded = true;
  }
  return true;
}

bool RpcConnection::MaySendEvent(std::int32_t stream) const {
  const auto it = streams_.find(stream);
  return phase_ == Phase::kConnected && it != streams_.end() && it->second.responded;
}

std::vector<Action> RpcConnection::Respond(std::int32_t stream, std::string_view model_type,
                                           std::string payload_json, bool terminate) {
  if (!BeginRespond(stream, terminate)) return {};
  std::vector<Header> headers{StringHeader(kContentTypeHeader, kContentTypeJson),
                              StringHeader(kServiceModelTypeHeader, model_type)};
  return Just(Outgoing{Frame(MessageType::kApplicationMessage, terminate ? kFlagTerminateStream : 0,
                             stream, std::move(headers), std::move(payload_json))});
}

std::vector<Action> RpcConnection::SendError(std::int32_t stream, std::string_view error_shape,
                                             std::string payload_json) {
  const auto it = streams_.find(stream);
  if (phase_ != Phase::kConnected || it == streams_.end()) return {};
  std::vector<Header> headers{StringHeader(kContentTypeHeader, kContentTypeJson)};
  if (!error_shape.empty()) {
    headers.push_back(StringHeader(kServiceModelTypeHeader,
                                   std::string(kShapePrefix) + std::string(error_shape)));
  }
  streams_.erase(it);
  return Just(Outgoing{Frame(MessageType::kApplicationError, kFlagTerminateStream, stream,
                             std::move(headers), std::move(payload_json))});
}

std::vector<Action> RpcConnection::SendEvent(std::int32_t stream, std::string_view model_type,
                                             std::string payload_json) {
  if (!MaySendEvent(stream)) return {};
  std::vector<Header> headers{StringHeader(kContentTypeHeader, kContentTypeJson),
                              StringHeader(kServiceModelTypeHeader, model_type)};
  return Just(Outgoing{Frame(MessageType::kApplicationMessage, 0, stream, std::move(headers),
                             std::move(payload_json))});
}

std::vector<Action> RpcConnection::ProtocolError(std::string message) {
  phase_ = Phase::kClosed;
  streams_.clear();
  // error_handler replace: decoder messages are ours, but never let odd bytes throw here.
  const std::string body =
      Json{{"message", message}}.dump(-1, ' ', false, Json::error_handler_t::replace);
  std::vector<Action> actions;
  actions.emplace_back(Outgoing{Frame(MessageType::kProtocolError, 0, 0,
                                      {StringHeader(kContentTypeHeader, kContentTypeJson)}, body)});
  actions.emplace_back(CloseConnection{std::move(message)});
  return actions;
}

namespace {

void PutU32(char* p, std::uint32_t v) {
  p[0] = static_cast<char>(v >> 24);
  p[1] = static_cast<char>(v >> 16);
  p[2] = static_cast<char>(v >> 8);
  p[3] = static_cast<char>(v);
}

// One header as Encode writes it: name length, name, type, value.
void PutStringHeader(char*& p, std::string_view name, std::string_view value) {
  *p++ = static_cast<char>(name.size());
  p = std::copy(name.begin(), name.end(), p);
  *p++ = static_cast<char>(HeaderType::kString);
  *p++ = static_cast<char>(value.size() >> 8);
  *p++ = static_cast<char>(value.size());
  p = std::copy(value.begin(), value.end(), p);
}

void PutInt32Header(char*& p, std::string_view name, std::int32_t value) {
  *p++ = static_cast<char>(name.size());
  p = std::copy(name.begin(), name.end(), p);
  *p++ = static_cast<char>(HeaderType::kInt32);
  PutU32(p, static_cast<std::uint32_t>(value));
  p += 4;
}

}  // namespace

bool AppendApplicationFrame(std::string& out, MessageType type, std::int32_t flags,
                            std::int32_t stream, std::string_view model_type,
                            std::string_view payload_json) {
  constexpr std::size_t kPrelude = 12;
  auto string_header_size = [](std::string_view name, std::string_view value) {
    return 1 + name.size() + 1 + 2 + value.size();
  };
  auto int32_header_size = [](std::string_view name) { return 1 + name.size() + 1 + 4; };
  if (model_type.size() > kMaxHeaderValueSize) return false;
  const std::size_t headers =
      string_header_size(kContentTypeHeader, kContentTypeJson) +
      (model_type.empty() ? 0 : string_header_size(kServiceModelTypeHeader, model_type)) +
      int32_header_size(kMessageTypeHeader) + int32_header_size(kMessageFlagsHeader) +
      int32_header_size(kStreamIdHeader);
  if (payload_json.size() > kMaxMessageSize - kMinMessageSize - headers) return false;
  const std::size_t total = kMinMessageSize + headers + payload_json.size();
  const std::size_t start = out.size();
  out.resize(start + total);
  char* const frame = out.data() + start;
  PutU32(frame, static_cast<std::uint32_t>(total));
  PutU32(frame + 4, static_cast<std::uint32_t>(headers));
  PutU32(frame + 8, Crc32(std::string_view(frame, 8)));
  char* p = frame + kPrelude;
  PutStringHeader(p, kContentTypeHeader, kContentTypeJson);
  if (!model_type.empty()) PutStringHeader(p, kServiceModelTypeHeader, model_type);
  PutInt32Header(p, kMessageTypeHeader, static_cast<std::int32_t>(type));
  PutInt32Header(p, kMessageFlagsHeader, flags);
  PutInt32Header(p, kStreamIdHeader, stream);
  p = std::copy(payload_json.begin(), payload_json.end(), p);
  PutU32(p, Crc32(std::string_view(frame, total - 4)));
  return true;
}

}  // namespace lichen::ipc
