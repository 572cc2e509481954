#include "ipc/pubsub.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <future>
#include <thread>
#include <tuple>

#include "ipc/authorization.h"
#include "ipc/cloud_offline.h"
#include "ipc/event_stream.h"
#include "ipc/server.h"

namespace lichen::ipc {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using ::testing::HasSubstr;

// --- The broker alone ---

TEST(TopicTest, FiltersMatchLikeTheSpecSays) {
  struct Case {
    std::string_view filter;
    std::string_view topic;
    bool matches;
  };
  const std::vector<Case> cases = {
      {"a/b", "a/b", true},      {"a/b", "a/b/c", false},
      {"a/b", "a", false},       {"a/b", "a/B", false},
      {"a/+", "a/b", true},      {"a/+", "a/", true},  // an empty level is a level
      {"a/+", "a/b/c", false},   {"a/+", "a", false},
      {"+/b", "a/b", true},      {"+", "a", true},
      {"+", "a/b", false},       {"+/+", "/", true},
      {"a/+/c", "a/b/c", true},  {"a/+/c", "a/b/d", false},
      {"a/#", "a/b", true},      {"a/#", "a/b/c/d", true},
      {"a/#", "a", false},  // `#` is one or more levels
      {"a/#", "a/", true},       {"a/#", "b/c", false},
      {"#", "a", true},          {"#", "a/b/c", true},
      {"+/#", "a/b", true},      {"+/#", "a", false},
      {"a+/b", "a+/b", true},  // not whole levels: plain characters
      {"a+/b", "ax/b", false},   {"a#", "a#", true},
      {"a/#/c", "a/b/c", false},  // `#` not last: a plain level
      {"a/*", "a/b", false},      // `*` is never a wildcard in a filter
      {"a/*", "a/*", true},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(TopicMatches(c.filter, c.topic), c.matches) << c.filter << " vs " << c.topic;
  }
}

TEST(TopicTest, WildcardFiltersDefaultToMessagesFromOthers) {
  for (auto f : {"a/+", "+", "a/#", "#", "+/b", "a/+/c"}) {
    EXPECT_TRUE(IsWildcardFilter(f)) << f;
    EXPECT_EQ(DefaultReceiveMode(f), ReceiveMode::kMessagesFromOthers) << f;
  }
  for (auto f : {"a/b", "a+", "a#", "a/#/b", "*", "a/*"}) {
    EXPECT_FALSE(IsWildcardFilter(f)) << f;
    EXPECT_EQ(DefaultReceiveMode(f), ReceiveMode::kAllMessages) << f;
  }
  EXPECT_EQ(ParseReceiveMode("RECEIVE_ALL_MESSAGES"), ReceiveMode::kAllMessages);
  EXPECT_EQ(ParseReceiveMode("RECEIVE_MESSAGES_FROM_OTHERS"), ReceiveMode::kMessagesFromOthers);
  EXPECT_EQ(ParseReceiveMode("receive_all_messages"), std::nullopt);
  EXPECT_EQ(ToString(ReceiveMode::kMessagesFromOthers), "RECEIVE_MESSAGES_FROM_OTHERS");
}

TEST(TopicTest, PublishTopicsHaveNoWildcards) {
  EXPECT_TRUE(ValidatePublishTopic("a/b"));
  for (auto t : {"", "a/+", "a/#", "a*", "+", "#", "x+y"})
    EXPECT_FALSE(ValidatePublishTopic(t)) << t;
  EXPECT_FALSE(ValidatePublishTopic(std::string(kMaxTopicSize + 1, 'a')));
  EXPECT_TRUE(ValidateSubscribeFilter("a/#"));
  EXPECT_FALSE(ValidateSubscribeFilter(""));
  EXPECT_FALSE(ValidateSubscribeFilter(std::string(kMaxTopicSize + 1, 'a')));
}

TEST(Base64Test, EncodesAndChecksPaddedBase64) {
  EXPECT_EQ(Base64Encode(""), "");
  EXPECT_EQ(Base64Encode("f"), "Zg==");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(Base64Encode("foo"), "Zm9v");
  EXPECT_EQ(Base64Encode("foob"), "Zm9vYg==");
  EXPECT_EQ(Base64Encode(std::string("\0\xff\xfe", 3)), "AP/+");
  for (auto ok : {"", "Zg==", "Zm8=", "Zm9v", "AP/+"}) EXPECT_TRUE(IsBase64(ok)) << ok;
  for (auto bad : {"Zg", "Zg=", "Z===", "Zm9v!A==", "Zm 9v", "=Zm9"}) {
    EXPECT_FALSE(IsBase64(bad)) << bad;
  }
}

// Records the events one subscription receives.
struct Sink {
  std::vector<Json> events;
  Delivery answer = Delivery::kDelivered;
  PubSub::Deliver deliver() {
    return [this](const Json& event, const std::string&) {
      events.push_back(event);
      return answer;
    };
  }
};

TEST(PubSubTest, DeliversToMatchingSubscriptionsOnly) {
  PubSub ps;
  Sink exact, plus, hash, other;
  ps.Subscribe("A", "sensors/1/temp", std::nullopt, exact.deliver());
  ps.Subscribe("A", "sensors/+/temp", std::nullopt, plus.deliver());
  ps.Subscribe("A", "sensors/#", std::nullopt, hash.deliver());
  ps.Subscribe("A", "actuators/1", std::nullopt, other.deliver());

  auto outcome = ps.Publish("B", "sensors/1/temp", PubSubMessage::FromJson({{"v", 21.5}}));
  ASSERT_TRUE(outcome);
  EXPECT_EQ(outcome->delivered, 3u);
  EXPECT_EQ(outcome->dropped, 0u);
  ASSERT_EQ(exact.events.size(), 1u);
  EXPECT_EQ(exact.events[0],
            Json::parse(
                R"({"jsonMessage":{"message":{"v":21.5},"context":{"topic":"sensors/1/temp"}}})"));
  EXPECT_EQ(plus.events.size(), 1u);
  EXPECT_EQ(hash.events.size(), 1u);
  EXPECT_TRUE(other.events.empty());

  ASSERT_TRUE(ps.Publish("B", "sensors/2/humidity", PubSubMessage::FromBytes("\x01\x02")));
  EXPECT_EQ(exact.events.size(), 1u);
  EXPECT_EQ(plus.events.size(), 1u);
  ASSERT_EQ(hash.events.size(), 2u);
  EXPECT_EQ(
      hash.events[1],
      Json::parse(
          R"({"binaryMessage":{"message":"AQI=","context":{"topic":"sensors/2/humidity"}}})"));

  const auto stats = ps.stats();
  EXPECT_EQ(stats.published, 2u);
  EXPECT_EQ(stats.delivered, 4u);
  EXPECT_EQ(stats.dropped, 0u);
  EXPECT_EQ(stats.subscriptions, 4u);
}

TEST(PubSubTest, AMessageWithoutBodyHasNoneInItsEvent) {
  PubSub ps;
  Sink sink;
  ps.Subscribe("A", "t", std::nullopt, sink.deliver());
  ASSERT_TRUE(ps.Publish("B", "t", PubSubMessage{PubSubMessage::Kind::kJson, std::nullopt}));
  ASSERT_EQ(sink.events.size(), 1u);
  EXPECT_EQ(sink.events[0], Json::parse(R"({"jsonMessage":{"context":{"topic":"t"}}})"));
}

TEST(PubSubTest, ReceiveModesFilterTheSubscribersOwnMessages) {
  PubSub ps;
  Sink plain_default, wild_default, plain_others, wild_all;
  ps.Subscribe("A", "t/1", std::nullopt, plain_default.deliver());  // ALL
  ps.Subscribe("A", "t/+", std::nullopt, wild_default.deliver());   // FROM_OTHERS
  ps.Subscribe("A", "t/1", ReceiveMode::kMessagesFromOthers, plain_others.deliver());
  ps.Subscribe("A", "t/#", ReceiveMode::kAllMessages, wild_all.deliver());

  ASSERT_TRUE(ps.Publish("A", "t/1", PubSubMessage::FromJson(1)));
  EXPECT_EQ(plain_default.events.size(), 1u);
  EXPECT_EQ(wild_default.events.size(), 0u);
  EXPECT_EQ(plain_others.events.size(), 0u);
  EXPECT_EQ(wild_all.events.size(), 1u);

  ASSERT_TRUE(ps.Publish("B", "t/1", PubSubMessage::FromJson(2)));
  EXPECT_EQ(plain_default.events.size(), 2u);
  EXPECT_EQ(wild_default.events.size(), 1u);
  EXPECT_EQ(plain_others.events.size(), 1u);
  EXPECT_EQ(wild_all.events.size(), 2u);

  auto info = ps.subscriptions();
  ASSERT_EQ(info.size(), 4u);
  EXPECT_EQ(info[1].filter, "t/+");
  EXPECT_EQ(info[1].mode, ReceiveMode::kMessagesFromOthers);
  EXPECT_EQ(info[0].mode, ReceiveMode::kAllMessages);
}

TEST(PubSubTest, UnsubscribeStopsDelivery) {
  PubSub ps;
  Sink a, b, w;
  auto ida = ps.Subscribe("X", "t", std::nullopt, a.deliver());
  ps.Subscribe("X", "t", std::nullopt, b.deliver());
  auto idw = ps.Subscribe("X", "#", ReceiveMode::kAllMessages, w.deliver());
  ps.Unsubscribe(ida);
  ps.Unsubscribe(idw);
  ps.Unsubscribe(idw);    // twice: ignored
  ps.Unsubscribe(12345);  // unknown: ignored
  ASSERT_TRUE(ps.Publish("Y", "t", PubSubMessage::FromJson("m")));
  EXPECT_TRUE(a.events.empty());
  EXPECT_TRUE(w.events.empty());
  EXPECT_EQ(b.events.size(), 1u);
  EXPECT_EQ(ps.stats().subscriptions, 1u);
  EXPECT_FALSE(ps.subscription(ida));
}

TEST(PubSubTest, CountsDropsPerSubscriptionAndRemovesGoneOnes) {
  PubSub ps;
  Sink slow, gone, fine;
  slow.answer = Delivery::kDropped;
  gone.answer = Delivery::kGone;
  auto id_slow = ps.Subscribe("A", "t", std::nullopt, slow.deliver());
  auto id_gone = ps.Subscribe("A", "t", std::nullopt, gone.deliver());
  auto id_fine = ps.Subscribe("A", "t", std::nullopt, fine.deliver());
  for (int i = 0; i < 3; ++i) {
    auto outcome = ps.Publish("B", "t", PubSubMessage::FromJson(i));
    ASSERT_TRUE(outcome);
    EXPECT_EQ(outcome->delivered, 1u);
    EXPECT_EQ(outcome->dropped, 1u);
  }
  EXPECT_EQ(gone.events.size(), 1u);  // asked once, then removed
  EXPECT_FALSE(ps.subscription(id_gone));
  EXPECT_EQ(ps.subscription(id_slow)->dropped, 3u);
  EXPECT_EQ(ps.subscription(id_slow)->delivered, 0u);
  EXPECT_EQ(ps.subscription(id_fine)->delivered, 3u);
  EXPECT_EQ(ps.stats().dropped, 3u);
  EXPECT_EQ(ps.stats().delivered, 3u);
}

TEST(PubSubTest, DeliverMayChangeSubscriptions) {
  PubSub ps;
  Sink later;
  PubSub::SubscriptionId second = 0;
  int first_calls = 0;
  auto first = ps.Subscribe("A", "t", std::nullopt, [&](const Json&, const std::string&) {
    ++first_calls;
    ps.Unsubscribe(second);  // removed before its turn: not called
    ps.Subscribe("A", "t", std::nullopt, later.deliver());
    return Delivery::kDelivered;
  });
  second = ps.Subscribe("A", "t", std::nullopt, [](const Json&, const std::string&) {
    ADD_FAILURE() << "an unsubscribed subscription was called";
    return Delivery::kDelivered;
  });
  ASSERT_TRUE(ps.Publish("B", "t", PubSubMessage::FromJson(1)));
  EXPECT_EQ(first_calls, 1);
  EXPECT_TRUE(later.events.empty());  // subscribed during the publish: the next one
  ps.Unsubscribe(first);
  ASSERT_TRUE(ps.Publish("B", "t", PubSubMessage::FromJson(2)));
  EXPECT_EQ(later.events.size(), 1u);
}

TEST(PubSubTest, RefusesBadTopicsAndOversizedMessages) {
  PubSub ps;
  Sink sink;
  ps.Subscribe("A", "#", ReceiveMode::kAllMessages, sink.deliver());
  auto r = ps.Publish("A", "a/+", PubSubMessage::FromJson(1));
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, HasSubstr("wildcard"));
  r = ps.Publish("A", "big", PubSubMessage::FromBytes(std::string(13 * 1024 * 1024, 'x')));
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, HasSubstr("too large"));
  EXPECT_TRUE(sink.events.empty());
  EXPECT_EQ(ps.stats().published, 0u);
}

TEST(PubSubTest, ManySubscribersOnOtherTopicsDoNotGetInTheWay) {
  PubSub ps;
  int others = 0;
  for (int i = 0; i < 20000; ++i) {
    ps.Subscribe("A", "other/" + std::to_string(i), std::nullopt,
                 [&others](const Json&, const std::string&) {
                   ++others;
                   return Delivery::kDelivered;
                 });
  }
  Sink sink;
  ps.Subscribe("A", "target", std::nullopt, sink.deliver());
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 20000; ++i)
    ASSERT_TRUE(ps.Publish("B", "target", PubSubMessage::FromJson(i)));
  // A scan of every subscriber per publish would be 400 million steps.
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
  EXPECT_EQ(sink.events.size(), 20000u);
  EXPECT_EQ(others, 0);
  ASSERT_TRUE(ps.Publish("B", "other/7", PubSubMessage::FromJson(0)));
  EXPECT_EQ(others, 1);
}

// --- Over the wire ---

constexpr std::string_view kPublishResponse = "aws.greengrass#PublishToTopicResponse";
constexpr std::string_view kSubscribeResponse = "aws.greengrass#SubscribeToTopicResponse";

// A blocking test client speaking the wire protocol with the project's own codec.
class Client {
 public:
  explicit Client(const std::string& path) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  ~Client() { Close(); }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  void Send(int32_t type, int32_t flags, int32_t stream, std::vector<Header> extra,
            const std::string& payload) {
    Message m;
    m.headers = {{":message-type", type}, {":message-flags", flags}, {":stream-id", stream}};
    for (auto& h : extra) m.headers.push_back(std::move(h));
    m.payload = payload;
    auto bytes = Encode(m);
    ASSERT_TRUE(bytes);
    SendRaw(*bytes);
  }
  void SendRaw(const std::string& bytes) {
    size_t off = 0;
    while (off < bytes.size()) {
      ssize_t n = ::write(fd_, bytes.data() + off, bytes.size() - off);
      ASSERT_GT(n, 0);
      off += static_cast<size_t>(n);
    }
  }
  // Sends CONNECT and waits for an accepting CONNECT_ACK.
  bool Connect(const std::string& token) {
    if (!connected_) return false;
    Send(4, 0, 0, {{":version", std::string("0.1.0")}}, "{\"authToken\":\"" + token + "\"}");
    auto ack = Read();
    return ack && ack->GetInt32(":message-type") == 5 && ack->GetInt32(":message-flags") == 1;
  }
  void Request(int32_t stream, std::string_view operation, const Json& payload) {
    Send(0, 0, stream, {{"operation", std::string(operation)}}, payload.dump());
  }
  // Request, then the first message that comes back.
  std::optional<Message> Call(int32_t stream, std::string_view operation, const Json& payload) {
    Request(stream, operation, payload);
    return Read();
  }
  // The next message, or nullopt on timeout or a closed connection.
  std::optional<Message> Read(std::chrono::milliseconds limit = 5s) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (true) {
      auto next = decoder_.Next();
      if (next && next->has_value()) return std::move(**next);
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return std::nullopt;
      ssize_t n = ::read(fd_, buf_.data(), buf_.size());
      if (n <= 0) return std::nullopt;
      decoder_.Feed(std::string_view(buf_.data(), static_cast<size_t>(n)));
    }
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  Decoder decoder_;
  std::array<char, 64 * 1024> buf_{};
};

Json Publish(std::string_view topic, const Json& message) {
  return {{"topic", topic}, {"publishMessage", {{"jsonMessage", {{"message", message}}}}}};
}
Json PublishBinary(std::string_view topic, std::string_view base64) {
  return {{"topic", topic}, {"publishMessage", {{"binaryMessage", {{"message", base64}}}}}};
}
Json Subscribe(std::string_view topic) { return {{"topic", topic}}; }

void ExpectResponse(const std::optional<Message>& m, std::string_view model, bool terminate) {
  ASSERT_TRUE(m);
  EXPECT_EQ(m->GetInt32(":message-type"), 0) << m->payload;
  EXPECT_EQ(m->GetInt32(":message-flags"), terminate ? 2 : 0);
  EXPECT_EQ(m->GetString("service-model-type"), std::string(model)) << m->payload;
  EXPECT_EQ(m->GetString(":content-type"), "application/json");
  EXPECT_EQ(Json::parse(m->payload), Json::object());
}

void ExpectError(const std::optional<Message>& m, std::string_view shape,
                 std::string_view message_part = "") {
  ASSERT_TRUE(m);
  EXPECT_EQ(m->GetInt32(":message-type"), 1);
  EXPECT_EQ(m->GetInt32(":message-flags"), 2);
  EXPECT_EQ(m->GetString("service-model-type"), "aws.greengrass#" + std::string(shape));
  auto body = Json::parse(m->payload);
  EXPECT_EQ(body["_errorCode"], shape);
  EXPECT_EQ(body["_service"], "aws.greengrass#GreengrassCoreIPC");
  EXPECT_THAT(body["message"].get<std::string>(), HasSubstr(std::string(message_part)));
}

class PubSubServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    socket_ =
        (fs::temp_directory_path() / ("lichen-pubsub-" + std::to_string(::getpid()) + ".sock"))
            .string();
    const auto everything = Json::parse(R"({"aws.greengrass.ipc.pubsub": {"all": {
      "operations": ["*"], "resources": ["*"]}}})");
    for (auto component : {"com.example.Sub", "com.example.Sub2", "com.example.Pub"}) {
      ASSERT_TRUE(authorizer_.SetPolicies(component, everything).empty());
    }
    ASSERT_TRUE(authorizer_
                    .SetPolicies("com.example.Pub", Json::parse(R"({
      "aws.greengrass.ipc.pubsub": {"all": {"operations": ["*"], "resources": ["*"]}},
      "aws.greengrass.ipc.mqttproxy": {"iot": {
        "operations": ["*"], "resources": ["devices/+/telemetry"]}}})"))
                    .empty());
    ASSERT_TRUE(authorizer_
                    .SetPolicies("com.example.Limited", Json::parse(R"({
      "aws.greengrass.ipc.pubsub": {"pub": {
        "operations": ["aws.greengrass#PublishToTopic"], "resources": ["allowed/*"]}}})"))
                    .empty());
    server_ = std::make_unique<IpcServer>(
        io_, [](const std::string& token) -> std::optional<std::string> {
          if (token == "tok-sub") return std::string("com.example.Sub");
          if (token == "tok-sub2") return std::string("com.example.Sub2");
          if (token == "tok-pub") return std::string("com.example.Pub");
          if (token == "tok-limited") return std::string("com.example.Limited");
          return std::nullopt;
        });
    RegisterPubSub(*server_, pubsub_, authorizer_);
    RegisterCloudOperationsOffline(*server_, authorizer_);
    ASSERT_TRUE(server_->Listen(socket_));
    thread_ = std::thread([this] {
      auto guard = boost::asio::make_work_guard(io_);
      io_.run();
    });
  }
  void TearDown() override {
    boost::asio::post(io_, [this] { server_->Close(); });
    io_.stop();
    thread_.join();
    server_.reset();
  }

  // Runs `f` on the loop thread (where the broker lives) and returns its result.
  template <typename F>
  auto OnLoop(F f) -> decltype(f()) {
    std::promise<decltype(f())> done;
    boost::asio::post(io_, [&] { done.set_value(f()); });
    return done.get_future().get();
  }
  size_t Subscriptions() {
    return OnLoop([this] { return pubsub_.stats().subscriptions; });
  }
  bool WaitForSubscriptions(size_t n) {
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (Subscriptions() == n) return true;
      std::this_thread::sleep_for(5ms);
    }
    return false;
  }
  std::unique_ptr<Client> Connected(const std::string& token) {
    auto c = std::make_unique<Client>(socket_);
    EXPECT_TRUE(c->Connect(token)) << token;
    return c;
  }

  boost::asio::io_context io_;
  Authorizer authorizer_;
  PubSub pubsub_;
  std::unique_ptr<IpcServer> server_;
  std::thread thread_;
  std::string socket_;
};

TEST_F(PubSubServerTest, SubscriberGetsJsonMessagesFromAnotherConnection) {
  auto sub = Connected("tok-sub");
  ExpectResponse(sub->Call(1, kSubscribeToTopic, Subscribe("greetings")), kSubscribeResponse,
                 /*terminate=*/false);
  auto pub = Connected("tok-pub");
  ExpectResponse(pub->Call(1, kPublishToTopic, Publish("greetings", {{"hello", "world"}})),
                 kPublishResponse, /*terminate=*/true);

  auto event = sub->Read();
  ASSERT_TRUE(event);
  EXPECT_EQ(event->GetInt32(":message-type"), 0);
  EXPECT_EQ(event->GetInt32(":message-flags"), 0);
  EXPECT_EQ(event->GetInt32(":stream-id"), 1);
  EXPECT_EQ(event->GetString("service-model-type"), std::string(kSubscriptionResponseMessage));
  EXPECT_EQ(event->GetString(":content-type"), "application/json");
  EXPECT_EQ(Json::parse(event->payload), Json::parse(R"({"jsonMessage":{
    "message":{"hello":"world"},"context":{"topic":"greetings"}}})"));
}

// The protocol allows messages up to 16 MiB: one larger than the 8 MiB queue bound still
// reaches a subscriber whose queue is empty.
TEST_F(PubSubServerTest, AMessageLargerThanTheQueueBoundStillReachesAnIdleSubscriber) {
  auto sub = Connected("tok-sub");
  ExpectResponse(sub->Call(1, kSubscribeToTopic, Subscribe("big")), kSubscribeResponse,
                 /*terminate=*/false);
  auto pub = Connected("tok-pub");
  const std::string text(10 * 1024 * 1024, 'x');
  ExpectResponse(pub->Call(1, kPublishToTopic, Publish("big", {{"text", text}})),
                 kPublishResponse, /*terminate=*/true);
  auto event = sub->Read();
  ASSERT_TRUE(event);
  EXPECT_EQ(event->GetString("service-model-type"), std::string(kSubscriptionResponseMessage));
  EXPECT_EQ(Json::parse(event->payload)["jsonMessage"]["message"]["text"].get<std::string>().size(),
            text.size());
}

TEST_F(PubSubServerTest, BinaryMessagesTravelAsBase64) {
  auto sub = Connected("tok-sub");
  ExpectResponse(sub->Call(1, kSubscribeToTopic, Subscribe("bin")), kSubscribeResponse, false);
  auto pub = Connected("tok-pub");
  const std::string b64 = Base64Encode(std::string("\0\x01\xfe\xffpayload", 11));
  ExpectResponse(pub->Call(1, kPublishToTopic, PublishBinary("bin", b64)), kPublishResponse, true);
  auto event = sub->Read();
  ASSERT_TRUE(event);
  EXPECT_EQ(Json::parse(event->payload),
            Json({{"binaryMessage", {{"message", b64}, {"context", {{"topic", "bin"}}}}}}));

  // Malformed messages: PublishToTopic declares only ServiceError for them.
  ExpectError(pub->Call(2, kPublishToTopic, PublishBinary("bin", "not base64!")), "ServiceError",
              "base64");
  ExpectError(pub->Call(3, kPublishToTopic, Json{{"topic", "bin"}}), "ServiceError",
              "publishMessage");
  ExpectError(
      pub->Call(
          4, kPublishToTopic,
          Json{{"topic", "bin"},
               {"publishMessage",
                {{"jsonMessage", {{"message", 1}}}, {"binaryMessage", {{"message", "AA=="}}}}}}),
      "ServiceError", "exactly one");
  EXPECT_FALSE(sub->Read(200ms));  // none of those reached the subscriber
}

// Compact requests are served from their text, others through a Json: the subscriber must
// not be able to tell which.
TEST_F(PubSubServerTest, CompactAndSpacedRequestsGiveTheSameEvents) {
  auto sub = Connected("tok-sub");
  ExpectResponse(sub->Call(1, kSubscribeToTopic, Subscribe("cmp/#")), kSubscribeResponse, false);
  auto pub = Connected("tok-pub");
  int32_t stream = 1;
  auto publish_text = [&](const std::string& text) -> std::string {
    pub->Send(0, 0, stream++, {{"operation", std::string(kPublishToTopic)}}, text);
    ExpectResponse(pub->Read(), kPublishResponse, true);
    auto event = sub->Read();
    EXPECT_TRUE(event);
    return event ? event->payload : "";
  };
  for (const std::string message :
       {R"({"s":1,"t":1234567890123})", R"("text")", R"([1,-2,true,false,{}])", "null",
        R"({"a":"q\"b\\s\n"})", "1.5", R"({"a":1,"a":2})", R"("\u00e9\/")", "-0",
        "12345678901234567890", R"({"k" : [ 1 , 2 ]})"}) {
    for (const std::string topic : {"cmp/1", "cmp/\\u0041"}) {
      const std::string compact = R"({"topic":")" + topic +
                                  R"(","publishMessage":{"jsonMessage":{"message":)" + message +
                                  "}}}";
      const std::string spaced = R"({ "topic": ")" + topic +
                                 R"(", "publishMessage": {"jsonMessage": {"message": )" + message +
                                 "}}}";
      const std::string from_text = publish_text(compact);
      EXPECT_EQ(from_text, publish_text(spaced)) << message;
      // The event is what the general path always wrote.
      Json expected = Json::parse(R"({"jsonMessage":{}})");
      const Json parsed = Json::parse(message);
      if (!parsed.is_null()) expected["jsonMessage"]["message"] = parsed;
      expected["jsonMessage"]["context"]["topic"] = Json::parse("\"" + topic + "\"");
      EXPECT_EQ(from_text, expected.dump()) << message;
    }
  }
  const std::string b64 = Base64Encode("bytes");
  for (const std::string& binary :
       {R"({"message":")" + b64 + "\"}", std::string("{}"), std::string(R"({"message":null})")}) {
    const std::string compact =
        R"({"topic":"cmp/b","publishMessage":{"binaryMessage":)" + binary + "}}";
    const std::string spaced =
        R"({"topic": "cmp/b", "publishMessage": {"binaryMessage": )" + binary + "}}";
    EXPECT_EQ(publish_text(compact), publish_text(spaced)) << binary;
  }
  // A null member counts as absent on both paths.
  pub->Send(0, 0, stream++, {{"operation", std::string(kPublishToTopic)}},
            R"({"topic":"cmp/n","publishMessage":{"jsonMessage":null,"binaryMessage":{}}})");
  ExpectResponse(pub->Read(), kPublishResponse, true);
  auto event = sub->Read();
  ASSERT_TRUE(event);
  EXPECT_EQ(event->payload, R"({"binaryMessage":{"context":{"topic":"cmp/n"}}})");
  // Errors are the general path's.
  pub->Send(0, 0, stream++, {{"operation", std::string(kPublishToTopic)}},
            R"({"topic":"cmp/+","publishMessage":{"jsonMessage":{"message":1}}})");
  ExpectError(pub->Read(), "ServiceError", "wildcard");
  pub->Send(0, 0, stream++, {{"operation", std::string(kPublishToTopic)}},
            R"({"topic":"","publishMessage":{"jsonMessage":{}}})");
  ExpectError(pub->Read(), "ServiceError", "topic is required");
  EXPECT_FALSE(sub->Read(200ms));
}

TEST_F(PubSubServerTest, ErrorsUseOnlyTheShapesEachOperationDeclares) {
  auto pub = Connected("tok-pub");
  int32_t stream = 1;
  for (auto topic : {"a/+", "a/#", "a*b"}) {
    ExpectError(pub->Call(stream++, kPublishToTopic, Publish(topic, 1)), "ServiceError",
                "wildcard");
  }
  ExpectError(pub->Call(stream++, kPublishToTopic, Json{{"publishMessage", {}}}), "ServiceError",
              "topic");
  ExpectError(pub->Call(stream++, kSubscribeToTopic, Json::object()), "InvalidArgumentsError",
              "topic");
  ExpectError(pub->Call(stream++, kSubscribeToTopic, Subscribe("")), "InvalidArgumentsError",
              "empty");
  ExpectError(
      pub->Call(stream++, kSubscribeToTopic, Json{{"topic", "t"}, {"receiveMode", "SOMETIMES"}}),
      "InvalidArgumentsError", "receiveMode");
  EXPECT_EQ(Subscriptions(), 0u);
  // The connection is still fine.
  ExpectResponse(pub->Call(stream++, kPublishToTopic, Publish("ok", 1)), kPublishResponse, true);
}

TEST_F(PubSubServerTest, ReceiveModesOverTheWire) {
  auto a = Connected("tok-sub");
  // Default on a wildcard filter: messages from others only.
  ExpectResponse(a->Call(1, kSubscribeToTopic, Subscribe("room/+")), kSubscribeResponse, false);
  ExpectResponse(a->Call(2, kSubscribeToTopic,
                         Json{{"topic", "room/#"}, {"receiveMode", "RECEIVE_ALL_MESSAGES"}}),
                 kSubscribeResponse, false);

  a->Request(3, kPublishToTopic, Publish("room/1", "mine"));
  auto own = a->Read();  // only the RECEIVE_ALL subscription sees its own message
  ASSERT_TRUE(own);
  EXPECT_EQ(own->GetInt32(":stream-id"), 2);
  ExpectResponse(a->Read(), kPublishResponse, true);

  auto b = Connected("tok-pub");
  ExpectResponse(b->Call(1, kPublishToTopic, Publish("room/1", "theirs")), kPublishResponse, true);
  auto first = a->Read();
  auto second = a->Read();
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first->GetInt32(":stream-id"), 1);
  EXPECT_EQ(second->GetInt32(":stream-id"), 2);
  EXPECT_EQ(Json::parse(first->payload)["jsonMessage"]["message"], "theirs");
  EXPECT_FALSE(a->Read(200ms));
}

TEST_F(PubSubServerTest, EventsNeverPrecedeTheSubscribeResponse) {
  auto pub = Connected("tok-pub");
  std::atomic<bool> stop{false};
  std::thread publisher([&] {
    for (int32_t stream = 1; !stop; ++stream) {
      pub->Request(stream, kPublishToTopic, Publish("race", stream));
      if (!pub->Read()) break;
    }
  });
  for (int i = 0; i < 20; ++i) {
    Client sub(socket_);
    ASSERT_TRUE(sub.Connect("tok-sub"));
    sub.Request(1, kSubscribeToTopic, Subscribe("race"));
    auto first = sub.Read();
    ExpectResponse(first, kSubscribeResponse, false);
    auto event = sub.Read();
    ASSERT_TRUE(event);
    EXPECT_EQ(event->GetString("service-model-type"), std::string(kSubscriptionResponseMessage));
  }
  stop = true;
  publisher.join();
}

TEST_F(PubSubServerTest, ClosingTheStreamStopsDelivery) {
  auto sub = Connected("tok-sub");
  ExpectResponse(sub->Call(1, kSubscribeToTopic, Subscribe("t")), kSubscribeResponse, false);
  auto pub = Connected("tok-pub");
  ExpectResponse(pub->Call(1, kPublishToTopic, Publish("t", 1)), kPublishResponse, true);
  ASSERT_TRUE(sub->Read());
  EXPECT_EQ(Subscriptions(), 1u);

  sub->Send(0, 2, 1, {}, "");  // the client closes the stream
  ASSERT_TRUE(WaitForSubscriptions(0));
  ExpectResponse(pub->Call(2, kPublishToTopic, Publish("t", 2)), kPublishResponse, true);
  EXPECT_FALSE(sub->Read(200ms));
  // The connection itself is still usable.
  ExpectResponse(sub->Call(2, kSubscribeToTopic, Subscribe("t")), kSubscribeResponse, false);
  EXPECT_EQ(Subscriptions(), 1u);
}

TEST_F(PubSubServerTest, AStreamClosedWithItsFirstFrameLeavesNoSubscription) {
  auto sub = Connected("tok-sub");
  sub->Send(0, 2, 1, {{"operation", std::string(kSubscribeToTopic)}}, Subscribe("t").dump());
  ExpectResponse(sub->Call(2, kSubscribeToTopic, Subscribe("u")), kSubscribeResponse, false);
  EXPECT_EQ(Subscriptions(), 1u);
}

TEST_F(PubSubServerTest, DisconnectingUnsubscribesEverything) {
  auto sub = Connected("tok-sub");
  ExpectResponse(sub->Call(1, kSubscribeToTopic, Subscribe("a")), kSubscribeResponse, false);
  ExpectResponse(sub->Call(2, kSubscribeToTopic, Subscribe("b/#")), kSubscribeResponse, false);
  auto other = Connected("tok-sub2");
  ExpectResponse(other->Call(1, kSubscribeToTopic, Subscribe("a")), kSubscribeResponse, false);
  EXPECT_EQ(Subscriptions(), 3u);
  sub->Close();
  ASSERT_TRUE(WaitForSubscriptions(1));
  auto pub = Connected("tok-pub");
  ExpectResponse(pub->Call(1, kPublishToTopic, Publish("a", 1)), kPublishResponse, true);
  EXPECT_TRUE(other->Read());
}

TEST_F(PubSubServerTest, UnauthorizedCallsFailButTheConnectionStays) {
  auto sub = Connected("tok-sub");
  ExpectResponse(sub->Call(1, kSubscribeToTopic, Subscribe("secret")), kSubscribeResponse, false);

  auto limited = Connected("tok-limited");
  ExpectError(limited->Call(1, kPublishToTopic, Publish("secret", 1)), "UnauthorizedError",
              "Principal com.example.Limited is not authorized to perform "
              "aws.greengrass.ipc.pubsub:aws.greengrass#PublishToTopic on resource secret");
  ExpectError(limited->Call(2, kSubscribeToTopic, Subscribe("allowed/x")), "UnauthorizedError",
              "SubscribeToTopic");
  // Authorization comes first, as in the nucleus: no hint about the topic's shape.
  ExpectError(limited->Call(3, kPublishToTopic, Publish("a/+", 1)), "UnauthorizedError");
  ExpectResponse(limited->Call(4, kPublishToTopic, Publish("allowed/x", 1)), kPublishResponse,
                 true);
  EXPECT_FALSE(sub->Read(200ms));  // the refused publish reached nobody

  // A component the authenticator knows but with no policy at all.
  OnLoop([this] {
    authorizer_.Remove("com.example.Sub2");
    return true;
  });
  auto none = Connected("tok-sub2");
  ExpectError(none->Call(1, kSubscribeToTopic, Subscribe("secret")), "UnauthorizedError");
}

TEST_F(PubSubServerTest, ASubscriberThatNeverReadsBlocksNobody) {
  // 320 messages of 64 KiB (base64) = 20 MiB through one topic.
  constexpr int kMessages = 320;
  const std::string filler(48 * 1024 - 9, 'x');
  auto payload = [&](int i) {
    char index[10];
    std::snprintf(index, sizeof(index), "%09d", i);
    return Base64Encode(std::string(index) + filler);
  };
  const size_t event_size =
      Json({{"binaryMessage", {{"message", payload(0)}, {"context", {{"topic", "load"}}}}}})
          .dump()
          .size();

  Client slow(socket_);  // subscribes, then never reads again
  ASSERT_TRUE(slow.Connect("tok-sub"));
  ExpectResponse(slow.Call(1, kSubscribeToTopic, Subscribe("load")), kSubscribeResponse, false);
  auto fast = Connected("tok-sub2");
  ExpectResponse(fast->Call(1, kSubscribeToTopic, Subscribe("load")), kSubscribeResponse, false);

  std::atomic<int> received{0};
  std::atomic<bool> in_order{true};
  std::thread reader([&] {
    while (received < kMessages) {
      auto event = fast->Read(30s);
      if (!event) return;
      auto message =
          Json::parse(event->payload)["binaryMessage"]["message"].get_ref<const std::string&>();
      if (message.compare(0, 12, payload(received).substr(0, 12)) != 0) in_order = false;
      ++received;
    }
  });

  auto pub = Connected("tok-pub");
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kMessages; ++i) {
    auto reply = pub->Call(i + 1, kPublishToTopic, PublishBinary("load", payload(i)));
    ASSERT_TRUE(reply) << "publish " << i << " got no answer";
    ASSERT_EQ(reply->GetString("service-model-type"), std::string(kPublishResponse)) << i;
  }
  const auto publishing = std::chrono::steady_clock::now() - start;
  reader.join();
  EXPECT_LT(publishing, 30s);  // seconds at worst; a blocked publisher would never finish
  EXPECT_EQ(received, kMessages);
  EXPECT_TRUE(in_order);

  auto [stats, subs, server_dropped] = OnLoop([this] {
    return std::make_tuple(pubsub_.stats(), pubsub_.subscriptions(), server_->dropped_events());
  });
  ASSERT_EQ(subs.size(), 2u);
  const auto& slow_sub = subs[0].component == "com.example.Sub" ? subs[0] : subs[1];
  const auto& fast_sub = subs[0].component == "com.example.Sub" ? subs[1] : subs[0];
  EXPECT_EQ(stats.published, static_cast<uint64_t>(kMessages));
  EXPECT_EQ(fast_sub.delivered, static_cast<uint64_t>(kMessages));
  EXPECT_EQ(fast_sub.dropped, 0u);
  EXPECT_GT(slow_sub.dropped, 0u);
  EXPECT_EQ(slow_sub.delivered + slow_sub.dropped, static_cast<uint64_t>(kMessages));
  EXPECT_EQ(stats.dropped, slow_sub.dropped);
  EXPECT_EQ(server_dropped, slow_sub.dropped);
  // What the daemon accepted for the slow reader is all still held (in its queue or the
  // kernel's socket buffer), since nothing was read: it must stay near the queue bound.
  EXPECT_LE(slow_sub.delivered * event_size, kMaxQueuedBytesPerConnection + 2 * 1024 * 1024)
      << slow_sub.delivered << " events of " << event_size << " bytes";
}

// Replies are not checked against the queue bound as events are: a client that pipelines
// requests and reads no answers is stopped being served once its queue is over
// kMaxQueuedBytesPerConnection, whatever one read of its socket brought in (up to 64 KiB of
// requests), and is served the rest once it reads again.
TEST_F(PubSubServerTest, RepliesToAClientThatDoesNotReadStayWithinTheQueueBound) {
  constexpr size_t kReplySize = 256 * 1024;
  auto served = std::make_shared<std::atomic<int>>(0);
  OnLoop([&] {
    server_->Register("aws.greengrass#Big", [served](std::shared_ptr<Call> call) {
      ++*served;
      call->Respond(Json{{"big", std::string(kReplySize, 'b')}});
    });
    return true;
  });
  auto c = Connected("tok-pub");
  constexpr int kRequests = 150;  // about 15 KiB of requests in one write: full reads
  std::string requests;
  for (int i = 1; i <= kRequests; ++i) {
    Message m;
    m.headers = {{":message-type", 0},
                 {":message-flags", 0},
                 {":stream-id", i},
                 {"operation", std::string("aws.greengrass#Big")}};
    m.payload = "{}";
    requests += *Encode(m);
  }
  c->SendRaw(requests);
  // The server serves what the bound allows, then waits (slowly under sanitizers: wait for
  // the count to settle).
  for (int last = -1, rounds = 0; served->load() != last && rounds < 60; ++rounds) {
    last = served->load();
    std::this_thread::sleep_for(500ms);
  }
  // 32 replies fill the 8 MiB queue; one more goes over it; one may be in the socket.
  EXPECT_LE(served->load(), static_cast<int>(kMaxQueuedBytesPerConnection / kReplySize) + 3);
  for (int i = 1; i <= kRequests; ++i) {
    auto reply = c->Read();
    ASSERT_TRUE(reply) << i;
    EXPECT_EQ(reply->GetInt32(":stream-id"), i);
    EXPECT_EQ(reply->GetString("service-model-type"), "aws.greengrass#BigResponse");
  }
  EXPECT_EQ(served->load(), kRequests);
}

// The cloud operations sit beside pubsub in the server: without a cloud connection they
// answer ServiceError, but only to a caller its policies allow (the same check first).
TEST_F(PubSubServerTest, CloudOperationsSayTheCloudIsUnreachableAfterAuthorization) {
  auto pub = Connected("tok-pub");
  ExpectError(pub->Call(1, "aws.greengrass#PublishToIoTCore",
                        {{"topicName", "devices/a/telemetry"}, {"qos", "0"}}),
              "ServiceError", "no connection to AWS IoT Core");
  ExpectError(pub->Call(2, "aws.greengrass#SubscribeToIoTCore",
                        {{"topicName", "devices/a/telemetry"}, {"qos", "1"}}),
              "ServiceError", "no connection to AWS IoT Core");
  ExpectError(pub->Call(3, "aws.greengrass#PublishToIoTCore",
                        {{"topicName", "devices/a/b/telemetry"}, {"qos", "0"}}),
              "UnauthorizedError", "devices/a/b/telemetry");
  ExpectError(pub->Call(4, "aws.greengrass#GetSecretValue", {{"secretId", "db"}}),
              "UnauthorizedError", "aws.greengrass.SecretManager");
  // The connection is still usable after the refusals.
  ExpectResponse(pub->Call(5, kPublishToTopic, Publish("t", {{"n", 1}})),
                 "aws.greengrass#PublishToTopicResponse", true);
}

}  // namespace
}  // namespace lichen::ipc
