// The runtime's configuration: one tree of containers and leaves, owned by one
// thread (no locks), with timestamps, case-insensitive keys and change watchers.
//
// Layout: services.<Component>.configuration.<...>, services.<Component>.version,
// services.<Component>.runWith, runtime-wide keys at the top.
//
// Behaviour follows the Greengrass Java nucleus (config/Topics.java, Topic.java,
// Node.java, CaseInsensitiveString.java; componentmanager/KernelConfigResolver.java):
//
// - Containers hold ordered children; leaves hold a JSON scalar or a JSON array
//   ("lists are replaced whole", they are never merged element by element).
// - Child lookup ignores case (the nucleus keys children by CaseInsensitiveString);
//   the first spelling written is kept for output. Lichen folds ASCII letters only;
//   the nucleus uses Java's toLowerCase(), which also folds non-ASCII letters.
// - Timestamps are int64 milliseconds. "Newer wins": a write whose timestamp is
//   OLDER than the node's is ignored (Topic.withNewerValue drops
//   proposedModtime < modtime; an equal timestamp is accepted). The same rule guards
//   removals (Node.remove(timestamp)) and changes of shape (a leaf becoming a
//   container or the reverse). An ignored write is reported in UpdateOutcome::stale.
//   Writing the same value with a newer timestamp moves the timestamp forward but is
//   not a change (the nucleus fires "timestampUpdated", which its IPC ignores).
//   A container's timestamp is the newest write or removal anywhere below it, as the
//   nucleus's Topics.childChanged keeps it. Differences from the nucleus, on purpose:
//   its REPLACE removes absent keys whatever their timestamp, Lichen applies the rule
//   to removals too; its MERGE throws when a leaf would become a container or the
//   reverse, Lichen replaces the node (the AWS documentation says a MERGE "can change
//   the structure of the configuration object").
// - Notifications: a callback registered with Watch() receives one Change per leaf
//   whose value changed, was added or was removed (and per empty container added or
//   removed), computed by comparing the affected subtree before and after the
//   operation, so a no-op or a timestamp-only update notifies nobody. Numbers compare
//   by kind: 1 and 1.0 differ (the nucleus compares with Objects.equals). The cost is
//   one JSON copy of the affected subtree per operation (the deepest existing node on
//   the operation's path: a leaf for Set, the whole tree for a Merge at the root).
//   Callbacks run after the operation is complete. A tree operation called from a
//   callback is applied at once, but its notifications are queued and delivered
//   after the current callback returns (never re-entrantly). At most
//   kMaxQueuedNotifications are delivered per outermost operation; the rest (only
//   reachable by callbacks that keep changing the tree in response to their own
//   changes) are dropped and counted in dropped_notifications().
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

namespace lichen::config {

using Json = nlohmann::ordered_json;
using KeyPath = std::vector<std::string>;
using Timestamp = std::int64_t;  // milliseconds

// The nucleus merges recipe defaults at timestamp 1 ("defaults come from the dawn
// of time", Topic.DEFAULT_VALUE_TIMESTAMP).
inline constexpr Timestamp kDefaultValueTimestamp = 1;

// ASCII case-insensitive key comparison, as used for every child lookup.
bool KeyEquals(std::string_view a, std::string_view b);
// The key with ASCII letters lowered: equal for keys KeyEquals() calls equal.
std::string FoldKey(std::string_view key);
bool PathStartsWith(const KeyPath& path, const KeyPath& prefix);
// "a.b.c" for messages.
std::string PathToString(const KeyPath& path);

class Node {
 public:
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  const std::string& name() const { return name_; }  // "" for the root
  bool is_container() const { return container_; }
  Timestamp modtime() const { return modtime_; }
  // The leaf's value (a scalar or an array); null for a container.
  const Json& value() const { return value_; }
  // In insertion order; empty for a leaf.
  const std::vector<std::unique_ptr<Node>>& children() const { return children_; }
  // Case-insensitive; nullptr when absent or when this is a leaf.
  const Node* Child(std::string_view key) const;

 private:
  friend struct NodeOps;
  Node(std::string name, bool container, Timestamp modtime)
      : name_(std::move(name)), container_(container), modtime_(modtime) {}

  std::string name_;
  Node* parent_ = nullptr;
  bool container_;
  Timestamp modtime_;
  Json value_;
  std::vector<std::unique_ptr<Node>> children_;
};

enum class ChangeKind { kAdded, kChanged, kRemoved };

struct Change {
  KeyPath path;  // keys as spelled in the tree
  ChangeKind kind;
};

struct UpdateOutcome {
  // What changed (the same list the watchers receive, in the same order).
  std::vector<Change> changes;
  // Writes and removals ignored because their timestamp was older than the node's.
  std::vector<KeyPath> stale;

  bool changed() const { return !changes.empty(); }
  bool fully_applied() const { return stale.empty(); }
};

using WatchCallback = std::function<void(const Change&)>;

namespace detail {
struct WatchRegistry;
}

// Unregisters its callback when destroyed (or reset). Safe to destroy after the
// tree, and from inside a callback.
class WatchHandle {
 public:
  WatchHandle() = default;
  WatchHandle(WatchHandle&& other) noexcept;
  WatchHandle& operator=(WatchHandle&& other) noexcept;
  WatchHandle(const WatchHandle&) = delete;
  WatchHandle& operator=(const WatchHandle&) = delete;
  ~WatchHandle();

  void Reset();
  bool active() const;

 private:
  friend class Tree;
  WatchHandle(std::weak_ptr<detail::WatchRegistry> registry, std::uint64_t id)
      : registry_(std::move(registry)), id_(id) {}

  std::weak_ptr<detail::WatchRegistry> registry_;
  std::uint64_t id_ = 0;
};

class Tree {
 public:
  static constexpr std::size_t kMaxQueuedNotifications = 100000;

  Tree();
  Tree(Tree&&) noexcept;
  Tree& operator=(Tree&&) noexcept;
  Tree(const Tree&) = delete;
  Tree& operator=(const Tree&) = delete;
  ~Tree();

  // nullptr when absent. The empty path is the root container.
  const Node* Find(const KeyPath& path) const;
  // Container -> object, leaf -> its value; nullopt when absent.
  std::optional<Json> ToJson(const KeyPath& path) const;

  // Writes one leaf (a scalar or an array; objects go through Merge or Replace),
  // creating containers on the way. Fails for the empty path or an object value.
  Result<UpdateOutcome> Set(const KeyPath& path, const Json& value, Timestamp timestamp);
  // Objects merge key by key; every other value replaces what is there. The node at
  // `path` becomes (or stays) a container. Fails unless `object` is a JSON object.
  Result<UpdateOutcome> Merge(const KeyPath& path, const Json& object, Timestamp timestamp);
  // The subtree at `path` becomes exactly `value`: keys not present are removed.
  // A non-object value makes `path` a leaf (not allowed for the empty path).
  Result<UpdateOutcome> Replace(const KeyPath& path, const Json& value, Timestamp timestamp);
  // Removes the node at `path` (the empty path removes every child of the root).
  // Removing an absent node is a no-op.
  Result<UpdateOutcome> Remove(const KeyPath& path, Timestamp timestamp);

  // A deployment's configuration update of the container at `path` (normally
  // services.<Component>.configuration): the free ApplyConfigurationUpdate() below,
  // then Replace(path, result, timestamp).
  Result<UpdateOutcome> ApplyConfigurationUpdate(const KeyPath& path,
                                                 const Json& default_configuration,
                                                 const std::vector<std::string>& reset_pointers,
                                                 const Json& merge, Timestamp timestamp);

  // Persistence: the subtree with every timestamp, and its exact restoration (no
  // newer-wins check: the snapshot is authoritative). Snapshot() is null when absent.
  Json Snapshot(const KeyPath& path) const;
  Result<UpdateOutcome> Restore(const KeyPath& path, const Json& snapshot);

  // `callback` receives every change at or below `path_prefix` (case-insensitive),
  // including changes to keys that do not exist yet.
  [[nodiscard]] WatchHandle Watch(const KeyPath& path_prefix, WatchCallback callback);

  std::size_t dropped_notifications() const { return dropped_notifications_; }

 private:
  template <typename Mutation>
  Result<UpdateOutcome> Apply(const KeyPath& path, Mutation&& mutation);
  void Notify(const std::vector<Change>& changes);

  std::unique_ptr<Node> root_;
  std::shared_ptr<detail::WatchRegistry> watchers_;
  std::deque<Change> pending_;
  bool dispatching_ = false;
  std::size_t queued_this_round_ = 0;
  std::size_t dropped_notifications_ = 0;
};

// Snapshot format: a leaf is {"t": <ms>, "v": <value>}, a container is
// {"t": <ms>, "c": {"<name>": <snapshot>, ...}} in child order.
Json SnapshotOf(const Node& node);

// The deployment configuration update (runtime spec, "Configuration update"), as the
// nucleus's KernelConfigResolver.resolveConfigurationToApply does it:
//  1. Start from the running configuration `current` (null counts as {}).
//  2. Apply RESET: "" empties the whole configuration; any other RFC 6901 pointer
//     removes that key (case-insensitively) if present. Removing the key is what makes
//     step 3 restore its recipe default: a key whose default is an object gets the
//     whole default object back, and keys a user had added inside it are gone; a key
//     without a default simply disappears.
//     A pointer that addresses an element of a list (passes through an array in the
//     running configuration or in the defaults) is rejected: the result is an Error
//     naming the pointer and nothing is applied. The nucleus skips such a pointer
//     with a logged error and carries on; it also treats every all-digit segment as
//     an array index (Jackson's mayMatchElement), even under an object ("/ports/8080"
//     is skipped there); Lichen resets that object key. A malformed pointer (not
//     starting with "/", or a "~" not followed by 0 or 1) is an Error.
//  3. Merge `default_configuration` WITHOUT overwriting: only absent keys are added,
//     objects recurse, and an existing value of any type (null included) is kept. The
//     nucleus merges defaults at timestamp 1, which loses to every value it has
//     written through a deployment; where a default's shape conflicts with the
//     running value (object vs. scalar) the nucleus throws, Lichen keeps the value.
//  4. Merge `merge`: objects merge key by key; scalars, lists and null replace what
//     is there (a null MERGE value stores null, it does not delete: use RESET); a
//     value of a different shape replaces the old one. Existing keys keep their
//     spelling.
// `default_configuration` and `merge` must be objects or null.
Result<Json> ApplyConfigurationUpdate(const Json& current, const Json& default_configuration,
                                      const std::vector<std::string>& reset_pointers,
                                      const Json& merge);

// RFC 6901 pointer -> keys ("" -> {}). Errors name the pointer.
Result<KeyPath> ParseJsonPointer(std::string_view pointer);

}  // namespace lichen::config
