#include "ipc/event_stream.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "ipc/limits.h"

namespace lichen::ipc {
namespace {

using ::testing::HasSubstr;

std::string FromHex(std::string_view hex) {
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

std::string U32(std::uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

// A frame with a valid prelude CRC and message CRC around whatever prelude fields and body
// a test wants, so the decoder's later checks can be reached.
std::string RawFrame(std::uint32_t total, std::uint32_t headers_size, std::string_view body) {
  std::string out = U32(total) + U32(headers_size);
  out += U32(Crc32(out));
  out += body;
  out += U32(Crc32(out));
  return out;
}

// A frame whose prelude fields agree with its headers block and payload.
std::string RawMessage(std::string_view headers_block, std::string_view payload = "") {
  return RawFrame(static_cast<std::uint32_t>(16 + headers_block.size() + payload.size()),
                  static_cast<std::uint32_t>(headers_block.size()),
                  std::string(headers_block) + std::string(payload));
}

Message ConnectAck() {
  return Message{{{":message-type", std::int32_t{5}},
                  {":message-flags", std::int32_t{1}},
                  {":stream-id", std::int32_t{0}}},
                 ""};
}

const std::string kConnectAckHex =
    "00000047"
    "00000037"
    "374cfe3f"
    "0d3a6d6573736167652d74797065"
    "0400000005"
    "0e3a6d6573736167652d666c616773"
    "0400000001"
    "0a3a73747265616d2d6964"
    "0400000000"
    "e237e27d";

// Decodes exactly one message from bytes, failing the test otherwise.
Message DecodeOne(const std::string& bytes) {
  Decoder decoder;
  decoder.Feed(bytes);
  Result<std::optional<Message>> next = decoder.Next();
  EXPECT_TRUE(next.ok()) << (next.ok() ? "" : next.error().message);
  if (!next.ok() || !next->has_value()) return {};
  EXPECT_EQ(decoder.buffered(), 0u);
  return std::move(**next);
}

// The decoder's error for bytes, or "" when there is none.
std::string DecodeError(const std::string& bytes) {
  Decoder decoder;
  decoder.Feed(bytes);
  Result<std::optional<Message>> next = decoder.Next();
  return next.ok() ? "" : next.error().message;
}

TEST(Crc32Test, MatchesTheGzipCheckValue) {
  EXPECT_EQ(Crc32("123456789"), 0xCBF43926u);
  EXPECT_EQ(Crc32(""), 0u);
}

TEST(EncodeTest, ConnectAckMatchesTheSpecTestVector) {
  Result<std::string> bytes = Encode(ConnectAck());
  ASSERT_TRUE(bytes.ok()) << bytes.error().message;
  EXPECT_EQ(bytes->size(), 71u);
  EXPECT_EQ(*bytes, FromHex(kConnectAckHex));
}

TEST(DecoderTest, DecodesTheSpecTestVector) {
  const Message m = DecodeOne(FromHex(kConnectAckHex));
  EXPECT_EQ(m, ConnectAck());
  EXPECT_EQ(m.GetInt32(":message-type"), 5);
  EXPECT_EQ(m.GetInt32(":message-flags"), 1);
  EXPECT_EQ(m.GetInt32(":stream-id"), 0);
  EXPECT_TRUE(m.payload.empty());
}

TEST(EncodeTest, EmptyMessageIsSixteenBytes) {
  Result<std::string> bytes = Encode(Message{});
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ(bytes->size(), kMinMessageSize);
  EXPECT_EQ(DecodeOne(*bytes), Message{});
}

Message EveryHeaderType() {
  Uuid uuid;
  for (std::size_t i = 0; i < uuid.bytes.size(); ++i) {
    uuid.bytes[i] = static_cast<std::uint8_t>(0xf0 + i);
  }
  return Message{{
                     {"true", true},
                     {"false", false},
                     {"byte", std::int8_t{-128}},
                     {"int16", std::int16_t{-2}},
                     {"int32", std::numeric_limits<std::int32_t>::min()},
                     {"int64", std::numeric_limits<std::int64_t>::max()},
                     {"buffer", ByteBuffer{std::string("\0\x01\xff", 3)}},
                     {"string", std::string("h\xc3\xa9llo")},
                     {"time", Timestamp{-1234567890123}},
                     {"uuid", uuid},
                     {"empty-string", std::string()},
                     {"empty-buffer", ByteBuffer{}},
                 },
                 R"({"a":1})"};
}

TEST(EncodeTest, EveryHeaderTypeRoundTrips) {
  const Message original = EveryHeaderType();
  Result<std::string> bytes = Encode(original);
  ASSERT_TRUE(bytes.ok()) << bytes.error().message;
  EXPECT_EQ(DecodeOne(*bytes), original);
}

TEST(EncodeTest, HeaderTypesUseTheirWireCodes) {
  const Message m = EveryHeaderType();
  const std::vector<HeaderType> expected = {
      HeaderType::kBoolTrue,   HeaderType::kBoolFalse, HeaderType::kByte,
      HeaderType::kInt16,      HeaderType::kInt32,     HeaderType::kInt64,
      HeaderType::kByteBuffer, HeaderType::kString,    HeaderType::kTimestamp,
      HeaderType::kUuid,       HeaderType::kString,    HeaderType::kByteBuffer};
  ASSERT_EQ(m.headers.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(TypeOf(m.headers[i].value), expected[i]) << m.headers[i].name;
  }
}

// Header bytes on the wire, one header per case: name length, name, type, value.
TEST(EncodeTest, HeaderValuesAreBigEndian) {
  struct Case {
    HeaderValue value;
    std::string hex;  // type byte and value
  };
  const std::vector<Case> cases = {
      {true, "00"},
      {false, "01"},
      {std::int8_t{-2}, "02fe"},
      {std::int16_t{0x0102}, "030102"},
      {std::int32_t{-2}, "04fffffffe"},
      {std::int64_t{0x0102030405060708}, "050102030405060708"},
      {ByteBuffer{"ab"}, "0600026162"},
      {std::string("ab"), "0700026162"},
      {Timestamp{1}, "080000000000000001"},
      {Uuid{{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}},
       "090102030405060708090a0b0c0d0e0f10"},
  };
  for (const Case& c : cases) {
    Result<std::string> bytes = Encode(Message{{{"h", c.value}}, ""});
    ASSERT_TRUE(bytes.ok());
    const std::string headers = bytes->substr(12, bytes->size() - 16);
    EXPECT_EQ(headers, FromHex("0168" + c.hex)) << c.hex;
  }
}

TEST(MessageTest, GettersCheckTheTypeAndTakeTheFirstHeader) {
  const Message m{{{"n", std::int32_t{1}},
                   {"n", std::int32_t{2}},
                   {"short", std::int16_t{3}},
                   {"s", std::string("x")},
                   {"b", ByteBuffer{"y"}}},
                  ""};
  EXPECT_EQ(m.GetInt32("n"), 1);
  EXPECT_EQ(m.GetInt32("short"), std::nullopt);
  EXPECT_EQ(m.GetInt32("missing"), std::nullopt);
  EXPECT_EQ(m.GetString("s"), "x");
  EXPECT_EQ(m.GetString("b"), std::nullopt);
  EXPECT_EQ(m.GetString("n"), std::nullopt);
  ASSERT_NE(m.Find("b"), nullptr);
  EXPECT_EQ(m.Find("missing"), nullptr);
}

TEST(DecoderTest, ByteAtATime) {
  const Message original = EveryHeaderType();
  Result<std::string> bytes = Encode(original);
  ASSERT_TRUE(bytes.ok());
  Decoder decoder;
  for (std::size_t i = 0; i < bytes->size(); ++i) {
    decoder.Feed(bytes->substr(i, 1));
    Result<std::optional<Message>> next = decoder.Next();
    ASSERT_TRUE(next.ok()) << next.error().message;
    if (i + 1 < bytes->size()) {
      ASSERT_FALSE(next->has_value()) << "complete after " << i + 1 << " bytes";
    } else {
      ASSERT_TRUE(next->has_value());
      EXPECT_EQ(**next, original);
    }
  }
  EXPECT_EQ(decoder.buffered(), 0u);
}

TEST(DecoderTest, SeveralMessagesInOneBuffer) {
  const std::vector<Message> messages = {ConnectAck(), Message{}, EveryHeaderType(),
                                         Message{{}, "payload only"}};
  std::string stream;
  for (const Message& m : messages) {
    Result<std::string> bytes = Encode(m);
    ASSERT_TRUE(bytes.ok());
    stream += *bytes;
  }
  // Plus the first half of another message: it stays buffered.
  const std::string partial = FromHex(kConnectAckHex).substr(0, 30);
  stream += partial;

  Decoder decoder;
  decoder.Feed(stream);
  for (const Message& expected : messages) {
    Result<std::optional<Message>> next = decoder.Next();
    ASSERT_TRUE(next.ok()) << next.error().message;
    ASSERT_TRUE(next->has_value());
    EXPECT_EQ(**next, expected);
  }
  Result<std::optional<Message>> rest = decoder.Next();
  ASSERT_TRUE(rest.ok());
  EXPECT_FALSE(rest->has_value());
  EXPECT_EQ(decoder.buffered(), partial.size());

  decoder.Feed(FromHex(kConnectAckHex).substr(30));
  Result<std::optional<Message>> last = decoder.Next();
  ASSERT_TRUE(last.ok());
  ASSERT_TRUE(last->has_value());
  EXPECT_EQ(**last, ConnectAck());
}

TEST(DecoderTest, NeedsTwelveBytesForThePrelude) {
  Decoder decoder;
  decoder.Feed(FromHex(kConnectAckHex).substr(0, 11));
  Result<std::optional<Message>> next = decoder.Next();
  ASSERT_TRUE(next.ok());
  EXPECT_FALSE(next->has_value());
}

TEST(DecoderTest, AcceptsTheLargestMessage) {
  const std::string payload(kMaxMessageSize - kMinMessageSize, 'p');
  Result<std::string> bytes = Encode(Message{{}, payload});
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ(bytes->size(), kMaxMessageSize);
  EXPECT_EQ(DecodeOne(*bytes).payload.size(), payload.size());
}

TEST(DecoderErrorTest, BadPreludeCrc) {
  std::string bytes = FromHex(kConnectAckHex);
  bytes[11] ^= 1;
  EXPECT_THAT(DecodeError(bytes.substr(0, 12)), HasSubstr("prelude CRC"));
}

TEST(DecoderErrorTest, BadMessageCrc) {
  std::string bytes = FromHex(kConnectAckHex);
  bytes[20] ^= 1;  // inside the headers
  EXPECT_THAT(DecodeError(bytes), HasSubstr("message CRC"));
  bytes = FromHex(kConnectAckHex);
  bytes.back() ^= 1;
  EXPECT_THAT(DecodeError(bytes), HasSubstr("message CRC"));
}

TEST(DecoderErrorTest, TotalLengthBelowTheMinimum) {
  std::string prelude = U32(15) + U32(0);
  prelude += U32(Crc32(prelude));
  EXPECT_THAT(DecodeError(prelude), HasSubstr("below the minimum"));
}

// The prelude alone is enough: the decoder must not wait for (or buffer toward) 16 MiB.
TEST(DecoderErrorTest, OversizedMessageFailsOnThePrelude) {
  std::string prelude = U32(kMaxMessageSize + 1) + U32(0);
  prelude += U32(Crc32(prelude));
  EXPECT_THAT(DecodeError(prelude), HasSubstr("exceeds"));
  prelude = U32(0xffffffff) + U32(0);
  prelude += U32(Crc32(prelude));
  EXPECT_THAT(DecodeError(prelude), HasSubstr("exceeds"));
}

TEST(DecoderErrorTest, OversizedHeadersFailOnThePrelude) {
  std::string prelude = U32(kMaxMessageSize) + U32(kMaxHeadersSize + 1);
  prelude += U32(Crc32(prelude));
  EXPECT_THAT(DecodeError(prelude), HasSubstr("headers length"));
}

TEST(DecoderErrorTest, HeadersLongerThanTheMessage) {
  std::string prelude = U32(100) + U32(85);
  prelude += U32(Crc32(prelude));
  EXPECT_THAT(DecodeError(prelude), HasSubstr("does not fit"));
  prelude = U32(16) + U32(1);
  prelude += U32(Crc32(prelude));
  EXPECT_THAT(DecodeError(prelude), HasSubstr("does not fit"));
}

TEST(DecoderTest, HeadersBlockAtTheLimitIsAccepted) {
  // Three maximal string headers, then one sized to reach exactly kMaxHeadersSize.
  Message m;
  for (const char* name : {"h0", "h1", "h2"}) {
    m.headers.push_back({name, std::string(kMaxHeaderValueSize, 'v')});
  }
  const std::size_t used = 3 * (1 + 2 + 1 + 2 + kMaxHeaderValueSize);
  const std::size_t rest = kMaxHeadersSize - used - (1 + 4 + 1 + 2);
  m.headers.push_back({"last", std::string(rest, 'v')});
  Result<std::string> bytes = Encode(m);
  ASSERT_TRUE(bytes.ok()) << bytes.error().message;
  EXPECT_EQ(bytes->size(), kMaxHeadersSize + kMinMessageSize);
  EXPECT_EQ(DecodeOne(*bytes), m);
}

TEST(DecoderErrorTest, ZeroLengthHeaderName) {
  EXPECT_THAT(DecodeError(RawMessage(FromHex("00"
                                             "00"))),
              HasSubstr("empty name"));
}

TEST(DecoderErrorTest, NameRunsPastTheBlock) {
  EXPECT_THAT(DecodeError(RawMessage(FromHex("05"
                                             "6162"))),
              HasSubstr("name runs past"));
}

TEST(DecoderErrorTest, TruncatedHeaderType) {
  EXPECT_THAT(DecodeError(RawMessage(FromHex("026162"))), HasSubstr("type runs past"));
}

TEST(DecoderErrorTest, TruncatedFixedSizeValues) {
  for (const char* hex : {"016102", "01610300", "016104000000", "01610500000000000000",
                          "0161080000", "016109000102030405060708090a0b0c0d0e"}) {
    EXPECT_THAT(DecodeError(RawMessage(FromHex(hex))), HasSubstr("value runs past")) << hex;
  }
}

TEST(DecoderErrorTest, ValueLengthPastTheBlock) {
  // A string announcing 5 bytes with 2 present; the payload right after must not be read.
  EXPECT_THAT(DecodeError(RawMessage(FromHex("016107"
                                             "0005"
                                             "6162"),
                                     "xyz")),
              HasSubstr("value runs past"));
  // The length field itself cut short.
  EXPECT_THAT(DecodeError(RawMessage(FromHex("016106"
                                             "00"))),
              HasSubstr("value runs past"));
}

TEST(DecoderErrorTest, UnknownHeaderType) {
  EXPECT_THAT(DecodeError(RawMessage(FromHex("01610a"))),
              HasSubstr("unknown header value type 10"));
  EXPECT_THAT(DecodeError(RawMessage(FromHex("0161ff"))),
              HasSubstr("unknown header value type 255"));
}

TEST(DecoderErrorTest, StringValueOverTheLimit) {
  std::string block = FromHex("016107") + U32(kMaxHeaderValueSize + 1).substr(2);
  block += std::string(kMaxHeaderValueSize + 1, 's');
  EXPECT_THAT(DecodeError(RawMessage(block)), HasSubstr("limit is 32767"));
}

TEST(DecoderErrorTest, ErrorsAreFinal) {
  Decoder decoder;
  std::string bad = FromHex(kConnectAckHex);
  bad.back() ^= 1;
  decoder.Feed(bad);
  Result<std::optional<Message>> first = decoder.Next();
  ASSERT_FALSE(first.ok());
  decoder.Feed(FromHex(kConnectAckHex));
  EXPECT_EQ(decoder.buffered(), 0u);
  Result<std::optional<Message>> again = decoder.Next();
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().message, first.error().message);
}

TEST(EncodeErrorTest, HeaderNameLength) {
  EXPECT_FALSE(Encode(Message{{{"", true}}, ""}).ok());
  EXPECT_FALSE(Encode(Message{{{std::string(256, 'n'), true}}, ""}).ok());
  Result<std::string> longest = Encode(Message{{{std::string(255, 'n'), true}}, ""});
  ASSERT_TRUE(longest.ok());
  EXPECT_EQ(DecodeOne(*longest).headers[0].name.size(), 255u);
}

TEST(EncodeErrorTest, ValueLength) {
  EXPECT_TRUE(Encode(Message{{{"s", std::string(kMaxHeaderValueSize, 'x')}}, ""}).ok());
  EXPECT_FALSE(Encode(Message{{{"s", std::string(kMaxHeaderValueSize + 1, 'x')}}, ""}).ok());
  EXPECT_FALSE(
      Encode(Message{{{"b", ByteBuffer{std::string(kMaxHeaderValueSize + 1, 'x')}}}, ""}).ok());
}

TEST(EncodeErrorTest, HeadersBlockLength) {
  Message m;
  for (int i = 0; i < 5; ++i) {
    m.headers.push_back({"h" + std::to_string(i), std::string(kMaxHeaderValueSize, 'v')});
  }
  Result<std::string> bytes = Encode(m);
  ASSERT_FALSE(bytes.ok());
  EXPECT_THAT(bytes.error().message, HasSubstr("headers block"));
}

TEST(EncodeErrorTest, MessageLength) {
  // The header "h" (bool) takes 3 bytes.
  Message m{{{"h", true}}, std::string(kMaxMessageSize - kMinMessageSize - 3, 'p')};
  EXPECT_TRUE(Encode(m).ok());
  m.payload.push_back('p');
  Result<std::string> bytes = Encode(m);
  ASSERT_FALSE(bytes.ok());
  EXPECT_THAT(bytes.error().message, HasSubstr("exceeds"));
}

}  // namespace
}  // namespace lichen::ipc
