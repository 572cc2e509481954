// A small blocking Greengrass IPC client over a Unix socket: what the `lichen` CLI uses
// to talk to the nucleus (the same wire protocol the official SDK clients speak).
//
// Contract:
// - One connection, one thread: calls are sequential (a call waits for its reply before
//   the next stream is opened). Not thread-safe.
// - Every wait (connecting, writing, reading) is bounded by the timeout of the call that
//   waits; a call that times out returns an Error and leaves the connection usable (a
//   late reply on the abandoned stream is ignored).
// - Connect() sends CONNECT (`:version` 0.1.0, {"authToken": token}) and waits for the
//   CONNECT_ACK; an ack without the accepted flag is an Error saying the token was
//   refused.
// - Call() opens the next stream with the `operation` header and a JSON payload, and
//   returns the reply's JSON. A modeled error (application error) becomes an Error whose
//   `code` is the error shape ("ResourceNotFoundError"; empty for errors outside the
//   model, such as an unknown operation) and whose message is the body's "message".
// - Once the server closes the connection or breaks the framing, every call fails and
//   connected() is false.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"
#include "ipc/event_stream.h"
#include "recipe/source_tree.h"

namespace lichen::ipc {

using Json = recipe::Json;

class IpcClient {
 public:
  using Timeout = std::chrono::milliseconds;

  IpcClient() = default;
  ~IpcClient();
  IpcClient(IpcClient&& other) noexcept;
  IpcClient& operator=(IpcClient&& other) noexcept;
  IpcClient(const IpcClient&) = delete;
  IpcClient& operator=(const IpcClient&) = delete;

  // Connects to the socket and authenticates. A missing socket or one nobody listens on
  // is reported as "is the nucleus running? ..." with the path.
  Result<void> Connect(const std::string& socket_path, const std::string& auth_token,
                       Timeout timeout);

  // One request/response operation, e.g. "aws.greengrass#ListComponents". The request
  // must be a JSON object; the reply is one too ({} for an empty payload).
  Result<Json> Call(std::string_view operation, const Json& request, Timeout timeout);

  bool connected() const { return fd_ >= 0; }
  void Close();

 private:
  using Clock = std::chrono::steady_clock;

  Result<void> Send(const Message& message, Clock::time_point deadline);
  // The next whole message, answering pings on the way.
  Result<Message> Receive(Clock::time_point deadline);
  // Closes the socket and returns `message` as the Error.
  Error Fail(std::string message);

  int fd_ = -1;
  std::int32_t last_stream_ = 0;
  std::string socket_path_;
  Decoder decoder_;
};

}  // namespace lichen::ipc
