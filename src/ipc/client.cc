#include "ipc/client.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>
#include <utility>

#include "ipc/rpc_connection.h"

namespace lichen::ipc {
namespace {

using Clock = std::chrono::steady_clock;

int MillisLeft(Clock::time_point deadline) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  if (left <= 0) return 0;
  return left > INT32_MAX ? INT32_MAX : static_cast<int>(left);
}

std::string Millis(IpcClient::Timeout t) { return std::to_string(t.count()) + " ms"; }

Message Frame(MessageType type, std::int32_t flags, std::int32_t stream) {
  Message m;
  m.headers = {{std::string(kMessageTypeHeader), static_cast<std::int32_t>(type)},
               {std::string(kMessageFlagsHeader), flags},
               {std::string(kStreamIdHeader), stream}};
  return m;
}

// The "message" of a JSON error body, or the body itself when it has none.
std::string ErrorText(const std::string& payload) {
  Json body = Json::parse(payload, nullptr, /*allow_exceptions=*/false);
  if (body.is_object()) {
    auto it = body.find("message");
    if (it != body.end() && it->is_string()) return it->get<std::string>();
  }
  return payload.empty() ? std::string("(no message)") : payload;
}

}  // namespace

IpcClient::~IpcClient() { Close(); }

IpcClient::IpcClient(IpcClient&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      last_stream_(other.last_stream_),
      socket_path_(std::move(other.socket_path_)),
      decoder_(std::move(other.decoder_)) {}

IpcClient& IpcClient::operator=(IpcClient&& other) noexcept {
  if (this != &other) {
    Close();
    fd_ = std::exchange(other.fd_, -1);
    last_stream_ = other.last_stream_;
    socket_path_ = std::move(other.socket_path_);
    decoder_ = std::move(other.decoder_);
  }
  return *this;
}

void IpcClient::Close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

Error IpcClient::Fail(std::string message) {
  Close();
  return MakeError(std::move(message));
}

Result<void> IpcClient::Connect(const std::string& socket_path, const std::string& auth_token,
                                Timeout timeout) {
  Close();
  decoder_ = Decoder();
  last_stream_ = 0;
  socket_path_ = socket_path;
  const auto deadline = Clock::now() + timeout;

  sockaddr_un addr{};
  if (socket_path.empty() || socket_path.size() >= sizeof(addr.sun_path)) {
    return MakeError("IPC socket path '" + socket_path + "' is empty or longer than the " +
                     std::to_string(sizeof(addr.sun_path) - 1) + " bytes a Unix socket allows");
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, socket_path.data(), socket_path.size());

  // Non-blocking from the start, so no step can wait past the deadline.
  fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd_ < 0) return MakeError(std::string("cannot create a socket: ") + std::strerror(errno));
  int err = 0;
  while (true) {
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0) {
      err = 0;
      break;
    }
    err = errno;
    if (err == EAGAIN) {
      // The listen backlog is full: the server is busy, not gone. Retry until the deadline.
      if (MillisLeft(deadline) == 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    if (err == EINPROGRESS || err == EINTR) {
      // The connection completes in the background: wait for it, then take its outcome.
      pollfd p{fd_, POLLOUT, 0};
      if (::poll(&p, 1, MillisLeft(deadline)) <= 0) {
        err = EAGAIN;
        break;
      }
      int so_error = 0;
      socklen_t len = sizeof(so_error);
      ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &so_error, &len);
      err = so_error;
    }
    break;
  }
  if (err != 0) {
    if (err == EAGAIN) {
      return Fail("the nucleus did not accept a connection on " + socket_path + " within " +
                  Millis(timeout));
    }
    if (err == ENOENT) return Fail("is the nucleus running? no socket at " + socket_path);
    if (err == ECONNREFUSED) {
      return Fail("is the nucleus running? nothing is listening on " + socket_path);
    }
    if (err == EACCES || err == EPERM) {
      return Fail("cannot connect to " + socket_path + ": permission denied");
    }
    return Fail("cannot connect to " + socket_path + ": " + std::strerror(err));
  }

  Message connect = Frame(MessageType::kConnect, 0, 0);
  connect.headers.push_back({std::string(kVersionHeader), std::string(kProtocolVersion)});
  connect.payload = Json{{"authToken", auth_token}}.dump();
  if (auto sent = Send(connect, deadline); !sent) return sent.error();

  while (true) {
    auto reply = Receive(deadline);
    if (!reply) {
      return Fail("no answer to the IPC handshake on " + socket_path + ": " +
                  reply.error().message);
    }
    const auto type = reply->GetInt32(kMessageTypeHeader);
    if (type == static_cast<std::int32_t>(MessageType::kConnectAck)) {
      if ((reply->GetInt32(kMessageFlagsHeader).value_or(0) & kFlagConnectionAccepted) != 0) {
        return {};
      }
      return Fail("the nucleus at " + socket_path +
                  " refused the auth token (access denied): the token is from another run "
                  "or another nucleus");
    }
    if (type == static_cast<std::int32_t>(MessageType::kProtocolError) ||
        type == static_cast<std::int32_t>(MessageType::kInternalError)) {
      return Fail("the nucleus refused the connection: " + ErrorText(reply->payload));
    }
    // Anything else before the ack is not ours to answer; keep waiting for the ack.
  }
}

Result<Json> IpcClient::Call(std::string_view operation, const Json& request, Timeout timeout) {
  if (!connected()) return MakeError("not connected to the nucleus");
  if (last_stream_ == INT32_MAX) return MakeError("no stream ids left on this connection");
  const auto deadline = Clock::now() + timeout;
  const std::int32_t stream = ++last_stream_;

  Message m = Frame(MessageType::kApplicationMessage, 0, stream);
  m.headers.push_back({std::string(kOperationHeader), std::string(operation)});
  m.headers.push_back({std::string(kContentTypeHeader), std::string(kContentTypeJson)});
  m.payload = request.dump(-1, ' ', false, Json::error_handler_t::replace);
  if (auto sent = Send(m, deadline); !sent) return sent.error();

  while (true) {
    auto reply = Receive(deadline);
    if (!reply) {
      if (connected() && MillisLeft(deadline) == 0) {
        return MakeError("no reply to " + std::string(operation) + " within " + Millis(timeout));
      }
      return reply.error();
    }
    const auto id = reply->GetInt32(kStreamIdHeader).value_or(-1);
    const auto type = reply->GetInt32(kMessageTypeHeader).value_or(-1);
    const auto flags = reply->GetInt32(kMessageFlagsHeader).value_or(0);
    if (id == 0 && (type == static_cast<std::int32_t>(MessageType::kProtocolError) ||
                    type == static_cast<std::int32_t>(MessageType::kInternalError))) {
      return Fail("the nucleus closed the connection: " + ErrorText(reply->payload));
    }
    if (id != stream) continue;  // a late reply to an abandoned call, or a ping response

    if (type == static_cast<std::int32_t>(MessageType::kApplicationError)) {
      Error error = MakeError(ErrorText(reply->payload));
      if (auto shape = reply->GetString(kServiceModelTypeHeader)) {
        error.code = shape->starts_with(kShapePrefix) ? shape->substr(kShapePrefix.size()) : *shape;
      }
      return error;
    }
    if (type != static_cast<std::int32_t>(MessageType::kApplicationMessage)) {
      return Fail("unexpected message type " + std::to_string(type) + " in reply to " +
                  std::string(operation));
    }
    if ((flags & kFlagTerminateStream) == 0) {
      // A streaming operation answered: this client takes only the response, so it closes
      // the stream rather than leave the server sending events nobody reads.
      Message close = Frame(MessageType::kApplicationMessage, kFlagTerminateStream, stream);
      if (auto sent = Send(close, deadline); !sent) return sent.error();
    }
    if (reply->payload.empty()) return Json::object();
    Json body = Json::parse(reply->payload, nullptr, /*allow_exceptions=*/false);
    if (body.is_discarded()) {
      return MakeError("the reply to " + std::string(operation) + " is not JSON");
    }
    return body;
  }
}

Result<void> IpcClient::Send(const Message& message, Clock::time_point deadline) {
  if (!connected()) return MakeError("not connected to the nucleus");
  auto bytes = Encode(message);
  if (!bytes) return bytes.error();
  std::string_view left = *bytes;
  while (!left.empty()) {
    // MSG_NOSIGNAL: a server that went away is an Error here, not a SIGPIPE.
    const ssize_t n = ::send(fd_, left.data(), left.size(), MSG_NOSIGNAL);
    if (n > 0) {
      left.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{fd_, POLLOUT, 0};
      const int ready = ::poll(&p, 1, MillisLeft(deadline));
      // A frame cut short would break the framing for good, so a stalled write ends the
      // connection.
      if (ready == 0) return Fail("timed out writing to the nucleus at " + socket_path_);
      if (ready < 0 && errno != EINTR) {
        return Fail(std::string("cannot wait on the socket: ") + std::strerror(errno));
      }
      continue;
    }
    if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) {
      return Fail("the nucleus closed the connection (is it still running?)");
    }
    return Fail(std::string("cannot write to the nucleus: ") + std::strerror(errno));
  }
  return {};
}

Result<Message> IpcClient::Receive(Clock::time_point deadline) {
  while (true) {
    if (!connected()) return MakeError("not connected to the nucleus");
    auto next = decoder_.Next();
    if (!next) return Fail("the nucleus sent a malformed message: " + next.error().message);
    if (next->has_value()) {
      Message m = std::move(**next);
      if (m.GetInt32(kStreamIdHeader) == 0 &&
          m.GetInt32(kMessageTypeHeader) == static_cast<std::int32_t>(MessageType::kPing)) {
        // Echo the payload and the headers not starting with ':', as a ping response does.
        Message pong = Frame(MessageType::kPingResponse, 0, 0);
        for (const auto& h : m.headers) {
          if (!h.name.starts_with(':')) pong.headers.push_back(h);
        }
        pong.payload = m.payload;
        if (auto sent = Send(pong, deadline); !sent) return sent.error();
        continue;
      }
      return m;
    }
    pollfd p{fd_, POLLIN, 0};
    const int ready = ::poll(&p, 1, MillisLeft(deadline));
    if (ready == 0) return MakeError("timed out waiting for the nucleus");
    if (ready < 0) {
      if (errno == EINTR) continue;
      return Fail(std::string("cannot wait on the socket: ") + std::strerror(errno));
    }
    char buf[16 * 1024];
    const ssize_t n = ::read(fd_, buf, sizeof(buf));
    if (n == 0) return Fail("the nucleus closed the connection (is it still running?)");
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
      if (errno == ECONNRESET) {
        return Fail("the nucleus closed the connection (is it still running?)");
      }
      return Fail(std::string("cannot read from the nucleus: ") + std::strerror(errno));
    }
    decoder_.Feed(std::string_view(buf, static_cast<size_t>(n)));
  }
}

}  // namespace lichen::ipc
