#include "config/tree.h"

#include <algorithm>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "common/text.h"

namespace lichen::config {

// Deepest path and deepest value accepted; deeper input is rejected instead of
// recursing without bound.
constexpr std::size_t kMaxPathLength = 128;
constexpr int kMaxValueDepth = 128;

namespace detail {

struct WatchRegistry {
  struct Entry {
    std::uint64_t id;
    KeyPath prefix;
    std::shared_ptr<WatchCallback> callback;
  };
  std::vector<Entry> entries;
  std::uint64_t next_id = 1;

  void Remove(std::uint64_t id) {
    std::erase_if(entries, [id](const Entry& e) { return e.id == id; });
  }
  bool Contains(std::uint64_t id) const {
    return std::any_of(entries.begin(), entries.end(), [id](const Entry& e) { return e.id == id; });
  }
};

}  // namespace detail

namespace {

bool DepthWithin(const Json& value, int limit) {
  if (!value.is_structured()) return true;
  if (limit <= 0) return false;
  for (const auto& element : value) {
    if (!DepthWithin(element, limit - 1)) return false;
  }
  return true;
}

Result<void> CheckInput(const KeyPath& path, const Json& value) {
  if (path.size() > kMaxPathLength) {
    return MakeError("key path is deeper than " + std::to_string(kMaxPathLength) + " levels");
  }
  if (!DepthWithin(value, kMaxValueDepth)) {
    return MakeError("value at " + PathToString(path) + " nests deeper than " +
                     std::to_string(kMaxValueDepth) + " levels");
  }
  return {};
}

// Equality that also compares the kind of number: 1 and 1.0 print differently, so
// changing one into the other is a change. Signed and unsigned integers are one kind.
bool StrictEqual(const Json& a, const Json& b) {
  if (a.is_number_float() != b.is_number_float()) return false;
  if (a.is_number() && b.is_number()) return a == b;
  if (a.type() != b.type()) return false;
  if (a.is_array()) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
      if (!StrictEqual(a[i], b[i])) return false;
    }
    return true;
  }
  if (a.is_object()) {
    if (a.size() != b.size()) return false;
    auto ia = a.items().begin();
    auto ib = b.items().begin();
    for (; ia != a.items().end(); ++ia, ++ib) {
      if (ia.key() != ib.key() || !StrictEqual(ia.value(), ib.value())) return false;
    }
    return true;
  }
  return a == b;
}

// Case-insensitive lookup in a JSON object (the first match wins).
Json* FindKey(Json& object, std::string_view key) {
  for (auto& [k, v] : object.items()) {
    if (KeyEquals(k, key)) return &v;
  }
  return nullptr;
}

const Json* FindKey(const Json& object, std::string_view key) {
  for (const auto& [k, v] : object.items()) {
    if (KeyEquals(k, key)) return &v;
  }
  return nullptr;
}

}  // namespace

std::string FoldKey(std::string_view key) { return text::Lower(key); }

bool KeyEquals(std::string_view a, std::string_view b) { return text::EqualsIgnoreCase(a, b); }

bool PathStartsWith(const KeyPath& path, const KeyPath& prefix) {
  if (prefix.size() > path.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    if (!KeyEquals(path[i], prefix[i])) return false;
  }
  return true;
}

std::string PathToString(const KeyPath& path) {
  std::string out;
  for (std::size_t i = 0; i < path.size(); ++i) {
    if (i > 0) out += '.';
    out += path[i];
  }
  return out;
}

const Node* Node::Child(std::string_view key) const {
  for (const auto& child : children_) {
    if (KeyEquals(child->name_, key)) return child.get();
  }
  return nullptr;
}

// Everything that mutates nodes. Writes take a context with the operation's
// timestamp; `force` (Restore) skips the newer-wins check.
struct WriteContext {
  Timestamp timestamp;
  std::vector<KeyPath>* stale;
  bool force = false;
};

struct NodeOps {
  static std::unique_ptr<Node> MakeContainer(std::string name, Timestamp t) {
    return std::unique_ptr<Node>(new Node(std::move(name), true, t));
  }
  static std::unique_ptr<Node> MakeLeaf(std::string name, Json value, Timestamp t) {
    auto node = std::unique_ptr<Node>(new Node(std::move(name), false, t));
    node->value_ = std::move(value);
    return node;
  }

  static Node* FindChild(Node& node, std::string_view key) {
    return const_cast<Node*>(node.Child(key));
  }

  static Node* Find(Node& root, const KeyPath& path) {
    Node* n = &root;
    for (const auto& key : path) {
      n = FindChild(*n, key);
      if (n == nullptr) return nullptr;
    }
    return n;
  }

  static Node* AddChild(Node& parent, std::unique_ptr<Node> child) {
    child->parent_ = &parent;
    parent.children_.push_back(std::move(child));
    return parent.children_.back().get();
  }

  static void EraseChild(Node& parent, const Node* child) {
    std::erase_if(parent.children_, [child](const auto& c) { return c.get() == child; });
  }

  // `node` and its ancestors record a write at `t`.
  static void Touch(Node* node, Timestamp t) {
    for (; node != nullptr; node = node->parent_) node->modtime_ = std::max(node->modtime_, t);
  }

  static KeyPath PathOf(const Node* node) {
    KeyPath path;
    for (; node != nullptr && node->parent_ != nullptr; node = node->parent_) {
      path.push_back(node->name_);
    }
    std::reverse(path.begin(), path.end());
    return path;
  }

  static bool Stale(const Node& node, const WriteContext& ctx) {
    if (ctx.force || ctx.timestamp >= node.modtime_) return false;
    ctx.stale->push_back(PathOf(&node));
    return true;
  }

  static void WriteLeaf(Node& parent, std::string_view key, const Json& value,
                        const WriteContext& ctx) {
    Node* child = FindChild(parent, key);
    if (child == nullptr) {
      AddChild(parent, MakeLeaf(std::string(key), value, ctx.timestamp));
      Touch(&parent, ctx.timestamp);
      return;
    }
    if (Stale(*child, ctx)) return;
    child->container_ = false;
    child->children_.clear();
    child->value_ = value;
    child->modtime_ = ctx.timestamp;
    Touch(&parent, ctx.timestamp);
  }

  // `node` is not the root.
  static void RemoveNode(Node& node, const WriteContext& ctx) {
    if (Stale(node, ctx)) return;
    Node* parent = node.parent_;
    EraseChild(*parent, &node);
    Touch(parent, ctx.timestamp);
  }

  // nullptr when a leaf in the way is newer than the write.
  static Node* GetOrMakeContainer(Node& parent, std::string_view key, const WriteContext& ctx) {
    Node* child = FindChild(parent, key);
    if (child == nullptr) {
      child = AddChild(parent, MakeContainer(std::string(key), ctx.timestamp));
      Touch(&parent, ctx.timestamp);
      return child;
    }
    if (child->container_) return child;
    if (Stale(*child, ctx)) return nullptr;
    child->container_ = true;
    child->value_ = nullptr;
    child->modtime_ = ctx.timestamp;
    Touch(&parent, ctx.timestamp);
    return child;
  }

  // The container at path[0, count), created as needed.
  static Node* EnsureContainers(Node& root, const KeyPath& path, std::size_t count,
                                const WriteContext& ctx) {
    Node* n = &root;
    for (std::size_t i = 0; i < count && n != nullptr; ++i) {
      n = GetOrMakeContainer(*n, path[i], ctx);
    }
    return n;
  }

  static void MergeObject(Node& target, const Json& object, const WriteContext& ctx) {
    for (const auto& [key, value] : object.items()) {
      if (value.is_object()) {
        Node* child = GetOrMakeContainer(target, key, ctx);
        if (child != nullptr) MergeObject(*child, value, ctx);
      } else {
        WriteLeaf(target, key, value, ctx);
      }
    }
  }

  static void ReplaceObject(Node& target, const Json& object, const WriteContext& ctx) {
    std::unordered_set<std::string> keep;
    for (const auto& [key, value] : object.items()) keep.insert(FoldKey(key));
    std::vector<const Node*> to_remove;
    for (const auto& child : target.children_) {
      if (keep.count(FoldKey(child->name_)) == 0 && !Stale(*child, ctx)) {
        to_remove.push_back(child.get());
      }
    }
    for (const Node* child : to_remove) EraseChild(target, child);
    if (!to_remove.empty()) Touch(&target, ctx.timestamp);
    for (const auto& [key, value] : object.items()) {
      if (value.is_object()) {
        Node* child = GetOrMakeContainer(target, key, ctx);
        if (child != nullptr) ReplaceObject(*child, value, ctx);
      } else {
        WriteLeaf(target, key, value, ctx);
      }
    }
  }

  static Result<std::unique_ptr<Node>> FromSnapshot(const Json& snapshot, std::string name,
                                                    int depth) {
    if (depth > kMaxValueDepth + static_cast<int>(kMaxPathLength)) {
      return MakeError("snapshot nests too deeply");
    }
    if (!snapshot.is_object()) return MakeError("snapshot node is not an object");
    auto t = snapshot.find("t");
    if (t == snapshot.end() || !t->is_number_integer()) {
      return MakeError("snapshot node has no integer \"t\"");
    }
    auto v = snapshot.find("v");
    auto c = snapshot.find("c");
    if ((v == snapshot.end()) == (c == snapshot.end()) || snapshot.size() != 2) {
      return MakeError("snapshot node needs exactly one of \"v\" and \"c\" besides \"t\"");
    }
    Timestamp modtime = t->get<Timestamp>();
    if (v != snapshot.end()) {
      if (v->is_object()) return MakeError("snapshot leaf holds an object");
      if (!DepthWithin(*v, kMaxValueDepth)) return MakeError("snapshot value nests too deeply");
      return MakeLeaf(std::move(name), *v, modtime);
    }
    if (!c->is_object()) return MakeError("snapshot children are not an object");
    auto node = MakeContainer(std::move(name), modtime);
    for (const auto& [key, child_snapshot] : c->items()) {
      if (node->Child(key) != nullptr) {
        return MakeError("snapshot has the key \"" + key + "\" twice (ignoring case)");
      }
      auto child = FromSnapshot(child_snapshot, key, depth + 1);
      if (!child) return child.error();
      AddChild(*node, std::move(*child));
    }
    return node;
  }

  static void Install(Node& root, const KeyPath& path, std::unique_ptr<Node> node) {
    WriteContext ctx{node->modtime_, nullptr, true};
    if (path.empty()) {
      root.children_ = std::move(node->children_);
      for (auto& child : root.children_) child->parent_ = &root;
      root.modtime_ = node->modtime_;
      return;
    }
    Node* parent = EnsureContainers(root, path, path.size() - 1, ctx);
    Timestamp t = node->modtime_;
    node->parent_ = parent;
    Node* existing = FindChild(*parent, path.back());
    if (existing == nullptr) {
      parent->children_.push_back(std::move(node));
    } else {
      for (auto& slot : parent->children_) {
        if (slot.get() == existing) slot = std::move(node);
      }
    }
    Touch(parent, t);
  }
};

namespace {

Json NodeToJson(const Node& node) {
  if (!node.is_container()) return node.value();
  Json out = Json::object();
  for (const auto& child : node.children()) out[child->name()] = NodeToJson(*child);
  return out;
}

void EmitNode(const Node& node, KeyPath& path, ChangeKind kind, std::vector<Change>& out) {
  if (!node.is_container() || node.children().empty()) {
    out.push_back({path, kind});
    return;
  }
  for (const auto& child : node.children()) {
    path.push_back(child->name());
    EmitNode(*child, path, kind, out);
    path.pop_back();
  }
}

void EmitJson(const Json& value, KeyPath& path, ChangeKind kind, std::vector<Change>& out) {
  if (!value.is_object() || value.empty()) {
    out.push_back({path, kind});
    return;
  }
  for (const auto& [key, child] : value.items()) {
    path.push_back(key);
    EmitJson(child, path, kind, out);
    path.pop_back();
  }
}

// Changes between `before` (a JSON view: objects are containers) and the live
// subtree `after`; either may be absent.
void Diff(const Json* before, const Node* after, KeyPath& path, std::vector<Change>& out) {
  if (before == nullptr) {
    if (after != nullptr) EmitNode(*after, path, ChangeKind::kAdded, out);
    return;
  }
  if (after == nullptr) {
    EmitJson(*before, path, ChangeKind::kRemoved, out);
    return;
  }
  if (before->is_object() != after->is_container()) {
    EmitJson(*before, path, ChangeKind::kRemoved, out);
    EmitNode(*after, path, ChangeKind::kAdded, out);
    return;
  }
  if (!after->is_container()) {
    if (!StrictEqual(*before, after->value())) out.push_back({path, ChangeKind::kChanged});
    return;
  }
  if (before->empty() && after->children().empty()) return;
  std::unordered_map<std::string, const Json*> old_children;
  for (const auto& [key, value] : before->items()) old_children.emplace(FoldKey(key), &value);
  for (const auto& child : after->children()) {
    auto it = old_children.find(FoldKey(child->name()));
    path.push_back(child->name());
    Diff(it == old_children.end() ? nullptr : it->second, child.get(), path, out);
    path.pop_back();
    if (it != old_children.end()) old_children.erase(it);
  }
  if (old_children.empty()) return;
  // Report removals in the old order.
  for (const auto& [key, value] : before->items()) {
    if (old_children.count(FoldKey(key)) == 0) continue;
    path.push_back(key);
    EmitJson(value, path, ChangeKind::kRemoved, out);
    path.pop_back();
  }
}

}  // namespace

WatchHandle::WatchHandle(WatchHandle&& other) noexcept
    : registry_(std::move(other.registry_)), id_(std::exchange(other.id_, 0)) {}

WatchHandle& WatchHandle::operator=(WatchHandle&& other) noexcept {
  if (this != &other) {
    Reset();
    registry_ = std::move(other.registry_);
    id_ = std::exchange(other.id_, 0);
  }
  return *this;
}

WatchHandle::~WatchHandle() { Reset(); }

void WatchHandle::Reset() {
  if (auto registry = registry_.lock()) registry->Remove(id_);
  registry_.reset();
  id_ = 0;
}

bool WatchHandle::active() const {
  auto registry = registry_.lock();
  return registry != nullptr && registry->Contains(id_);
}

Tree::Tree()
    : root_(NodeOps::MakeContainer("", 0)), watchers_(std::make_shared<detail::WatchRegistry>()) {}

Tree::Tree(Tree&& other) noexcept
    : root_(std::exchange(other.root_, NodeOps::MakeContainer("", 0))),
      watchers_(std::exchange(other.watchers_, std::make_shared<detail::WatchRegistry>())),
      dropped_notifications_(other.dropped_notifications_) {}

Tree& Tree::operator=(Tree&& other) noexcept {
  if (this != &other) {
    root_ = std::exchange(other.root_, NodeOps::MakeContainer("", 0));
    watchers_ = std::exchange(other.watchers_, std::make_shared<detail::WatchRegistry>());
    pending_.clear();
    dropped_notifications_ = other.dropped_notifications_;
  }
  return *this;
}

Tree::~Tree() = default;

const Node* Tree::Find(const KeyPath& path) const { return NodeOps::Find(*root_, path); }

std::optional<Json> Tree::ToJson(const KeyPath& path) const {
  const Node* node = Find(path);
  if (node == nullptr) return std::nullopt;
  return NodeToJson(*node);
}

template <typename Mutation>
Result<UpdateOutcome> Tree::Apply(const KeyPath& path, Mutation&& mutation) {
  // Everything the mutation can touch lies below the deepest node of `path` that
  // exists now; compare that subtree before and after.
  KeyPath region;
  const Node* node = root_.get();
  for (const auto& key : path) {
    if (!node->is_container()) break;
    const Node* child = node->Child(key);
    if (child == nullptr) break;
    region.push_back(child->name());
    node = child;
  }
  const Json before = NodeToJson(*node);
  UpdateOutcome outcome;
  mutation(outcome.stale);
  Diff(&before, Find(region), region, outcome.changes);
  Notify(outcome.changes);
  return outcome;
}

Result<UpdateOutcome> Tree::Set(const KeyPath& path, const Json& value, Timestamp timestamp) {
  if (path.empty()) return MakeError("cannot set the root of the configuration to a value");
  if (value.is_object()) {
    return MakeError("Set writes one value; " + PathToString(path) +
                     " was given an object (use Merge or Replace)");
  }
  if (auto ok = CheckInput(path, value); !ok) return ok.error();
  return Apply(path, [&](std::vector<KeyPath>& stale) {
    WriteContext ctx{timestamp, &stale};
    Node* parent = NodeOps::EnsureContainers(*root_, path, path.size() - 1, ctx);
    if (parent != nullptr) NodeOps::WriteLeaf(*parent, path.back(), value, ctx);
  });
}

Result<UpdateOutcome> Tree::Merge(const KeyPath& path, const Json& object, Timestamp timestamp) {
  if (!object.is_object()) {
    return MakeError("Merge at " + PathToString(path) + " needs an object, got " +
                     object.type_name());
  }
  if (auto ok = CheckInput(path, object); !ok) return ok.error();
  return Apply(path, [&](std::vector<KeyPath>& stale) {
    WriteContext ctx{timestamp, &stale};
    Node* target = NodeOps::EnsureContainers(*root_, path, path.size(), ctx);
    if (target != nullptr) NodeOps::MergeObject(*target, object, ctx);
  });
}

Result<UpdateOutcome> Tree::Replace(const KeyPath& path, const Json& value, Timestamp timestamp) {
  if (!value.is_object()) {
    if (path.empty()) return MakeError("the root of the configuration must stay an object");
    return Set(path, value, timestamp);
  }
  if (auto ok = CheckInput(path, value); !ok) return ok.error();
  return Apply(path, [&](std::vector<KeyPath>& stale) {
    WriteContext ctx{timestamp, &stale};
    Node* target = NodeOps::EnsureContainers(*root_, path, path.size(), ctx);
    if (target != nullptr) NodeOps::ReplaceObject(*target, value, ctx);
  });
}

Result<UpdateOutcome> Tree::Remove(const KeyPath& path, Timestamp timestamp) {
  if (path.empty()) return Replace(path, Json::object(), timestamp);
  if (Find(path) == nullptr) return UpdateOutcome{};
  return Apply(path, [&](std::vector<KeyPath>& stale) {
    WriteContext ctx{timestamp, &stale};
    NodeOps::RemoveNode(*NodeOps::Find(*root_, path), ctx);
  });
}

Result<UpdateOutcome> Tree::ApplyConfigurationUpdate(const KeyPath& path,
                                                     const Json& default_configuration,
                                                     const std::vector<std::string>& reset_pointers,
                                                     const Json& merge, Timestamp timestamp) {
  auto current = ToJson(path);
  if (current && !current->is_object()) {
    return MakeError(PathToString(path) + " holds a value, not a configuration object");
  }
  auto updated = config::ApplyConfigurationUpdate(current ? *current : Json::object(),
                                                  default_configuration, reset_pointers, merge);
  if (!updated) return updated.error();
  return Replace(path, *updated, timestamp);
}

Json Tree::Snapshot(const KeyPath& path) const {
  const Node* node = Find(path);
  return node == nullptr ? Json() : SnapshotOf(*node);
}

Result<UpdateOutcome> Tree::Restore(const KeyPath& path, const Json& snapshot) {
  if (path.size() > kMaxPathLength) return MakeError("key path is too deep");
  auto node = NodeOps::FromSnapshot(snapshot, path.empty() ? "" : path.back(), 0);
  if (!node) return MakeError("cannot restore " + PathToString(path) + ": " + node.error().message);
  if (path.empty() && !(*node)->is_container()) {
    return MakeError("the root of the configuration must be a container");
  }
  std::unique_ptr<Node> built = std::move(*node);
  return Apply(path,
               [&](std::vector<KeyPath>&) { NodeOps::Install(*root_, path, std::move(built)); });
}

WatchHandle Tree::Watch(const KeyPath& path_prefix, WatchCallback callback) {
  std::uint64_t id = watchers_->next_id++;
  watchers_->entries.push_back(
      {id, path_prefix, std::make_shared<WatchCallback>(std::move(callback))});
  return WatchHandle(watchers_, id);
}

void Tree::Notify(const std::vector<Change>& changes) {
  if (changes.empty() || watchers_->entries.empty()) return;
  for (const auto& change : changes) {
    if (queued_this_round_ >= kMaxQueuedNotifications) {
      ++dropped_notifications_;
      continue;
    }
    pending_.push_back(change);
    ++queued_this_round_;
  }
  if (dispatching_) return;  // the outer Notify delivers them, after the current callback

  struct Guard {
    Tree* tree;
    ~Guard() {
      tree->dispatching_ = false;
      tree->queued_this_round_ = 0;
      tree->pending_.clear();
    }
  } guard{this};
  dispatching_ = true;
  // Bounded: at most kMaxQueuedNotifications changes enter pending_ per round.
  while (!pending_.empty()) {
    Change change = std::move(pending_.front());
    pending_.pop_front();
    // Callbacks registered now; one unregistered by an earlier callback is skipped.
    std::vector<std::pair<std::uint64_t, std::shared_ptr<WatchCallback>>> targets;
    for (const auto& entry : watchers_->entries) {
      if (PathStartsWith(change.path, entry.prefix)) targets.emplace_back(entry.id, entry.callback);
    }
    for (const auto& [id, callback] : targets) {
      if (watchers_->Contains(id)) (*callback)(change);
    }
  }
}

Json SnapshotOf(const Node& node) {
  Json out = Json::object();
  out["t"] = node.modtime();
  if (!node.is_container()) {
    out["v"] = node.value();
    return out;
  }
  Json children = Json::object();
  for (const auto& child : node.children()) children[child->name()] = SnapshotOf(*child);
  out["c"] = std::move(children);
  return out;
}

Result<KeyPath> ParseJsonPointer(std::string_view pointer) {
  KeyPath path;
  if (pointer.empty()) return path;
  if (pointer.front() != '/') {
    return MakeError("JSON pointer \"" + std::string(pointer) + "\" does not start with \"/\"");
  }
  std::string segment;
  for (std::size_t i = 1; i <= pointer.size(); ++i) {
    if (i == pointer.size() || pointer[i] == '/') {
      path.push_back(std::move(segment));
      segment.clear();
      continue;
    }
    if (pointer[i] == '~') {
      if (i + 1 < pointer.size() && (pointer[i + 1] == '0' || pointer[i + 1] == '1')) {
        segment += pointer[i + 1] == '0' ? '~' : '/';
        ++i;
        continue;
      }
      return MakeError("JSON pointer \"" + std::string(pointer) +
                       "\" has a \"~\" not followed by 0 or 1");
    }
    segment += pointer[i];
  }
  return path;
}

namespace {

// True when walking `path` through `doc` steps into an array.
bool PassesThroughArray(const Json& doc, const KeyPath& path) {
  const Json* node = &doc;
  for (const auto& key : path) {
    if (node->is_array()) return true;
    if (!node->is_object()) return false;
    node = FindKey(*node, key);
    if (node == nullptr) return false;
  }
  return false;
}

void RemoveKey(Json& doc, const KeyPath& path) {
  Json* node = &doc;
  for (std::size_t i = 0; i + 1 < path.size(); ++i) {
    node = FindKey(*node, path[i]);
    if (node == nullptr || !node->is_object()) return;
  }
  for (auto it = node->begin(); it != node->end(); ++it) {
    if (KeyEquals(it.key(), path.back())) {
      node->erase(it);
      return;
    }
  }
}

void FillDefaults(Json& target, const Json& defaults) {
  for (const auto& [key, value] : defaults.items()) {
    Json* existing = FindKey(target, key);
    if (existing == nullptr) {
      target[key] = value;
    } else if (existing->is_object() && value.is_object()) {
      FillDefaults(*existing, value);
    }
  }
}

void MergeKeys(Json& target, const Json& patch) {
  for (const auto& [key, value] : patch.items()) {
    Json* existing = FindKey(target, key);
    if (existing == nullptr) {
      target[key] = value;
    } else if (existing->is_object() && value.is_object()) {
      MergeKeys(*existing, value);
    } else {
      *existing = value;
    }
  }
}

Result<Json> ObjectOrEmpty(const Json& value, const char* what) {
  if (value.is_null()) return Json::object();
  if (!value.is_object()) {
    return MakeError(std::string(what) + " must be a JSON object, got " + value.type_name());
  }
  if (!DepthWithin(value, kMaxValueDepth)) {
    return MakeError(std::string(what) + " nests deeper than " + std::to_string(kMaxValueDepth) +
                     " levels");
  }
  return value;
}

}  // namespace

Result<Json> ApplyConfigurationUpdate(const Json& current, const Json& default_configuration,
                                      const std::vector<std::string>& reset_pointers,
                                      const Json& merge) {
  auto result = ObjectOrEmpty(current, "the running configuration");
  if (!result) return result.error();
  auto defaults = ObjectOrEmpty(default_configuration, "the default configuration");
  if (!defaults) return defaults.error();
  auto patch = ObjectOrEmpty(merge, "MERGE");
  if (!patch) return patch.error();

  // Check every pointer before changing anything.
  bool reset_all = false;
  std::vector<KeyPath> resets;
  for (const auto& pointer : reset_pointers) {
    auto path = ParseJsonPointer(pointer);
    if (!path) return MakeError("RESET: " + path.error().message);
    if (path->empty()) {
      reset_all = true;
      continue;
    }
    if (PassesThroughArray(*result, *path) || PassesThroughArray(*defaults, *path)) {
      return MakeError("RESET pointer \"" + pointer +
                       "\" points into a list; a list can only be reset whole");
    }
    resets.push_back(std::move(*path));
  }

  Json& config = *result;
  if (reset_all) {
    config = Json::object();
  } else {
    for (const auto& path : resets) RemoveKey(config, path);
  }
  FillDefaults(config, *defaults);
  MergeKeys(config, *patch);
  return config;
}

}  // namespace lichen::config
