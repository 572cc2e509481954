#include "ipc/event_stream.h"

#include <zlib.h>

#include <type_traits>
#include <utility>

#include "ipc/limits.h"

namespace lichen::ipc {
namespace {

constexpr std::size_t kPreludeSize = 12;
constexpr std::size_t kCrcSize = 4;

void PutU8(std::string& out, std::uint8_t v) { out.push_back(static_cast<char>(v)); }

void PutBigEndian(std::string& out, std::uint64_t v, int bytes) {
  for (int shift = (bytes - 1) * 8; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((v >> shift) & 0xff));
  }
}

std::uint64_t GetBigEndian(const char* p, int bytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<std::uint8_t>(p[i]);
  return v;
}

std::uint32_t GetU32(const char* p) { return static_cast<std::uint32_t>(GetBigEndian(p, 4)); }

std::uint32_t Crc32Of(const char* p, std::size_t n) {
  // zlib takes uInt lengths; messages are at most 16 MiB, so one call always suffices.
  return static_cast<std::uint32_t>(
      crc32(0L, reinterpret_cast<const Bytef*>(p), static_cast<uInt>(n)));
}

template <typename... F>
struct Overloaded : F... {
  using F::operator()...;
};
template <typename... F>
Overloaded(F...) -> Overloaded<F...>;

// Appends one header; an Error names what breaks a limit.
Result<void> EncodeHeader(std::string& out, const Header& header) {
  if (header.name.size() < kMinHeaderNameSize || header.name.size() > kMaxHeaderNameSize) {
    return MakeError("event-stream: header name must be 1 to 255 bytes, got " +
                     std::to_string(header.name.size()));
  }
  PutU8(out, static_cast<std::uint8_t>(header.name.size()));
  out += header.name;
  PutU8(out, static_cast<std::uint8_t>(TypeOf(header.value)));
  auto put_variable = [&](const std::string& bytes) -> Result<void> {
    if (bytes.size() > kMaxHeaderValueSize) {
      return MakeError("event-stream: value of header '" + header.name + "' is " +
                       std::to_string(bytes.size()) + " bytes, the limit is " +
                       std::to_string(kMaxHeaderValueSize));
    }
    PutBigEndian(out, bytes.size(), 2);
    out += bytes;
    return {};
  };
  return std::visit(Overloaded{
                        [](bool) -> Result<void> { return {}; },  // the type code is the value
                        [&](std::int8_t v) -> Result<void> {
                          PutU8(out, static_cast<std::uint8_t>(v));
                          return {};
                        },
                        [&](std::int16_t v) -> Result<void> {
                          PutBigEndian(out, static_cast<std::uint16_t>(v), 2);
                          return {};
                        },
                        [&](std::int32_t v) -> Result<void> {
                          PutBigEndian(out, static_cast<std::uint32_t>(v), 4);
                          return {};
                        },
                        [&](std::int64_t v) -> Result<void> {
                          PutBigEndian(out, static_cast<std::uint64_t>(v), 8);
                          return {};
                        },
                        [&](const ByteBuffer& v) { return put_variable(v.bytes); },
                        [&](const std::string& v) { return put_variable(v); },
                        [&](const Timestamp& v) -> Result<void> {
                          PutBigEndian(out, static_cast<std::uint64_t>(v.millis_since_epoch), 8);
                          return {};
                        },
                        [&](const Uuid& v) -> Result<void> {
                          out.append(reinterpret_cast<const char*>(v.bytes.data()), v.bytes.size());
                          return {};
                        },
                    },
                    header.value);
}

// Parses a whole headers block (already inside a CRC-checked message).
Result<std::vector<Header>> DecodeHeaders(const char* p, std::size_t n) {
  std::vector<Header> headers;
  headers.reserve(8);  // RPC frames have 3 to 6: one allocation instead of three or four
  std::size_t i = 0;
  auto truncated = [](std::string_view what) {
    return MakeError("event-stream: header " + std::string(what) +
                     " runs past the end of the headers block");
  };
  while (i < n) {
    const std::size_t name_size = static_cast<std::uint8_t>(p[i++]);
    if (name_size == 0) return MakeError("event-stream: header with an empty name");
    if (name_size > n - i) return truncated("name");
    std::string name(p + i, name_size);
    i += name_size;
    if (i == n) return truncated("type");
    const std::uint8_t type = static_cast<std::uint8_t>(p[i++]);
    auto fixed = [&](std::size_t size) -> const char* {
      if (size > n - i) return nullptr;
      const char* value = p + i;
      i += size;
      return value;
    };
    auto variable = [&]() -> std::optional<std::string_view> {
      const char* length = fixed(2);
      if (length == nullptr) return std::nullopt;
      const auto size = static_cast<std::size_t>(GetBigEndian(length, 2));
      const char* bytes = fixed(size);
      if (bytes == nullptr) return std::nullopt;
      return std::string_view(bytes, size);
    };
    HeaderValue value;
    switch (static_cast<HeaderType>(type)) {
      case HeaderType::kBoolTrue:
        value = true;
        break;
      case HeaderType::kBoolFalse:
        value = false;
        break;
      case HeaderType::kByte: {
        const char* v = fixed(1);
        if (v == nullptr) return truncated("value");
        value = static_cast<std::int8_t>(static_cast<std::uint8_t>(*v));
        break;
      }
      case HeaderType::kInt16: {
        const char* v = fixed(2);
        if (v == nullptr) return truncated("value");
        value = static_cast<std::int16_t>(static_cast<std::uint16_t>(GetBigEndian(v, 2)));
        break;
      }
      case HeaderType::kInt32: {
        const char* v = fixed(4);
        if (v == nullptr) return truncated("value");
        value = static_cast<std::int32_t>(GetU32(v));
        break;
      }
      case HeaderType::kInt64:
      case HeaderType::kTimestamp: {
        const char* v = fixed(8);
        if (v == nullptr) return truncated("value");
        const auto number = static_cast<std::int64_t>(GetBigEndian(v, 8));
        if (type == static_cast<std::uint8_t>(HeaderType::kInt64)) {
          value = number;
        } else {
          value = Timestamp{number};
        }
        break;
      }
      case HeaderType::kByteBuffer:
      case HeaderType::kString: {
        const std::optional<std::string_view> bytes = variable();
        if (!bytes) return truncated("value");
        if (bytes->size() > kMaxHeaderValueSize) {
          return MakeError("event-stream: header value of " + std::to_string(bytes->size()) +
                           " bytes, the limit is " + std::to_string(kMaxHeaderValueSize));
        }
        if (type == static_cast<std::uint8_t>(HeaderType::kString)) {
          value = std::string(*bytes);
        } else {
          value = ByteBuffer{std::string(*bytes)};
        }
        break;
      }
      case HeaderType::kUuid: {
        const char* v = fixed(16);
        if (v == nullptr) return truncated("value");
        Uuid uuid;
        for (std::size_t k = 0; k < uuid.bytes.size(); ++k) {
          uuid.bytes[k] = static_cast<std::uint8_t>(v[k]);
        }
        value = uuid;
        break;
      }
      default:
        return MakeError("event-stream: unknown header value type " + std::to_string(type));
    }
    headers.push_back(Header{std::move(name), std::move(value)});
  }
  return headers;
}

}  // namespace

HeaderType TypeOf(const HeaderValue& value) {
  return std::visit(
      [](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, bool>) {
          return v ? HeaderType::kBoolTrue : HeaderType::kBoolFalse;
        } else if constexpr (std::is_same_v<T, std::int8_t>) {
          return HeaderType::kByte;
        } else if constexpr (std::is_same_v<T, std::int16_t>) {
          return HeaderType::kInt16;
        } else if constexpr (std::is_same_v<T, std::int32_t>) {
          return HeaderType::kInt32;
        } else if constexpr (std::is_same_v<T, std::int64_t>) {
          return HeaderType::kInt64;
        } else if constexpr (std::is_same_v<T, ByteBuffer>) {
          return HeaderType::kByteBuffer;
        } else if constexpr (std::is_same_v<T, std::string>) {
          return HeaderType::kString;
        } else if constexpr (std::is_same_v<T, Timestamp>) {
          return HeaderType::kTimestamp;
        } else {
          static_assert(std::is_same_v<T, Uuid>);
          return HeaderType::kUuid;
        }
      },
      value);
}

const Header* Message::Find(std::string_view name) const {
  for (const Header& header : headers) {
    if (header.name == name) return &header;
  }
  return nullptr;
}

std::optional<std::int32_t> Message::GetInt32(std::string_view name) const {
  const Header* header = Find(name);
  if (header == nullptr) return std::nullopt;
  if (const auto* v = std::get_if<std::int32_t>(&header->value)) return *v;
  return std::nullopt;
}

std::optional<std::string> Message::GetString(std::string_view name) const {
  const Header* header = Find(name);
  if (header == nullptr) return std::nullopt;
  if (const auto* v = std::get_if<std::string>(&header->value)) return *v;
  return std::nullopt;
}

std::uint32_t Crc32(std::string_view bytes) { return Crc32Of(bytes.data(), bytes.size()); }

Result<std::string> Encode(const Message& message) {
  std::string headers;
  for (const Header& header : message.headers) {
    if (Result<void> r = EncodeHeader(headers, header); !r) return r.error();
    if (headers.size() > kMaxHeadersSize) {
      return MakeError("event-stream: headers block exceeds " + std::to_string(kMaxHeadersSize) +
                       " bytes");
    }
  }
  // Checked before adding so the sum cannot overflow.
  if (message.payload.size() > kMaxMessageSize - kMinMessageSize - headers.size()) {
    return MakeError("event-stream: message exceeds " + std::to_string(kMaxMessageSize) +
                     " bytes (payload " + std::to_string(message.payload.size()) + ")");
  }
  const std::size_t total = kMinMessageSize + headers.size() + message.payload.size();
  std::string out;
  out.reserve(total);
  PutBigEndian(out, total, 4);
  PutBigEndian(out, headers.size(), 4);
  PutBigEndian(out, Crc32Of(out.data(), 8), 4);
  out += headers;
  out += message.payload;
  PutBigEndian(out, Crc32Of(out.data(), out.size()), 4);
  return out;
}

void Decoder::Feed(std::string_view bytes) {
  if (error_) return;
  buffer_.append(bytes.data(), bytes.size());
}

Error Decoder::Fail(std::string message) {
  error_ = MakeError(std::move(message));
  std::string().swap(buffer_);  // the rest of the stream is meaningless: free it
  start_ = 0;
  return *error_;
}

void Decoder::Consume(std::size_t n) {
  start_ += n;
  constexpr std::size_t kKeepCapacity = 64 * 1024;
  if (start_ == buffer_.size()) {
    // Idle connections should not pin the memory of their largest message.
    if (buffer_.capacity() > kKeepCapacity) {
      std::string().swap(buffer_);
    } else {
      buffer_.clear();
    }
    start_ = 0;
  } else if (start_ >= buffer_.size() / 2) {
    // Moves at most as many bytes as were consumed: linear overall.
    buffer_.erase(0, start_);
    start_ = 0;
  }
}

Result<std::optional<Message>> Decoder::Next() {
  if (error_) return *error_;
  const std::size_t available = buffer_.size() - start_;
  if (available < kPreludeSize) return std::optional<Message>();
  const char* p = buffer_.data() + start_;
  const std::uint32_t total = GetU32(p);
  const std::uint32_t headers_size = GetU32(p + 4);
  if (Crc32Of(p, 8) != GetU32(p + 8)) return Fail("event-stream: prelude CRC mismatch");
  if (total < kMinMessageSize) {
    return Fail("event-stream: message length " + std::to_string(total) + " is below the minimum " +
                std::to_string(kMinMessageSize));
  }
  if (total > kMaxMessageSize) {
    return Fail("event-stream: message length " + std::to_string(total) + " exceeds " +
                std::to_string(kMaxMessageSize));
  }
  if (headers_size > kMaxHeadersSize) {
    return Fail("event-stream: headers length " + std::to_string(headers_size) + " exceeds " +
                std::to_string(kMaxHeadersSize));
  }
  if (headers_size > total - kMinMessageSize) {
    return Fail("event-stream: headers length " + std::to_string(headers_size) +
                " does not fit in a message of " + std::to_string(total) + " bytes");
  }
  if (available < total) return std::optional<Message>();

  if (Crc32Of(p, total - kCrcSize) != GetU32(p + total - kCrcSize)) {
    return Fail("event-stream: message CRC mismatch");
  }
  Result<std::vector<Header>> headers = DecodeHeaders(p + kPreludeSize, headers_size);
  if (!headers) return Fail(headers.error().message);
  Message message;
  message.headers = std::move(*headers);
  message.payload.assign(p + kPreludeSize + headers_size, total - kMinMessageSize - headers_size);
  Consume(total);
  return std::optional<Message>(std::move(message));
}

}  // namespace lichen::ipc
