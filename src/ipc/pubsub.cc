#include "ipc/pubsub.h"

#include <algorithm>

#include "ipc/authorization.h"
#include "ipc/canonical_json.h"
#include "ipc/limits.h"
#include "ipc/server.h"

namespace lichen::ipc {
namespace {

// Room left in an event frame for its prelude, headers and CRC (about 170 bytes today).
constexpr size_t kEventFrameOverhead = 1024;

constexpr std::string_view kBase64Alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::vector<std::string_view> SplitLevels(std::string_view topic) {
  std::vector<std::string_view> levels;
  size_t start = 0;
  while (true) {
    const size_t slash = topic.find('/', start);
    if (slash == std::string_view::npos) {
      levels.push_back(topic.substr(start));
      return levels;
    }
    levels.push_back(topic.substr(start, slash - start));
    start = slash + 1;
  }
}

template <typename Level>
bool LevelsMatch(const std::vector<Level>& filter, const std::vector<std::string_view>& topic) {
  size_t f = 0;
  for (const auto& level : topic) {
    if (f == filter.size()) return false;
    if (filter[f] == "#" && f + 1 == filter.size()) return true;  // one or more levels
    if (filter[f] != "+" && filter[f] != level) return false;
    ++f;
  }
  return f == filter.size();
}

std::string Dump(const Json& json) {
  return json.dump(-1, ' ', false, Json::error_handler_t::replace);
}

const Json* Member(const Json& object, const char* key) {
  auto it = object.find(key);
  return it == object.end() || it->is_null() ? nullptr : &*it;
}

Result<PubSubMessage> ParsePublishMessage(const Json& request) {
  const Json* publish = Member(request, "publishMessage");
  if (!publish || !publish->is_object()) return MakeError("publishMessage is required");
  const Json* json = Member(*publish, "jsonMessage");
  const Json* binary = Member(*publish, "binaryMessage");
  if ((json == nullptr) == (binary == nullptr)) {
    return MakeError("publishMessage must hold exactly one of jsonMessage and binaryMessage");
  }
  PubSubMessage out;
  if (json) {
    if (!json->is_object()) return MakeError("jsonMessage must be an object");
    out.kind = PubSubMessage::Kind::kJson;
    if (const Json* m = Member(*json, "message")) out.message = *m;
    return out;
  }
  if (!binary->is_object()) return MakeError("binaryMessage must be an object");
  out.kind = PubSubMessage::Kind::kBinary;
  if (const Json* m = Member(*binary, "message")) {
    if (!m->is_string() || !IsBase64(m->get_ref<const std::string&>())) {
      return MakeError("binaryMessage.message must be padded base64");
    }
    out.message = *m;
  }
  return out;
}

}  // namespace

std::optional<ReceiveMode> ParseReceiveMode(std::string_view text) {
  if (text == "RECEIVE_ALL_MESSAGES") return ReceiveMode::kAllMessages;
  if (text == "RECEIVE_MESSAGES_FROM_OTHERS") return ReceiveMode::kMessagesFromOthers;
  return std::nullopt;
}

std::string_view ToString(ReceiveMode mode) {
  return mode == ReceiveMode::kAllMessages ? "RECEIVE_ALL_MESSAGES"
                                           : "RECEIVE_MESSAGES_FROM_OTHERS";
}

bool IsWildcardFilter(std::string_view filter) {
  const auto levels = SplitLevels(filter);
  for (size_t i = 0; i < levels.size(); ++i) {
    if (levels[i] == "+" || (levels[i] == "#" && i + 1 == levels.size())) return true;
  }
  return false;
}

ReceiveMode DefaultReceiveMode(std::string_view filter) {
  return IsWildcardFilter(filter) ? ReceiveMode::kMessagesFromOthers : ReceiveMode::kAllMessages;
}

bool TopicMatches(std::string_view filter, std::string_view topic) {
  return LevelsMatch(SplitLevels(filter), SplitLevels(topic));
}

Result<void> ValidatePublishTopic(std::string_view topic) {
  if (topic.empty()) return MakeError("the topic must not be empty");
  if (topic.size() > kMaxTopicSize) {
    return MakeError("the topic is longer than " + std::to_string(kMaxTopicSize) + " bytes");
  }
  if (topic.find_first_of("+#*") != std::string_view::npos) {
    return MakeError("a publish topic must not contain a wildcard (+, # or *): " +
                     std::string(topic));
  }
  return {};
}

Result<void> ValidateSubscribeFilter(std::string_view filter) {
  if (filter.empty()) return MakeError("the topic must not be empty");
  if (filter.size() > kMaxTopicSize) {
    return MakeError("the topic is longer than " + std::to_string(kMaxTopicSize) + " bytes");
  }
  return {};
}

std::string Base64Encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t v = static_cast<uint8_t>(bytes[i]) << 16 |
                       static_cast<uint8_t>(bytes[i + 1]) << 8 | static_cast<uint8_t>(bytes[i + 2]);
    out += kBase64Alphabet[v >> 18];
    out += kBase64Alphabet[(v >> 12) & 63];
    out += kBase64Alphabet[(v >> 6) & 63];
    out += kBase64Alphabet[v & 63];
  }
  if (i + 1 == bytes.size()) {
    const uint32_t v = static_cast<uint8_t>(bytes[i]) << 16;
    out += kBase64Alphabet[v >> 18];
    out += kBase64Alphabet[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == bytes.size()) {
    const uint32_t v = static_cast<uint8_t>(bytes[i]) << 16 | static_cast<uint8_t>(bytes[i + 1])
                                                                  << 8;
    out += kBase64Alphabet[v >> 18];
    out += kBase64Alphabet[(v >> 12) & 63];
    out += kBase64Alphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

bool IsBase64(std::string_view text) {
  if (text.size() % 4 != 0) return false;
  size_t padding = 0;
  if (!text.empty() && text.back() == '=') padding = text[text.size() - 2] == '=' ? 2 : 1;
  for (size_t i = 0; i < text.size() - padding; ++i) {
    if (kBase64Alphabet.find(text[i]) == std::string_view::npos) return false;
  }
  return true;
}

PubSubMessage PubSubMessage::FromJson(Json value) {
  return PubSubMessage{Kind::kJson, std::move(value)};
}

PubSubMessage PubSubMessage::FromBytes(std::string_view bytes) {
  return PubSubMessage{Kind::kBinary, Json(Base64Encode(bytes))};
}

// --- PubSub ---

PubSub::SubscriptionId PubSub::Subscribe(std::string component, std::string filter,
                                         std::optional<ReceiveMode> mode, Deliver deliver) {
  auto sub = Add(std::move(component), std::move(filter), mode);
  sub->deliver = std::move(deliver);
  return sub->info.id;
}

PubSub::SubscriptionId PubSub::Subscribe(std::string component, std::string filter,
                                         std::optional<ReceiveMode> mode, DeliverText deliver) {
  auto sub = Add(std::move(component), std::move(filter), mode);
  sub->deliver_text = std::move(deliver);
  return sub->info.id;
}

std::shared_ptr<PubSub::Subscription> PubSub::Add(std::string component, std::string filter,
                                                  std::optional<ReceiveMode> mode) {
  auto sub = std::make_shared<Subscription>();
  const SubscriptionId id = next_id_++;
  sub->info.id = id;
  sub->info.mode = mode.value_or(DefaultReceiveMode(filter));
  sub->info.component = std::move(component);
  sub->wildcard = IsWildcardFilter(filter);
  if (sub->wildcard) {
    for (auto level : SplitLevels(filter)) sub->levels.emplace_back(level);
    wildcard_[id] = sub.get();
  } else {
    exact_[filter].push_back(id);
  }
  sub->info.filter = std::move(filter);
  by_id_[id] = sub;
  return sub;
}

void PubSub::Unsubscribe(SubscriptionId id) {
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return;
  Subscription& sub = *it->second;
  sub.active = false;  // a Publish in progress may still hold it
  if (sub.wildcard) {
    wildcard_.erase(id);
  } else if (auto e = exact_.find(sub.info.filter); e != exact_.end()) {
    auto& ids = e->second;
    ids.erase(std::remove(ids.begin(), ids.end(), id), ids.end());
    if (ids.empty()) exact_.erase(e);
  }
  by_id_.erase(it);
}

Result<PubSub::Outcome> PubSub::Publish(const std::string& source_component, std::string_view topic,
                                        const PubSubMessage& message) {
  if (auto valid = ValidatePublishTopic(topic); !valid) return valid.error();

  const char* kind = message.kind == PubSubMessage::Kind::kJson ? "jsonMessage" : "binaryMessage";
  // The event's text is written directly: the bytes Dump() gives for {kind: {"message":
  // message, "context": {"topic": topic}}}.
  std::string message_dump;
  if (message.message_text.empty() && message.message) message_dump = Dump(*message.message);
  const std::string_view message_text =
      message.message_text.empty() ? std::string_view(message_dump) : message.message_text;
  const bool has_message = !message.message_text.empty() || message.message.has_value();
  const bool plain_topic = std::all_of(topic.begin(), topic.end(), [](char c) {
    return c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
  });
  const std::string topic_dump = plain_topic ? std::string() : Dump(Json(std::string(topic)));
  std::string text;
  text.reserve(48 + message_text.size() + topic.size());
  text.append("{\"").append(kind).append("\":{");
  if (has_message) text.append("\"message\":").append(message_text).append(",");
  text.append("\"context\":{\"topic\":");
  if (plain_topic) {
    text.append("\"").append(topic).append("\"");
  } else {
    text.append(topic_dump);
  }
  text.append("}}}");
  // Checked here, where the publisher can be told: a frame over the limit could not be
  // encoded, and the server would lose it without counting it.
  if (const size_t size = text.size(); size + kEventFrameOverhead > kMaxMessageSize) {
    return MakeError("the message is too large: its event would be " + std::to_string(size) +
                     " bytes, over the " + std::to_string(kMaxMessageSize - kEventFrameOverhead) +
                     " an event may carry");
  }

  // Collected first (holding each subscription) so Deliver may subscribe or unsubscribe.
  std::vector<std::shared_ptr<Subscription>> targets;
  if (auto e = exact_.find(topic); e != exact_.end()) {
    for (auto id : e->second) targets.push_back(by_id_.at(id));
  }
  if (!wildcard_.empty()) {
    const auto levels = SplitLevels(topic);
    for (const auto& [id, sub] : wildcard_) {
      if (LevelsMatch(sub->levels, levels)) targets.push_back(by_id_.at(id));
    }
  }
  std::sort(targets.begin(), targets.end(),
            [](const auto& a, const auto& b) { return a->info.id < b->info.id; });

  ++published_;
  Outcome outcome;
  std::vector<SubscriptionId> gone;
  // Built for the subscribers that take a Json only, once.
  std::optional<Json> event;
  auto make_event = [&] {
    Json body = Json::object();
    if (!message.message_text.empty()) {
      body["message"] = Json::parse(message.message_text);
    } else if (message.message) {
      body["message"] = *message.message;
    }
    body["context"] = Json{{"topic", topic}};
    Json out = Json::object();
    out[kind] = std::move(body);
    return out;
  };
  for (const auto& sub : targets) {
    if (!sub->active) continue;
    if (sub->info.mode == ReceiveMode::kMessagesFromOthers &&
        sub->info.component == source_component) {
      continue;
    }
    if (!sub->deliver_text && !event) event = make_event();
    switch (sub->deliver_text ? sub->deliver_text(text) : sub->deliver(*event, text)) {
      case Delivery::kDelivered:
        ++sub->info.delivered;
        ++delivered_;
        ++outcome.delivered;
        break;
      case Delivery::kDropped:
        ++sub->info.dropped;
        ++dropped_;
        ++outcome.dropped;
        break;
      case Delivery::kGone:
        gone.push_back(sub->info.id);
        break;
    }
  }
  for (auto id : gone) Unsubscribe(id);
  return outcome;
}

PubSubStats PubSub::stats() const {
  return PubSubStats{published_, delivered_, dropped_, by_id_.size()};
}

std::optional<SubscriptionInfo> PubSub::subscription(SubscriptionId id) const {
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return std::nullopt;
  return it->second->info;
}

std::vector<SubscriptionInfo> PubSub::subscriptions() const {
  std::vector<SubscriptionInfo> out;
  out.reserve(by_id_.size());
  for (const auto& [id, sub] : by_id_) out.push_back(sub->info);
  return out;
}

// --- IPC ---

namespace {

// PublishToTopic for a request in canonical form (what the SDK clients send), read from its
// text: no Json is built and the message goes into the event as it is. Same checks, order
// and outcome as the general path; false, having done nothing, for anything that path
// answers with an error or that needs decoding (escapes), so the general path answers it.
bool PublishFromText(Call& call, PubSub& pubsub, const Authorizer& authorizer) {
  if (!call.request_is_canonical()) return false;
  const std::string_view request = call.request_text();
  auto present = [](const std::optional<std::string_view>& value) {
    return value && *value != "null";  // null members count as absent (Member)
  };
  auto plain_string = [](std::string_view value) {
    return value.size() >= 2 && value.front() == '"' && value.find('\\') == std::string_view::npos;
  };
  const auto topic = CanonicalMember(request, "topic");
  if (!present(topic) || !plain_string(*topic) || topic->size() == 2) return false;
  const std::string_view name = topic->substr(1, topic->size() - 2);
  if (!authorizer.Allowed(call.component(), kPubSubService, kPublishToTopic, name)) return false;
  const auto publish = CanonicalMember(request, "publishMessage");
  if (!present(publish) || publish->front() != '{') return false;
  const auto json = CanonicalMember(*publish, "jsonMessage");
  const auto binary = CanonicalMember(*publish, "binaryMessage");
  if (present(json) == present(binary)) return false;
  PubSubMessage message;
  if (present(json)) {
    if (json->front() != '{') return false;
    message.kind = PubSubMessage::Kind::kJson;
    if (const auto m = CanonicalMember(*json, "message"); present(m)) message.message_text = *m;
  } else {
    if (binary->front() != '{') return false;
    message.kind = PubSubMessage::Kind::kBinary;
    if (const auto m = CanonicalMember(*binary, "message"); present(m)) {
      if (!plain_string(*m) || !IsBase64(m->substr(1, m->size() - 2))) return false;
      message.message_text = *m;
    }
  }
  auto outcome = pubsub.Publish(call.component(), name, message);
  if (!outcome) {
    call.Error("ServiceError", outcome.error().message);
  } else {
    call.Respond(Json::object());
  }
  return true;
}

}  // namespace

void RegisterPubSub(IpcServer& server, PubSub& pubsub, const Authorizer& authorizer) {
  server.Register(std::string(kPublishToTopic), [&pubsub, &authorizer](std::shared_ptr<Call> call) {
    if (PublishFromText(*call, pubsub, authorizer)) return;
    const Json* topic = Member(call->request(), "topic");
    if (!topic || !topic->is_string() || topic->get_ref<const std::string&>().empty()) {
      return call->Error("ServiceError", "topic is required");
    }
    const auto& name = topic->get_ref<const std::string&>();
    // Authorization first, as the nucleus does: a caller without a policy learns nothing
    // more about the topic.
    if (!authorizer.Allowed(call->component(), kPubSubService, kPublishToTopic, name)) {
      return call->Error(
          "UnauthorizedError",
          Authorizer::DenialMessage(call->component(), kPubSubService, kPublishToTopic, name));
    }
    auto message = ParsePublishMessage(call->request());
    if (!message) return call->Error("ServiceError", message.error().message);
    // The nucleus answers a wildcard topic with InvalidArgumentsError, which
    // PublishToTopic does not declare (clients report an internal error): ServiceError.
    auto outcome = pubsub.Publish(call->component(), name, *message);
    if (!outcome) return call->Error("ServiceError", outcome.error().message);
    call->Respond(Json::object());
  });

  server.Register(
      std::string(kSubscribeToTopic), [&pubsub, &authorizer](std::shared_ptr<Call> call) {
        const Json* topic = Member(call->request(), "topic");
        if (!topic || !topic->is_string()) {
          return call->Error("InvalidArgumentsError", "topic is required");
        }
        const auto& filter = topic->get_ref<const std::string&>();
        if (auto valid = ValidateSubscribeFilter(filter); !valid) {
          return call->Error("InvalidArgumentsError", valid.error().message);
        }
        std::optional<ReceiveMode> mode;
        if (const Json* m = Member(call->request(), "receiveMode")) {
          if (m->is_string()) mode = ParseReceiveMode(m->get_ref<const std::string&>());
          if (!mode) {
            return call->Error("InvalidArgumentsError",
                               "receiveMode must be RECEIVE_ALL_MESSAGES or "
                               "RECEIVE_MESSAGES_FROM_OTHERS, not " +
                                   Dump(*m));
          }
        }
        if (!authorizer.Allowed(call->component(), kPubSubService, kSubscribeToTopic, filter)) {
          return call->Error("UnauthorizedError",
                             Authorizer::DenialMessage(call->component(), kPubSubService,
                                                       kSubscribeToTopic, filter));
        }
        // The response goes out before the subscription exists, so no event can precede it.
        call->Respond(Json::object(), /*terminate=*/false);
        // A stream the client closed with its first frame never calls OnClose: subscribing
        // would leak.
        if (!call->open()) return;
        std::weak_ptr<Call> weak = call;  // the connection owns the call while it is open
        const auto id =
            pubsub.Subscribe(call->component(), filter, mode, [weak](const std::string& text) {
              auto c = weak.lock();
              if (!c) return Delivery::kGone;
              if (c->EventText(kSubscriptionResponseMessage, text)) return Delivery::kDelivered;
              return c->open() ? Delivery::kDropped : Delivery::kGone;
            });
        call->OnClose([&pubsub, alive = pubsub.lifetime(), id] {
          if (!alive.expired()) pubsub.Unsubscribe(id);
        });
      });
}

}  // namespace lichen::ipc
