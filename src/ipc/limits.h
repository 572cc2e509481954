// Size limits of the Greengrass IPC wire protocol (AWS event-stream framing, RPC layer).
//
// The framing limits are those of the reference implementation (aws-c-event-stream), so
// anything the official clients send is accepted and anything they would refuse is refused.
#pragma once

#include <cstddef>

namespace lichen::ipc {

// Whole message, prelude and trailing CRC included.
inline constexpr std::size_t kMaxMessageSize = 16 * 1024 * 1024;
// Prelude (12 bytes) + message CRC (4 bytes): a message with no headers and no payload.
inline constexpr std::size_t kMinMessageSize = 16;
// The headers block of one message.
inline constexpr std::size_t kMaxHeadersSize = 128 * 1024;
// A string or byte-buffer header value (INT16_MAX: the length field is read as signed
// by some implementations).
inline constexpr std::size_t kMaxHeaderValueSize = 32767;
// Header names are length-prefixed by one byte and must not be empty.
inline constexpr std::size_t kMinHeaderNameSize = 1;
inline constexpr std::size_t kMaxHeaderNameSize = 255;

// The CONNECT payload is {"authToken":"<16 characters>"}: parsing JSON before the client
// is authenticated is bounded to this many bytes.
inline constexpr std::size_t kMaxConnectPayloadSize = 16 * 1024;

// Streams one client connection may hold open at once. Every open stream costs server
// memory (and usually a subscription), so a client must not grow the count without bound.
inline constexpr std::size_t kMaxOpenStreams = 1024;

}  // namespace lichen::ipc
