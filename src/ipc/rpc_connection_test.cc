#include "ipc/rpc_connection.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <tuple>
#include <vector>

#include "ipc/event_stream.h"
#include "ipc/limits.h"

namespace lichen::ipc {
namespace {

using ::testing::HasSubstr;

constexpr std::string_view kPublish = "aws.greengrass#PublishToTopic";
constexpr std::string_view kSubscribe = "aws.greengrass#SubscribeToTopic";

Header Int32Header(std::string_view name, std::int32_t value) {
  return Header{std::string(name), value};
}
Header StringHeader(std::string_view name, std::string_view value) {
  return Header{std::string(name), std::string(value)};
}

// A client frame: the RPC headers first, as the clients write them, then the others.
Message ClientFrame(MessageType type, std::int32_t flags, std::int32_t stream,
                    std::vector<Header> extra = {}, std::string payload = "") {
  std::vector<Header> headers{Int32Header(kMessageTypeHeader, static_cast<std::int32_t>(type)),
                              Int32Header(kMessageFlagsHeader, flags),
                              Int32Header(kStreamIdHeader, stream)};
  headers.insert(headers.end(), extra.begin(), extra.end());
  return Message{std::move(headers), std::move(payload)};
}

Message Connect(std::string payload = R"({"authToken":"secret-svcuid"})") {
  return ClientFrame(MessageType::kConnect, 0, 0, {StringHeader(kVersionHeader, "0.1.0")},
                     std::move(payload));
}

Message Request(std::int32_t stream, std::string_view operation, std::string payload = "{}",
                std::int32_t flags = 0) {
  return ClientFrame(MessageType::kApplicationMessage, flags, stream,
                     {StringHeader(kOperationHeader, operation)}, std::move(payload));
}

Message Terminate(std::int32_t stream) {
  return ClientFrame(MessageType::kApplicationMessage, kFlagTerminateStream, stream);
}

// The frames a server writes, in the header order the server uses.
Message ServerFrame(MessageType type, std::int32_t flags, std::int32_t stream,
                    std::vector<Header> headers, std::string payload) {
  headers.push_back(Int32Header(kMessageTypeHeader, static_cast<std::int32_t>(type)));
  headers.push_back(Int32Header(kMessageFlagsHeader, flags));
  headers.push_back(Int32Header(kStreamIdHeader, stream));
  return Message{std::move(headers), std::move(payload)};
}

const Message& OutgoingAt(const std::vector<Action>& actions, std::size_t i) {
  static const Message kNone;
  if (i >= actions.size() || !std::holds_alternative<Outgoing>(actions[i])) {
    ADD_FAILURE() << "action " << i << " is not Outgoing";
    return kNone;
  }
  return std::get<Outgoing>(actions[i]).message;
}

// A connection past the handshake.
RpcConnection Connected(std::size_t max_open_streams = kMaxOpenStreams) {
  RpcConnection connection(max_open_streams);
  EXPECT_EQ(connection.OnMessage(Connect()).size(), 1u);
  EXPECT_EQ(connection.Accept().size(), 1u);
  return connection;
}

// Checks actions are exactly [protocol error frame, CloseConnection] and returns the
// error's message.
std::string ExpectProtocolError(const std::vector<Action>& actions) {
  EXPECT_EQ(actions.size(), 2u);
  if (actions.size() != 2) return "";
  const Message& frame = OutgoingAt(actions, 0);
  EXPECT_EQ(frame.GetInt32(kMessageTypeHeader), 6);
  EXPECT_EQ(frame.GetInt32(kMessageFlagsHeader), 0);
  EXPECT_EQ(frame.GetInt32(kStreamIdHeader), 0);
  EXPECT_EQ(frame.GetString(kContentTypeHeader), "application/json");
  EXPECT_TRUE(std::holds_alternative<CloseConnection>(actions[1]));
  const nlohmann::json body = nlohmann::json::parse(frame.payload, nullptr, false);
  EXPECT_TRUE(body.is_object() && body.contains("message") && body["message"].is_string())
      << frame.payload;
  if (!body.is_object() || !body.contains("message") || !body["message"].is_string()) return "";
  return body["message"].get<std::string>();
}

// Checks actions are exactly [CONNECT_ACK without the accepted flag, CloseConnection].
void ExpectRefused(const std::vector<Action>& actions) {
  ASSERT_EQ(actions.size(), 2u);
  EXPECT_EQ(OutgoingAt(actions, 0), ServerFrame(MessageType::kConnectAck, 0, 0, {}, ""));
  EXPECT_TRUE(std::holds_alternative<CloseConnection>(actions[1]));
}

TEST(HandshakeTest, AcceptSendsTheSpecConnectAck) {
  RpcConnection connection;
  const std::vector<Action> auth = connection.OnMessage(Connect());
  ASSERT_EQ(auth.size(), 1u);
  ASSERT_TRUE(std::holds_alternative<Authenticate>(auth[0]));
  EXPECT_EQ(std::get<Authenticate>(auth[0]).auth_token, "secret-svcuid");

  const std::vector<Action> ack = connection.Accept();
  ASSERT_EQ(ack.size(), 1u);
  Result<std::string> bytes = Encode(OutgoingAt(ack, 0));
  ASSERT_TRUE(bytes.ok());
  // The spec's test vector: 71 bytes ending in the message CRC e237e27d.
  EXPECT_EQ(bytes->size(), 71u);
  EXPECT_EQ(bytes->substr(0, 12),
            std::string("\x00\x00\x00\x47\x00\x00\x00\x37\x37\x4c\xfe\x3f", 12));
  EXPECT_EQ(bytes->substr(67), "\xe2\x37\xe2\x7d");
  EXPECT_FALSE(connection.IsClosed());

  EXPECT_TRUE(connection.Accept().empty());
  EXPECT_TRUE(connection.Reject().empty());
}

TEST(HandshakeTest, RejectSendsConnectAckWithoutTheFlagThenCloses) {
  RpcConnection connection;
  ASSERT_EQ(connection.OnMessage(Connect()).size(), 1u);
  ExpectRefused(connection.Reject());
  EXPECT_TRUE(connection.IsClosed());
  EXPECT_TRUE(connection.OnMessage(Request(1, kPublish)).empty());
  EXPECT_TRUE(connection.Accept().empty());
}

TEST(HandshakeTest, AcceptOrRejectWithoutConnectDoNothing) {
  RpcConnection connection;
  EXPECT_TRUE(connection.Accept().empty());
  EXPECT_TRUE(connection.Reject().empty());
  EXPECT_EQ(connection.OnMessage(Connect()).size(), 1u);
}

TEST(HandshakeTest, MissingAuthTokenAuthenticatesAnEmptyToken) {
  RpcConnection connection;
  const std::vector<Action> actions = connection.OnMessage(Connect("{}"));
  ASSERT_EQ(actions.size(), 1u);
  ASSERT_TRUE(std::holds_alternative<Authenticate>(actions[0]));
  EXPECT_EQ(std::get<Authenticate>(actions[0]).auth_token, "");
}

TEST(HandshakeTest, WrongOrMissingVersionIsRefused) {
  RpcConnection wrong;
  ExpectRefused(wrong.OnMessage(ClientFrame(MessageType::kConnect, 0, 0,
                                            {StringHeader(kVersionHeader, "0.2.0")},
                                            R"({"authToken":"t"})")));
  EXPECT_TRUE(wrong.IsClosed());
  RpcConnection missing;
  ExpectRefused(missing.OnMessage(ClientFrame(MessageType::kConnect, 0, 0, {}, "{}")));
}

TEST(HandshakeTest, BadConnectPayloadIsAProtocolError) {
  for (const std::string payload : {"", "not json", "{\"authToken\":", "[]", "\"token\"",
                                    R"({"authToken":42})", R"({"authToken":null})"}) {
    RpcConnection connection;
    EXPECT_THAT(ExpectProtocolError(connection.OnMessage(Connect(payload))), HasSubstr("CONNECT"))
        << payload;
    EXPECT_TRUE(connection.IsClosed());
  }
}

TEST(HandshakeTest, OversizedConnectPayloadIsAProtocolError) {
  RpcConnection connection;
  const std::string padding(kMaxConnectPayloadSize, ' ');
  EXPECT_THAT(ExpectProtocolError(connection.OnMessage(Connect("{}" + padding))),
              HasSubstr("exceeds"));
}

TEST(HandshakeTest, AnythingButConnectFirstIsAProtocolError) {
  const std::vector<Message> firsts = {
      ClientFrame(MessageType::kPing, 0, 0),
      Request(1, kPublish),
      ClientFrame(MessageType::kConnect, 0, 1, {StringHeader(kVersionHeader, "0.1.0")}, "{}"),
      ClientFrame(MessageType::kConnectAck, 1, 0),
  };
  for (const Message& first : firsts) {
    RpcConnection connection;
    ExpectProtocolError(connection.OnMessage(first));
    EXPECT_TRUE(connection.IsClosed());
  }
}

TEST(HandshakeTest, NothingIsAllowedWhileTheTokenIsChecked) {
  RpcConnection connection;
  ASSERT_EQ(connection.OnMessage(Connect()).size(), 1u);
  ExpectProtocolError(connection.OnMessage(Connect()));
  EXPECT_TRUE(connection.Accept().empty());

  RpcConnection pinging;
  ASSERT_EQ(pinging.OnMessage(Connect()).size(), 1u);
  ExpectProtocolError(pinging.OnMessage(ClientFrame(MessageType::kPing, 0, 0)));
}

TEST(HandshakeTest, SecondConnectIsAProtocolError) {
  RpcConnection connection = Connected();
  EXPECT_THAT(ExpectProtocolError(connection.OnMessage(Connect())), HasSubstr("one CONNECT"));
}

TEST(FramingTest, MissingRpcHeadersAreAProtocolError) {
  for (std::string_view missing : {kMessageTypeHeader, kMessageFlagsHeader, kStreamIdHeader}) {
    Message m = ClientFrame(MessageType::kPing, 0, 0);
    std::erase_if(m.headers, [&](const Header& h) { return h.name == missing; });
    RpcConnection before;
    EXPECT_THAT(ExpectProtocolError(before.OnMessage(m)), HasSubstr(":message-type"));
    RpcConnection after = Connected();
    EXPECT_THAT(ExpectProtocolError(after.OnMessage(m)), HasSubstr(":stream-id"));
  }
}

TEST(FramingTest, RpcHeadersMustBeInt32) {
  Message m{{Int32Header(kMessageTypeHeader, 2), Int32Header(kMessageFlagsHeader, 0),
             Header{std::string(kStreamIdHeader), std::int16_t{0}}},
            ""};
  RpcConnection connection = Connected();
  ExpectProtocolError(connection.OnMessage(m));
}

TEST(FramingTest, DecodeErrorIsAProtocolErrorThenClose) {
  RpcConnection connection = Connected();
  ASSERT_EQ(connection.OnMessage(Request(1, kSubscribe)).size(), 1u);
  EXPECT_EQ(ExpectProtocolError(connection.OnDecodeError(Error{"event-stream: message CRC"})),
            "event-stream: message CRC");
  EXPECT_TRUE(connection.IsClosed());
  EXPECT_FALSE(connection.IsStreamOpen(1));
  EXPECT_EQ(connection.OpenStreamCount(), 0u);
  EXPECT_TRUE(connection.OnDecodeError(Error{"again"}).empty());
  EXPECT_TRUE(connection.Respond(1, "x", "{}", false).empty());
  EXPECT_TRUE(connection.SendError(1, "ServiceError", "{}").empty());
}

TEST(FramingTest, ErrorMessagesWithInvalidUtf8StillMakeJson) {
  RpcConnection connection = Connected();
  const std::string message = ExpectProtocolError(connection.OnDecodeError(Error{"bad \xff"}));
  EXPECT_THAT(message, HasSubstr("bad "));
}

TEST(PingTest, EchoesPayloadAndNonColonHeaders) {
  RpcConnection connection = Connected();
  const Message ping = ClientFrame(MessageType::kPing, 0, 0,
                                   {StringHeader(":content-type", "text/plain"),
                                    StringHeader("x-custom", "v"), Header{"n", std::int64_t{7}}},
                                   "ping payload");
  const std::vector<Action> actions = connection.OnMessage(ping);
  ASSERT_EQ(actions.size(), 1u);
  EXPECT_EQ(
      OutgoingAt(actions, 0),
      ServerFrame(MessageType::kPingResponse, 0, 0,
                  {StringHeader("x-custom", "v"), Header{"n", std::int64_t{7}}}, "ping payload"));
}

TEST(PingTest, PingResponseIsIgnored) {
  RpcConnection connection = Connected();
  EXPECT_TRUE(connection.OnMessage(ClientFrame(MessageType::kPingResponse, 0, 0)).empty());
  EXPECT_FALSE(connection.IsClosed());
}

TEST(PingTest, OtherTypesOnStreamZeroAreProtocolErrors) {
  for (std::int32_t type : {0, 1, 5, 6, 7, 8, -1}) {
    RpcConnection connection = Connected();
    ExpectProtocolError(connection.OnMessage(
        ClientFrame(static_cast<MessageType>(type), 0, 0, {StringHeader(kOperationHeader, "x")})));
  }
}

TEST(RequestTest, OpenStreamCarriesOperationAndPayload) {
  RpcConnection connection = Connected();
  const std::vector<Action> actions =
      connection.OnMessage(Request(1, kPublish, R"({"topic":"t"})"));
  ASSERT_EQ(actions.size(), 1u);
  ASSERT_TRUE(std::holds_alternative<OpenStream>(actions[0]));
  const OpenStream& open = std::get<OpenStream>(actions[0]);
  EXPECT_EQ(open.stream_id, 1);
  EXPECT_EQ(open.operation, kPublish);
  EXPECT_EQ(open.payload, R"({"topic":"t"})");
  EXPECT_TRUE(connection.IsStreamOpen(1));
  EXPECT_EQ(connection.OpenStreamCount(), 1u);
}

TEST(RequestTest, ResponseHasTheExactHeadersAndTerminates) {
  RpcConnection connection = Connected();
  ASSERT_EQ(connection.OnMessage(Request(1, kPublish)).size(), 1u);
  const std::vector<Action> actions =
      connection.Respond(1, "aws.greengrass#PublishToTopicResponse", "{}", true);
  ASSERT_EQ(actions.size(), 1u);
  EXPECT_EQ(
      OutgoingAt(actions, 0),
      ServerFrame(MessageType::kApplicationMessage, kFlagTerminateStream, 1,
                  {StringHeader(":content-type", "application/json"),
                   StringHeader("service-model-type", "aws.greengrass#PublishToTopicResponse")},
                  "{}"));
  EXPECT_FALSE(connection.IsStreamOpen(1));
  // Nothing more on a terminated stream.
  EXPECT_TRUE(connection.Respond(1, "aws.greengrass#PublishToTopicResponse", "{}", true).empty());
  EXPECT_TRUE(connection.SendEvent(1, "m", "{}").empty());
  EXPECT_TRUE(connection.SendError(1, "ServiceError", "{}").empty());
}

TEST(RequestTest, FramesEncodedDirectlyAreTheBytesOfTheirMessages) {
  const std::string big(40000, 'x');
  for (const auto& [type, flags, stream, model, payload] :
       std::vector<std::tuple<MessageType, std::int32_t, std::int32_t, std::string, std::string>>{
           {MessageType::kApplicationMessage, kFlagTerminateStream, 1,
            "aws.greengrass#PublishToTopicResponse", "{}"},
           {MessageType::kApplicationMessage, 0, 0x7fffffff,
            "aws.greengrass#SubscriptionResponseMessage", R"({"jsonMessage":{}})"},
           {MessageType::kApplicationError, kFlagTerminateStream, 3, "", R"({"message":"m"})"},
           {MessageType::kApplicationMessage, 0, 2, "m", ""},
           {MessageType::kApplicationMessage, 0, 2, "m", big},
       }) {
    std::vector<Header> headers{StringHeader(kContentTypeHeader, kContentTypeJson)};
    if (!model.empty()) headers.push_back(StringHeader(kServiceModelTypeHeader, model));
    const Result<std::string> expected = Encode(ServerFrame(type, flags, stream, headers, payload));
    ASSERT_TRUE(expected);
    std::string out = "before";
    ASSERT_TRUE(AppendApplicationFrame(out, type, flags, stream, model, payload));
    EXPECT_EQ(out, "before" + *expected) << model;
  }
  std::string out;
  EXPECT_FALSE(AppendApplicationFrame(out, MessageType::kApplicationMessage, 0, 1,
                                      std::string(kMaxHeaderValueSize + 1, 'm'), "{}"));
  EXPECT_FALSE(AppendApplicationFrame(out, MessageType::kApplicationMessage, 0, 1, "m",
                                      std::string(kMaxMessageSize, ' ')));
  EXPECT_TRUE(out.empty());
}

TEST(RequestTest, BeginRespondAndMaySendEventFollowRespondAndSendEvent) {
  RpcConnection connection = Connected();
  ASSERT_EQ(connection.OnMessage(Request(1, kPublish)).size(), 1u);
  ASSERT_EQ(connection.OnMessage(Request(2, kSubscribe)).size(), 1u);
  EXPECT_FALSE(connection.MaySendEvent(2));  // not before the response
  EXPECT_TRUE(connection.BeginRespond(2, /*terminate=*/false));
  EXPECT_TRUE(connection.MaySendEvent(2));
  EXPECT_FALSE(connection.BeginRespond(2, false));  // one response only
  EXPECT_TRUE(connection.BeginRespond(1, /*terminate=*/true));
  EXPECT_FALSE(connection.IsStreamOpen(1));
  EXPECT_FALSE(connection.BeginRespond(1, true));
  EXPECT_FALSE(connection.MaySendEvent(1));
  EXPECT_FALSE(connection.MaySendEvent(7));  // never opened
}

TEST(RequestTest, MovedAndCopiedMessagesGiveTheSameActions) {
  RpcConnection by_copy = Connected();
  RpcConnection by_move = Connected();
  const Message request = Request(1, kPublish, R"({"topic":"t"})");
  const std::vector<Action> copied = by_copy.OnMessage(request);
  Message moved_from = request;
  const std::vector<Action> moved = by_move.OnMessage(std::move(moved_from));
  ASSERT_EQ(copied.size(), 1u);
  ASSERT_EQ(moved.size(), 1u);
  const auto& a = std::get<OpenStream>(copied[0]);
  const auto& b = std::get<OpenStream>(moved[0]);
  EXPECT_EQ(a.operation, b.operation);
  EXPECT_EQ(a.payload, b.payload);
  EXPECT_EQ(a.payload, R"({"topic":"t"})");
  EXPECT_EQ(request.payload, R"({"topic":"t"})");  // the const overload leaves it alone
}

TEST(RequestTest, LateTerminateFromTheClientIsIgnored) {
  RpcConnection connection = Connected();
  ASSERT_EQ(connection.OnMessage(Request(1, kPublish)).size(), 1u);
  ASSERT_EQ(connection.Respond(1, "aws.greengrass#PublishToTopicResponse", "{}", true).size(), 1u);
  EXPECT_TRUE(connection.OnMessage(Terminate(1)).empty());
  EXPECT_FALSE(connection.IsClosed());
  // The connection goes on.
  EXPECT_EQ(connection.OnMessage(Request(2, kPublish)).size(), 1u);
}

TEST(RequestTest, NonTerminateMessageForAClosedStreamIsAProtocolError) {
  RpcConnection connection = Connected();
  ASSERT_EQ(connection.OnMessage(Request(1, kPublish)).size(), 1u);
  ASSERT_EQ(connection.Respond(1, "r", "{}", true).size(), 1u);
  EXPECT_THAT(ExpectProtocolError(connection.OnMessage(Request(1, kPublish))),
              HasSubstr("closed stream 1"));
}

TEST(RequestTest, UnknownOperationErrorHasNoServiceModelType) {
  RpcConnection connection = Connected();
  ASSERT_EQ(connection.OnMessage(Request(1, "aws.greengrass#Nope")).size(), 1u);
  const std::vector<Action> actions =
      connection.SendError(1, "", R"({"message":"unsupported operation"})");
  ASSERT_EQ(actions.size(), 1u);
  EXPECT_EQ(OutgoingAt(actions, 0),
            ServerFrame(MessageType::kApplicationError, kFlagTerminateStream, 1,
                        {StringHeader(":content-type", "application/json")},
                        R"({"message":"unsupported operation"})"));
  EXPECT_FALSE(connection.IsStreamOpen(1));
}

TEST(RequestTest, ModeledErrorHasTheShapeAndTerminates) {
  RpcConnection connection = Connected();
  ASSERT_EQ(connection.OnMessage(Request(1, kPublish)).size(), 1u);
  const std::vector<Action> actions = connection.SendError(1, "UnauthorizedError", "{}");
  ASSERT_EQ(actions.size(), 1u);
  EXPECT_EQ(OutgoingAt(actions, 0),
            ServerFrame(MessageType::kApplicationError, kFlagTerminateStream, 1,
                        {StringHeader(":content-type", "application/json"),
                         StringHeader("service-model-type", "aws.greengrass#UnauthorizedError")},
                        "{}"));
  EXPECT_FALSE(connection.IsStreamOpen(1));
  EXPECT_TRUE(connection.OnMessage(Terminate(1)).empty());
}

TEST(StreamingTest, ResponseThenEventsUntilTheClientTerminates) {
  RpcConnection connection = Connected();
  ASSERT_EQ(connection.OnMessage(Request(1, kSubscribe, R"({"topic":"a/b"})")).size(), 1u);
  // No event before the response.
  EXPECT_TRUE(connection.SendEvent(1, "aws.greengrass#SubscriptionResponseMessage", "{}").empty());

  const std::vector<Action> response =
      connection.Respond(1, "aws.greengrass#SubscribeToTopicResponse", "{}", false);
  ASSERT_EQ(response.size(), 1u);
  EXPECT_EQ(
      OutgoingAt(response, 0),
      ServerFrame(MessageType::kApplicationMessage, 0, 1,
                  {StringHeader(":content-type", "application/json"),
                   StringHeader("service-model-type", "aws.greengrass#SubscribeToTopicResponse")},
                  "{}"));
  EXPECT_TRUE(connection.IsStreamOpen(1));
  // One response per stream.
  EXPECT_TRUE(
      connection.Respond(1, "aws.greengrass#SubscribeToTopicResponse", "{}", false).empty());

  const std::string event = R"({"jsonMessage":{"message":{"n":1},"context":{"topic":"a/b"}}})";
  const std::vector<Action> sent =
      connection.SendEvent(1, "aws.greengrass#SubscriptionResponseMessage", event);
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(OutgoingAt(sent, 0),
            ServerFrame(
                MessageType::kApplicationMessage, 0, 1,
                {StringHeader(":content-type", "application/json"),
                 StringHeader("service-model-type", "aws.greengrass#SubscriptionResponseMessage")},
                event));

  const std::vector<Action> closed = connection.OnMessage(Terminate(1));
  ASSERT_EQ(closed.size(), 1u);
  ASSERT_TRUE(std::holds_alternative<StreamClosed>(closed[0]));
  EXPECT_EQ(std::get<StreamClosed>(closed[0]).stream_id, 1);
  EXPECT_FALSE(connection.IsStreamOpen(1));
  EXPECT_TRUE(connection.SendEvent(1, "aws.greengrass#SubscriptionResponseMessage", event).empty());
  EXPECT_TRUE(connection.SendError(1, "ServiceError", "{}").empty());
  // A second TERMINATE is a late one.
  EXPECT_TRUE(connection.OnMessage(Terminate(1)).empty());
}

TEST(StreamingTest, ErrorEndsAStreamAfterItsResponse) {
  RpcConnection connection = Connected();
  ASSERT_EQ(connection.OnMessage(Request(1, kSubscribe)).size(), 1u);
  ASSERT_EQ(connection.Respond(1, "r", "{}", false).size(), 1u);
  const std::vector<Action> error = connection.SendError(1, "ServiceError", "{}");
  ASSERT_EQ(error.size(), 1u);
  EXPECT_EQ(OutgoingAt(error, 0).GetInt32(kMessageFlagsHeader), kFlagTerminateStream);
  EXPECT_TRUE(connection.SendEvent(1, "e", "{}").empty());
}

TEST(StreamingTest, LaterClientMessagesAreStreamMessages) {
  RpcConnection connection = Connected();
  ASSERT_EQ(connection.OnMessage(Request(1, kSubscribe)).size(), 1u);
  const std::vector<Action> more = connection.OnMessage(
      ClientFrame(MessageType::kApplicationMessage, 0, 1, {}, R"({"more":true})"));
  ASSERT_EQ(more.size(), 1u);
  ASSERT_TRUE(std::holds_alternative<StreamMessage>(more[0]));
  EXPECT_EQ(std::get<StreamMessage>(more[0]).stream_id, 1);
  EXPECT_EQ(std::get<StreamMessage>(more[0]).payload, R"({"more":true})");

  // TERMINATE with a payload: the message, then the close.
  const std::vector<Action> last = connection.OnMessage(
      ClientFrame(MessageType::kApplicationMessage, kFlagTerminateStream, 1, {}, "bye"));
  ASSERT_EQ(last.size(), 2u);
  ASSERT_TRUE(std::holds_alternative<StreamMessage>(last[0]));
  EXPECT_EQ(std::get<StreamMessage>(last[0]).payload, "bye");
  ASSERT_TRUE(std::holds_alternative<StreamClosed>(last[1]));
  EXPECT_FALSE(connection.IsStreamOpen(1));
}

TEST(StreamingTest, FirstMessageWithTerminateOpensAndCloses) {
  RpcConnection connection = Connected();
  const std::vector<Action> actions =
      connection.OnMessage(Request(1, kPublish, "{}", kFlagTerminateStream));
  ASSERT_EQ(actions.size(), 2u);
  ASSERT_TRUE(std::holds_alternative<OpenStream>(actions[0]));
  ASSERT_TRUE(std::holds_alternative<StreamClosed>(actions[1]));
  EXPECT_FALSE(connection.IsStreamOpen(1));
  EXPECT_TRUE(connection.Respond(1, "r", "{}", true).empty());
  EXPECT_EQ(connection.OnMessage(Request(2, kPublish)).size(), 1u);
}

TEST(StreamIdTest, FirstStreamIsOne) {
  RpcConnection connection = Connected();
  EXPECT_THAT(ExpectProtocolError(connection.OnMessage(Request(2, kPublish))),
              HasSubstr("must be 1"));
}

TEST(StreamIdTest, EachNewStreamIsTheNextId) {
  RpcConnection connection = Connected();
  ASSERT_EQ(connection.OnMessage(Request(1, kPublish)).size(), 1u);
  ASSERT_EQ(connection.OnMessage(Request(2, kPublish)).size(), 1u);
  EXPECT_THAT(ExpectProtocolError(connection.OnMessage(Request(4, kPublish))),
              HasSubstr("must be 3"));
}

TEST(StreamIdTest, NegativeStreamIsAProtocolError) {
  RpcConnection connection = Connected();
  ExpectProtocolError(connection.OnMessage(Request(-1, kPublish)));
  RpcConnection terminating = Connected();
  ExpectProtocolError(terminating.OnMessage(Terminate(std::numeric_limits<std::int32_t>::min())));
}

TEST(StreamIdTest, NewStreamNeedsAnOperation) {
  for (const Message& m : {ClientFrame(MessageType::kApplicationMessage, 0, 1), Request(1, ""),
                           ClientFrame(MessageType::kApplicationMessage, 0, 1,
                                       {Header{"operation", ByteBuffer{"aws.greengrass#X"}}})}) {
    RpcConnection connection = Connected();
    EXPECT_THAT(ExpectProtocolError(connection.OnMessage(m)), HasSubstr("operation"));
  }
}

TEST(StreamIdTest, ClientsSendOnlyApplicationMessagesOnStreams) {
  for (std::int32_t type : {1, 2, 4, 6}) {
    RpcConnection fresh = Connected();
    ExpectProtocolError(fresh.OnMessage(ClientFrame(static_cast<MessageType>(type), 0, 1,
                                                    {StringHeader(kOperationHeader, kPublish)})));
    RpcConnection open = Connected();
    ASSERT_EQ(open.OnMessage(Request(1, kSubscribe)).size(), 1u);
    ExpectProtocolError(open.OnMessage(ClientFrame(static_cast<MessageType>(type), 0, 1)));
  }
}

TEST(StreamLimitTest, OpeningPastTheLimitIsAProtocolError) {
  RpcConnection connection = Connected(/*max_open_streams=*/2);
  ASSERT_EQ(connection.OnMessage(Request(1, kSubscribe)).size(), 1u);
  ASSERT_EQ(connection.OnMessage(Request(2, kSubscribe)).size(), 1u);
  // Closing one makes room.
  ASSERT_EQ(connection.OnMessage(Terminate(1)).size(), 1u);
  ASSERT_EQ(connection.OnMessage(Request(3, kSubscribe)).size(), 1u);
  EXPECT_EQ(connection.OpenStreamCount(), 2u);
  EXPECT_THAT(ExpectProtocolError(connection.OnMessage(Request(4, kSubscribe))),
              HasSubstr("too many open streams"));
}

TEST(StreamLimitTest, DefaultLimit) {
  RpcConnection connection = Connected();
  for (std::int32_t id = 1; id <= static_cast<std::int32_t>(kMaxOpenStreams); ++id) {
    ASSERT_EQ(connection.OnMessage(Request(id, kSubscribe)).size(), 1u) << id;
  }
  EXPECT_EQ(connection.OpenStreamCount(), kMaxOpenStreams);
  ExpectProtocolError(
      connection.OnMessage(Request(static_cast<std::int32_t>(kMaxOpenStreams) + 1, kSubscribe)));
}

TEST(StreamLimitTest, AnsweredRequestsDoNotCount) {
  RpcConnection connection = Connected(/*max_open_streams=*/1);
  for (std::int32_t id = 1; id <= 10; ++id) {
    ASSERT_EQ(connection.OnMessage(Request(id, kPublish)).size(), 1u);
    ASSERT_EQ(connection.Respond(id, "r", "{}", true).size(), 1u);
  }
  EXPECT_EQ(connection.OpenStreamCount(), 0u);
}

}  // namespace
}  // namespace lichen::ipc
