// Fuzzes the event-stream Decoder. Input: 8 bytes of chunk sizes, then the byte stream.
// Invariants: feeding the stream in chunks (sizes cycling through the table) gives the same
// messages and the same first error as feeding it at once; every decoded message encodes
// back to exactly the bytes it came from and decodes again to an equal message; an error
// is final.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "ipc/event_stream.h"

namespace {

using lichen::Result;
using lichen::ipc::Decoder;
using lichen::ipc::Encode;
using lichen::ipc::Message;

constexpr std::size_t kChunkTableSize = 8;

void Check(bool condition, const char* what) {
  if (condition) return;
  std::fprintf(stderr, "invariant failed: %s\n", what);
  std::abort();
}

struct Outcome {
  std::vector<Message> messages;
  std::vector<std::string> frames;  // the bytes each message was decoded from (whole feed only)
  std::optional<std::string> error;
};

// Drains every message the decoder has; records the error, if any, and checks it stays.
void Drain(Decoder& decoder, Outcome& outcome, std::string_view fed) {
  while (!outcome.error) {
    const std::size_t before = decoder.buffered();
    Result<std::optional<Message>> next = decoder.Next();
    if (!next.ok()) {
      outcome.error = next.error().message;
      Check(decoder.buffered() == 0, "an error drops the buffered bytes");
      Result<std::optional<Message>> again = decoder.Next();
      Check(!again.ok() && again.error().message == *outcome.error, "errors are final");
      return;
    }
    if (!next->has_value()) return;
    const std::size_t used = before - decoder.buffered();
    Check(used >= 16, "a message is at least 16 bytes");
    if (!fed.empty()) {
      outcome.frames.emplace_back(fed.substr(fed.size() - before, used));
    }
    outcome.messages.push_back(std::move(**next));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < kChunkTableSize) return 0;
  const std::string_view chunks(reinterpret_cast<const char*>(data), kChunkTableSize);
  const std::string_view stream(reinterpret_cast<const char*>(data) + kChunkTableSize,
                                size - kChunkTableSize);

  Outcome whole;
  Decoder at_once;
  at_once.Feed(stream);
  Drain(at_once, whole, stream);

  Outcome chunked;
  Decoder in_pieces;
  std::size_t offset = 0;
  for (std::size_t i = 0; offset < stream.size(); ++i) {
    const std::size_t n = static_cast<std::uint8_t>(chunks[i % kChunkTableSize]) + 1;
    const std::string_view piece = stream.substr(offset, n);
    offset += piece.size();
    in_pieces.Feed(piece);
    Drain(in_pieces, chunked, {});
  }

  Check(whole.messages == chunked.messages, "chunking does not change the messages");
  Check(whole.error == chunked.error, "chunking does not change the error");

  for (std::size_t i = 0; i < whole.messages.size(); ++i) {
    const Message& message = whole.messages[i];
    Result<std::string> encoded = Encode(message);
    Check(encoded.ok(), "a decoded message encodes");
    Check(*encoded == whole.frames[i], "encoding gives back the decoded bytes");
    Decoder again;
    again.Feed(*encoded);
    Result<std::optional<Message>> decoded = again.Next();
    Check(decoded.ok() && decoded->has_value(), "a re-encoded message decodes");
    Check(**decoded == message, "a re-encoded message decodes to an equal message");
    Check(again.buffered() == 0, "a re-encoded message is consumed whole");
  }
  return 0;
}
