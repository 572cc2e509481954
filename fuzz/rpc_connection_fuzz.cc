// Fuzzes RpcConnection with frames decoded from the input and with service replies.
//
// Input: one byte for the open-stream limit (1..8, so the limit is reached), then records.
// Each record starts with an op byte:
//   op % 8 == 0, 1: raw frame: u16 headers length, u16 payload length, then those bytes,
//                   wrapped in a prelude and CRCs here (bit 3 of op corrupts the CRC) so
//                   mutations reach the RPC layer instead of dying on checksums;
//   op % 8 == 2, 3: built frame: type, flags, stream selector, optional operation and
//                   :version headers, payload length + bytes;
//   op % 8 == 4: Accept() (bit 3 set: Reject());
//   op % 8 == 5: Respond() (bit 3: terminate); 6: SendEvent(); 7: SendError();
//                each followed by a stream selector byte.
// Every frame goes through a Decoder; decode errors go to OnDecodeError.
//
// Invariants, checked from the actions alone: nothing follows CloseConnection; a protocol
// error (type 6) is followed by CloseConnection; every frame sent encodes; nothing is sent
// on a stream after either side terminated it, nor on a stream never opened; a stream
// gets one response and events only after it; streams open as 1, 2, 3...; the open-stream
// count matches the model and never exceeds the limit.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/result.h"
#include "ipc/event_stream.h"
#include "ipc/rpc_connection.h"

namespace {

using lichen::Result;
using lichen::ipc::Action;
using lichen::ipc::Authenticate;
using lichen::ipc::CloseConnection;
using lichen::ipc::Crc32;
using lichen::ipc::Decoder;
using lichen::ipc::Encode;
using lichen::ipc::kFlagTerminateStream;
using lichen::ipc::kMessageFlagsHeader;
using lichen::ipc::kMessageTypeHeader;
using lichen::ipc::kOperationHeader;
using lichen::ipc::kStreamIdHeader;
using lichen::ipc::kVersionHeader;
using lichen::ipc::Message;
using lichen::ipc::MessageType;
using lichen::ipc::OpenStream;
using lichen::ipc::Outgoing;
using lichen::ipc::RpcConnection;
using lichen::ipc::StreamClosed;
using lichen::ipc::StreamMessage;

void Check(bool condition, const char* what) {
  if (condition) return;
  std::fprintf(stderr, "invariant failed: %s\n", what);
  std::abort();
}

class Input {
 public:
  explicit Input(std::string_view data) : data_(data) {}
  bool empty() const { return pos_ >= data_.size(); }
  std::uint8_t U8() { return empty() ? 0 : static_cast<std::uint8_t>(data_[pos_++]); }
  std::uint16_t U16() {
    const std::uint16_t high = U8();
    return static_cast<std::uint16_t>((high << 8) | U8());
  }
  std::string_view Bytes(std::size_t n) {
    const std::string_view out = data_.substr(pos_ < data_.size() ? pos_ : data_.size(), n);
    pos_ += out.size();
    return out;
  }

 private:
  std::string_view data_;
  std::size_t pos_ = 0;
};

void PutU32(std::string& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
}

// A wire frame around an arbitrary headers block and payload, with correct CRCs unless
// corrupt is set.
std::string WrapFrame(std::string_view headers, std::string_view payload, bool corrupt) {
  std::string out;
  PutU32(out, static_cast<std::uint32_t>(16 + headers.size() + payload.size()));
  PutU32(out, static_cast<std::uint32_t>(headers.size()));
  PutU32(out, Crc32(out));
  out += headers;
  out += payload;
  PutU32(out, Crc32(out) ^ (corrupt ? 1u : 0u));
  return out;
}

struct Model {
  std::size_t limit = 0;
  bool closed = false;
  bool authenticate_seen = false;
  std::int32_t highest = 0;
  std::set<std::int32_t> open;        // opened, not yet terminated by either side
  std::set<std::int32_t> responded;   // got their response
  std::set<std::int32_t> terminated;  // terminated by either side
};

// Picks a stream id: mostly ones near the streams seen so far, sometimes extremes.
std::int32_t PickStream(std::uint8_t selector, const Model& model) {
  switch (selector) {
    case 0xff:
      return -1;
    case 0xfe:
      return INT32_MAX;
    case 0xfd:
      return INT32_MIN;
    default:
      return static_cast<std::int32_t>(selector % (static_cast<std::uint32_t>(model.highest) + 3));
  }
}

void Apply(const std::vector<Action>& actions, Model& model, RpcConnection& connection) {
  for (std::size_t i = 0; i < actions.size(); ++i) {
    Check(!model.closed, "nothing follows CloseConnection");
    const Action& action = actions[i];
    if (const auto* out = std::get_if<Outgoing>(&action)) {
      Result<std::string> bytes = Encode(out->message);
      Check(bytes.ok(), "every frame sent encodes");
      const std::optional<std::int32_t> type = out->message.GetInt32(kMessageTypeHeader);
      const std::optional<std::int32_t> flags = out->message.GetInt32(kMessageFlagsHeader);
      const std::optional<std::int32_t> stream = out->message.GetInt32(kStreamIdHeader);
      Check(type && flags && stream, "frames sent carry the RPC headers");
      if (*type == static_cast<std::int32_t>(MessageType::kProtocolError)) {
        Check(i + 1 < actions.size() && std::holds_alternative<CloseConnection>(actions[i + 1]),
              "a protocol error is followed by CloseConnection");
      }
      if (*stream != 0) {
        Check(model.open.contains(*stream), "frames go only to open streams");
        Check(!model.terminated.contains(*stream), "nothing after a stream is terminated");
        if ((*flags & kFlagTerminateStream) != 0) {
          model.open.erase(*stream);
          model.terminated.insert(*stream);
        }
      }
    } else if (std::holds_alternative<Authenticate>(action)) {
      Check(!model.authenticate_seen, "one Authenticate per connection");
      model.authenticate_seen = true;
    } else if (const auto* opened = std::get_if<OpenStream>(&action)) {
      Check(opened->stream_id == model.highest + 1, "streams open in sequence");
      Check(!opened->operation.empty(), "a stream opens with an operation");
      model.highest = opened->stream_id;
      model.open.insert(opened->stream_id);
    } else if (const auto* message = std::get_if<StreamMessage>(&action)) {
      Check(model.open.contains(message->stream_id), "stream messages are for open streams");
    } else if (const auto* closed = std::get_if<StreamClosed>(&action)) {
      Check(model.open.contains(closed->stream_id), "only open streams close");
      model.open.erase(closed->stream_id);
      model.terminated.insert(closed->stream_id);
    } else if (std::holds_alternative<CloseConnection>(action)) {
      Check(i + 1 == actions.size(), "CloseConnection comes last");
      model.closed = true;
      model.open.clear();
    }
  }
  Check(connection.IsClosed() == model.closed, "IsClosed matches CloseConnection");
  Check(connection.OpenStreamCount() == model.open.size(), "open stream count matches");
  Check(connection.OpenStreamCount() <= model.limit, "open streams stay within the limit");
  for (std::int32_t id : model.open) Check(connection.IsStreamOpen(id), "IsStreamOpen matches");
}

// A frame built from typed fields, encoded for real.
std::optional<std::string> BuildFrame(Input& in, const Model& model) {
  const std::uint8_t type = in.U8();
  const std::uint8_t flags = in.U8();
  const std::uint8_t selector = in.U8();
  const std::uint8_t extras = in.U8();
  const std::string_view payload = in.Bytes(in.U8());
  Message message;
  if ((extras & 0x10) == 0) {
    message.headers.push_back({std::string(kMessageTypeHeader), std::int32_t{type % 9}});
  }
  if ((extras & 0x20) == 0) {
    message.headers.push_back({std::string(kMessageFlagsHeader), std::int32_t{flags & 3}});
  }
  if ((extras & 0x40) == 0) {
    message.headers.push_back({std::string(kStreamIdHeader), PickStream(selector, model)});
  }
  if ((extras & 0x01) != 0) {
    message.headers.push_back({std::string(kOperationHeader),
                               std::string((extras & 0x02) != 0 ? "" : "aws.greengrass#Op")});
  }
  if ((extras & 0x04) != 0) {
    message.headers.push_back(
        {std::string(kVersionHeader), std::string((extras & 0x08) != 0 ? "0.2.0" : "0.1.0")});
  }
  if ((extras & 0x80) != 0) message.headers.push_back({"x-echo", std::int64_t{extras}});
  message.payload = std::string(payload);
  Result<std::string> bytes = Encode(message);
  if (!bytes.ok()) return std::nullopt;
  return std::move(*bytes);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Input in(std::string_view(reinterpret_cast<const char*>(data), size));
  Model model;
  model.limit = in.U8() % 8 + 1;
  RpcConnection connection(model.limit);
  Decoder decoder;

  while (!in.empty()) {
    const std::uint8_t op = in.U8();
    const bool bit = (op & 0x08) != 0;
    std::optional<std::string> wire;
    switch (op % 8) {
      case 0:
      case 1: {
        const std::uint16_t headers_size = in.U16();
        const std::uint16_t payload_size = in.U16();
        const std::string_view headers = in.Bytes(headers_size);
        const std::string_view payload = in.Bytes(payload_size);
        wire = WrapFrame(headers, payload, bit);
        break;
      }
      case 2:
      case 3:
        wire = BuildFrame(in, model);
        break;
      case 4:
        Apply(bit ? connection.Reject() : connection.Accept(), model, connection);
        break;
      case 5: {
        const std::int32_t stream = PickStream(in.U8(), model);
        const bool was_responded = model.responded.contains(stream);
        const std::vector<Action> actions =
            connection.Respond(stream, "aws.greengrass#OpResponse", "{}", bit);
        Check(actions.empty() || !was_responded, "one response per stream");
        if (!actions.empty()) model.responded.insert(stream);
        Apply(actions, model, connection);
        break;
      }
      case 6: {
        const std::int32_t stream = PickStream(in.U8(), model);
        const std::vector<Action> actions =
            connection.SendEvent(stream, "aws.greengrass#Event", R"({"n":1})");
        Check(actions.empty() || model.responded.contains(stream), "events follow the response");
        Apply(actions, model, connection);
        break;
      }
      case 7: {
        const std::int32_t stream = PickStream(in.U8(), model);
        Apply(connection.SendError(stream, bit ? "" : "ServiceError", R"({"message":"m"})"), model,
              connection);
        break;
      }
    }
    if (!wire) continue;
    decoder.Feed(*wire);
    while (true) {
      Result<std::optional<Message>> next = decoder.Next();
      if (!next.ok()) {
        Apply(connection.OnDecodeError(next.error()), model, connection);
        break;
      }
      if (!next->has_value()) break;
      Apply(connection.OnMessage(**next), model, connection);
    }
  }
  return 0;
}
