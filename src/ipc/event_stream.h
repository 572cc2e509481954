// AWS event-stream: the binary framing under Greengrass IPC.
//
// clang-format off
// Message (all integers big-endian):
//   u32 total length | u32 headers length H | u32 prelude CRC (of the first 8 bytes)
//   | headers (H bytes) | payload | u32 message CRC (of everything before it)
// Header: u8 name length (1..255) | name | u8 type | value
//   0 bool true, 1 bool false (no value bytes), 2 byte, 3 int16, 4 int32, 5 int64,
//   6 byte buffer (u16 length + bytes), 7 string (u16 length + UTF-8),
//   8 timestamp (int64 milliseconds), 9 uuid (16 bytes)
// clang-format on
//
// Contract:
// - CRC32 is zlib's (the gzip polynomial), as in aws-c-event-stream.
// - Encode() and Decoder accept exactly the same messages: the limits of ipc/limits.h,
//   non-empty header names, string/buffer values of at most kMaxHeaderValueSize bytes.
//   So every decoded message encodes again, to the same bytes.
// - Headers keep their wire order; names may repeat (lookups take the first).
// - String values are not checked for UTF-8: they are carried as bytes.
// - The decoder buffers only what it is fed and allocates a message's parts only once the
//   whole message is in and both CRCs match, so a peer cannot make it reserve memory by
//   announcing a large message. A prelude that breaks a limit fails as soon as its 12
//   bytes are in, without waiting for the body.
// - A decoder error is final: the byte stream has lost its framing, so every later
//   Next() repeats the error and further input is discarded. The owner closes the
//   connection.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/result.h"

namespace lichen::ipc {

// Wire type codes of header values.
enum class HeaderType : std::uint8_t {
  kBoolTrue = 0,
  kBoolFalse = 1,
  kByte = 2,
  kInt16 = 3,
  kInt32 = 4,
  kInt64 = 5,
  kByteBuffer = 6,
  kString = 7,
  kTimestamp = 8,
  kUuid = 9,
};

// Wrappers keep the variant's alternatives distinct from std::string and int64_t.
struct ByteBuffer {
  std::string bytes;
  bool operator==(const ByteBuffer&) const = default;
};
struct Timestamp {
  std::int64_t millis_since_epoch = 0;
  bool operator==(const Timestamp&) const = default;
};
struct Uuid {
  std::array<std::uint8_t, 16> bytes{};
  bool operator==(const Uuid&) const = default;
};

// One alternative per wire type, except bool, which covers types 0 and 1.
// Write std::string (not a string literal) for string values.
using HeaderValue = std::variant<bool, std::int8_t, std::int16_t, std::int32_t, std::int64_t,
                                 ByteBuffer, std::string, Timestamp, Uuid>;

// The wire type a value is written with.
HeaderType TypeOf(const HeaderValue& value);

struct Header {
  std::string name;
  HeaderValue value;
  bool operator==(const Header&) const = default;
};

struct Message {
  std::vector<Header> headers;
  std::string payload;

  // The first header with that name, or nullptr.
  const Header* Find(std::string_view name) const;
  // The first header with that name when it holds that type; nothing otherwise (absent or
  // of another type: an int16 is not an int32).
  std::optional<std::int32_t> GetInt32(std::string_view name) const;
  std::optional<std::string> GetString(std::string_view name) const;

  bool operator==(const Message&) const = default;
};

std::uint32_t Crc32(std::string_view bytes);

// The wire bytes of a message; an Error when it breaks a limit or has an empty name.
Result<std::string> Encode(const Message& message);

// Incremental decoder for one byte stream (one connection).
class Decoder {
 public:
  // Appends bytes read from the peer; ignored after an error.
  void Feed(std::string_view bytes);
  // The next complete message; nothing when more bytes are needed; an Error for any
  // protocol violation (see the contract above: the error is final).
  Result<std::optional<Message>> Next();
  // Bytes fed but not yet returned as messages.
  std::size_t buffered() const { return buffer_.size() - start_; }

 private:
  Error Fail(std::string message);
  void Consume(std::size_t n);

  std::string buffer_;
  std::size_t start_ = 0;  // first byte of buffer_ not yet consumed
  std::optional<Error> error_;
};

}  // namespace lichen::ipc
