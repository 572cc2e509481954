// Local publish/subscribe between components (PublishToTopic, SubscribeToTopic): the
// broker, and RegisterPubSub, which serves both operations on an IpcServer.
//
// Behaviour follows the spec ("Payloads", "Authorization", back-pressure) and, where it
// is silent, the Greengrass nucleus (builtin/services/pubsub/PubSubIPCEventStreamAgent,
// SubscriptionTrie):
// - Topics are split into levels at '/'. In a subscription filter, `+` as a whole level
//   matches exactly one level and `#` as the whole last level matches one or more
//   trailing levels (`a/#` matches `a/b` and `a/b/c`, not `a`; `#` matches everything).
//   Anywhere else `+`, `#` and `*` are plain characters, as in the nucleus's trie.
// - A published topic must not contain `+`, `#` or `*` at all (the nucleus refuses it).
// - Receive modes: RECEIVE_MESSAGES_FROM_OTHERS skips messages the subscribing component
//   published itself. Default: FROM_OTHERS when the filter has a wildcard (as above),
//   RECEIVE_ALL_MESSAGES otherwise.
// - Every event is handed to the subscriber's Deliver callback and never waits: the IPC
//   one queues it on the subscriber's connection, whose write queue is bounded
//   (kMaxQueuedBytesPerConnection). An event that does not fit is dropped and counted,
//   per subscription and in stats(), so a slow subscriber slows neither the publisher
//   nor other subscribers, and costs bounded memory.
// - Publishing looks up subscriptions to the exact topic in a hash map and matches only
//   the wildcard filters one by one: thousands of subscribers on other plain topics cost
//   nothing.
//
// Not thread-safe: everything runs on the daemon's loop thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "recipe/source_tree.h"

namespace lichen::ipc {

using Json = recipe::Json;

class IpcServer;
class Authorizer;

inline constexpr std::string_view kPublishToTopic = "aws.greengrass#PublishToTopic";
inline constexpr std::string_view kSubscribeToTopic = "aws.greengrass#SubscribeToTopic";
inline constexpr std::string_view kSubscriptionResponseMessage =
    "aws.greengrass#SubscriptionResponseMessage";

// Longest topic or filter accepted, in bytes (MQTT's limit). Not in the references: it
// bounds what one subscription can make the daemon keep.
inline constexpr size_t kMaxTopicSize = 65535;

enum class ReceiveMode { kAllMessages, kMessagesFromOthers };

// "RECEIVE_ALL_MESSAGES" / "RECEIVE_MESSAGES_FROM_OTHERS"; nullopt for anything else.
std::optional<ReceiveMode> ParseReceiveMode(std::string_view text);
std::string_view ToString(ReceiveMode mode);

// Whether `filter` has a `+` level or ends with a `#` level.
bool IsWildcardFilter(std::string_view filter);
ReceiveMode DefaultReceiveMode(std::string_view filter);
// Whether `topic` (no wildcards) is matched by `filter`.
bool TopicMatches(std::string_view filter, std::string_view topic);

Result<void> ValidatePublishTopic(std::string_view topic);
Result<void> ValidateSubscribeFilter(std::string_view filter);

// One published message, as events carry it.
struct PubSubMessage {
  enum class Kind { kJson, kBinary };
  Kind kind = Kind::kJson;
  // kJson: the message (any JSON value); kBinary: the bytes in padded base64. nullopt when
  // the publisher sent no "message" (the event then has none either, as in the nucleus).
  std::optional<Json> message;
  // Instead of `message`: its JSON text when it is canonical (canonical_json.h), so it is
  // copied into the event as it is. Must outlive the Publish call.
  std::string_view message_text = {};

  static PubSubMessage FromJson(Json value);
  static PubSubMessage FromBytes(std::string_view bytes);
};

std::string Base64Encode(std::string_view bytes);
// Padded standard base64 only (what the SDK clients send).
bool IsBase64(std::string_view text);

// What happened to one event handed to a subscriber.
enum class Delivery {
  kDelivered,
  kDropped,  // the subscriber is too slow: its queue is full
  kGone,     // the subscriber is closed: the subscription is removed
};

struct PubSubStats {
  uint64_t published = 0;  // messages accepted
  uint64_t delivered = 0;  // events handed to subscribers
  uint64_t dropped = 0;    // events dropped because a subscriber's queue was full
  size_t subscriptions = 0;
};

struct SubscriptionInfo {
  uint64_t id = 0;
  std::string component;
  std::string filter;
  ReceiveMode mode = ReceiveMode::kAllMessages;
  uint64_t delivered = 0;
  uint64_t dropped = 0;
};

class PubSub {
 public:
  using SubscriptionId = uint64_t;
  // Gets the event payload ({jsonMessage|binaryMessage: {message, context: {topic}}}),
  // also as JSON text, serialised once for all subscribers. Must not block.
  using Deliver = std::function<Delivery(const Json& event, const std::string& text)>;
  // The same with the text only: no Json event is built when no subscriber asks for one.
  using DeliverText = std::function<Delivery(const std::string& text)>;

  PubSub() = default;
  PubSub(const PubSub&) = delete;
  PubSub& operator=(const PubSub&) = delete;

  // `filter` must pass ValidateSubscribeFilter; `mode` nullopt = DefaultReceiveMode.
  SubscriptionId Subscribe(std::string component, std::string filter,
                           std::optional<ReceiveMode> mode, Deliver deliver);
  SubscriptionId Subscribe(std::string component, std::string filter,
                           std::optional<ReceiveMode> mode, DeliverText deliver);
  // Unknown or already removed ids are ignored.
  void Unsubscribe(SubscriptionId id);

  struct Outcome {
    size_t delivered = 0;
    size_t dropped = 0;
  };
  // Hands the message to every matching subscription (in subscription order) and returns
  // what became of it. An Error when the topic is invalid or the event would not fit in
  // one frame (nothing is delivered then).
  Result<Outcome> Publish(const std::string& source_component, std::string_view topic,
                          const PubSubMessage& message);

  PubSubStats stats() const;
  std::optional<SubscriptionInfo> subscription(SubscriptionId id) const;
  std::vector<SubscriptionInfo> subscriptions() const;

  // Expires when this PubSub is destroyed: callbacks that may outlive it (a stream's
  // close callback) check it before calling back.
  std::weak_ptr<void> lifetime() const { return alive_; }

 private:
  struct Subscription {
    SubscriptionInfo info;
    Deliver deliver;
    DeliverText deliver_text;  // instead of deliver
    bool wildcard = false;
    std::vector<std::string> levels;  // wildcard filters only
    bool active = true;
  };

  std::map<SubscriptionId, std::shared_ptr<Subscription>> by_id_;
  struct TopicHash {
    using is_transparent = void;
    size_t operator()(std::string_view topic) const { return std::hash<std::string_view>{}(topic); }
  };
  std::shared_ptr<Subscription> Add(std::string component, std::string filter,
                                    std::optional<ReceiveMode> mode);

  // Plain filters by their exact topic (ids ascending); wildcard filters by id.
  std::unordered_map<std::string, std::vector<SubscriptionId>, TopicHash, std::equal_to<>> exact_;
  std::map<SubscriptionId, Subscription*> wildcard_;
  SubscriptionId next_id_ = 1;
  uint64_t published_ = 0;
  uint64_t delivered_ = 0;
  uint64_t dropped_ = 0;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

// Serves PublishToTopic and SubscribeToTopic on `server` (spec shapes and errors):
// - Publish: {topic, publishMessage: {jsonMessage: {message}} | {binaryMessage:
//   {message: <base64>}}} -> {}. A missing or malformed request, a topic with `+`, `#`
//   or `*`, or a message too large for one event frame -> ServiceError (the only
//   declared shape besides UnauthorizedError).
// - Subscribe: {topic, receiveMode?} -> {} on a stream left open, then events
//   (aws.greengrass#SubscriptionResponseMessage), never before the response. A missing or
//   empty topic or an unknown receiveMode -> InvalidArgumentsError. Closing the stream or
//   the connection unsubscribes.
// - Either operation on a resource the caller's aws.greengrass.ipc.pubsub policies do not
//   allow -> UnauthorizedError on that stream; the connection stays.
// `pubsub` and `authorizer` must outlive the handlers (the server, or its Close()).
void RegisterPubSub(IpcServer& server, PubSub& pubsub, const Authorizer& authorizer);

}  // namespace lichen::ipc
