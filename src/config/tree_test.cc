#include "config/tree.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace lichen::config {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

Json J(const char* text) { return Json::parse(text); }

// Records every notification as "kind:a.b.c".
struct Recorder {
  std::vector<std::string> seen;
  WatchCallback Callback() {
    return [this](const Change& change) {
      const char* kind = change.kind == ChangeKind::kAdded     ? "added"
                         : change.kind == ChangeKind::kChanged ? "changed"
                                                               : "removed";
      seen.push_back(std::string(kind) + ":" + PathToString(change.path));
    };
  }
};

std::vector<std::string> Paths(const std::vector<KeyPath>& paths) {
  std::vector<std::string> out;
  for (const auto& p : paths) out.push_back(PathToString(p));
  return out;
}

TEST(tree, FindAndToJson) {
  Tree tree;
  ASSERT_TRUE(tree.Set({"services", "app", "version"}, "1.0.0", 10));
  ASSERT_TRUE(tree.Set({"services", "app", "configuration", "ports"}, J("[1, 2]"), 10));

  const Node* version = tree.Find({"services", "app", "version"});
  ASSERT_NE(version, nullptr);
  EXPECT_FALSE(version->is_container());
  EXPECT_EQ(version->value(), "1.0.0");
  EXPECT_EQ(version->modtime(), 10);
  ASSERT_NE(tree.Find({"services", "app"}), nullptr);
  EXPECT_TRUE(tree.Find({"services", "app"})->is_container());
  EXPECT_EQ(tree.Find({"services", "nope"}), nullptr);
  EXPECT_EQ(tree.Find({"services", "app", "version", "deeper"}), nullptr);

  EXPECT_EQ(*tree.ToJson({"services", "app"}),
            J(R"({"version": "1.0.0", "configuration": {"ports": [1, 2]}})"));
  EXPECT_EQ(*tree.ToJson({"services", "app", "version"}), "1.0.0");
  EXPECT_EQ(*tree.ToJson({}), J(R"({"services": {"app": {"version": "1.0.0",
                                    "configuration": {"ports": [1, 2]}}}})"));
  EXPECT_FALSE(tree.ToJson({"missing"}).has_value());
}

TEST(tree, KeysIgnoreCaseAndKeepTheFirstSpelling) {
  Tree tree;
  ASSERT_TRUE(tree.Set({"Services", "MyApp", "RunWith"}, "ggc_user", 1));
  ASSERT_TRUE(tree.Set({"services", "myapp", "runwith"}, "other", 2));
  EXPECT_EQ(*tree.ToJson({}), J(R"({"Services": {"MyApp": {"RunWith": "other"}}})"));
  EXPECT_EQ(*tree.ToJson({"SERVICES", "myApp", "runWITH"}), "other");
  EXPECT_TRUE(KeyEquals("aBc", "AbC"));
  EXPECT_FALSE(KeyEquals("abc", "abd"));
  EXPECT_FALSE(KeyEquals("abc", "abcd"));

  auto merged = tree.Merge({"SERVICES"}, J(R"({"MYAPP": {"RUNWITH": "third", "New": 1}})"), 3);
  ASSERT_TRUE(merged);
  EXPECT_EQ(*tree.ToJson({}), J(R"({"Services": {"MyApp": {"RunWith": "third", "New": 1}}})"));
}

TEST(tree, SetRejectsObjectsAndTheRoot) {
  Tree tree;
  auto object = tree.Set({"a"}, J(R"({"b": 1})"), 1);
  ASSERT_FALSE(object);
  EXPECT_THAT(object.error().message, HasSubstr("Merge or Replace"));
  EXPECT_FALSE(tree.Set({}, 1, 1));
  EXPECT_FALSE(tree.Merge({"a"}, 1, 1));
  EXPECT_FALSE(tree.Replace({}, 1, 1));
  EXPECT_EQ(*tree.ToJson({}), Json::object());
}

TEST(tree, OlderWritesAreIgnoredAndReported) {
  Tree tree;
  ASSERT_TRUE(tree.Set({"c", "key"}, 1, 100));

  auto older = tree.Set({"c", "key"}, 2, 99);
  ASSERT_TRUE(older);
  EXPECT_FALSE(older->fully_applied());
  EXPECT_THAT(Paths(older->stale), ElementsAre("c.key"));
  EXPECT_FALSE(older->changed());
  EXPECT_EQ(*tree.ToJson({"c", "key"}), 1);
  EXPECT_EQ(tree.Find({"c", "key"})->modtime(), 100);

  // An equal timestamp is accepted, as in the nucleus.
  auto equal = tree.Set({"c", "key"}, 3, 100);
  ASSERT_TRUE(equal);
  EXPECT_TRUE(equal->fully_applied());
  EXPECT_EQ(*tree.ToJson({"c", "key"}), 3);

  auto newer = tree.Set({"c", "key"}, 4, 200);
  ASSERT_TRUE(newer);
  EXPECT_TRUE(newer->changed());
  EXPECT_EQ(tree.Find({"c", "key"})->modtime(), 200);
  // Containers carry the newest write below them.
  EXPECT_EQ(tree.Find({"c"})->modtime(), 200);
  EXPECT_EQ(tree.Find({})->modtime(), 200);

  // A merge applies what is newer and reports the rest.
  ASSERT_TRUE(tree.Set({"c", "other"}, "x", 50));
  auto merged = tree.Merge({"c"}, J(R"({"key": 5, "other": "y", "fresh": true})"), 150);
  ASSERT_TRUE(merged);
  EXPECT_THAT(Paths(merged->stale), ElementsAre("c.key"));
  EXPECT_EQ(*tree.ToJson({"c"}), J(R"({"key": 4, "other": "y", "fresh": true})"));
}

TEST(tree, SameValueWithNewerTimestampIsNotAChange) {
  Tree tree;
  Recorder recorder;
  auto handle = tree.Watch({}, recorder.Callback());
  ASSERT_TRUE(tree.Set({"a"}, "v", 10));
  auto again = tree.Set({"a"}, "v", 20);
  ASSERT_TRUE(again);
  EXPECT_FALSE(again->changed());
  EXPECT_TRUE(again->fully_applied());
  EXPECT_EQ(tree.Find({"a"})->modtime(), 20);
  EXPECT_THAT(recorder.seen, ElementsAre("added:a"));
}

TEST(tree, NumberKindMatters) {
  Tree tree;
  ASSERT_TRUE(tree.Set({"n"}, 1, 1));
  auto same = tree.Set({"n"}, Json::parse("1"), 2);  // parsed as unsigned: same number
  ASSERT_TRUE(same);
  EXPECT_FALSE(same->changed());
  auto as_float = tree.Set({"n"}, 1.0, 3);
  ASSERT_TRUE(as_float);
  EXPECT_TRUE(as_float->changed());
}

TEST(tree, MergeObjectsKeyByKeyAndListsWhole) {
  Tree tree;
  ASSERT_TRUE(tree.Merge({"cfg"}, J(R"({"a": 1, "obj": {"x": 1, "y": 2}, "list": [1, 2, 3]})"), 1));
  auto merged = tree.Merge({"cfg"}, J(R"({"obj": {"y": 3, "z": 4}, "list": [9], "b": null})"), 2);
  ASSERT_TRUE(merged);
  EXPECT_EQ(*tree.ToJson({"cfg"}),
            J(R"({"a": 1, "obj": {"x": 1, "y": 3, "z": 4}, "list": [9], "b": null})"));
  std::vector<std::string> changes;
  for (const auto& c : merged->changes) changes.push_back(PathToString(c.path));
  EXPECT_THAT(changes, ElementsAre("cfg.obj.y", "cfg.obj.z", "cfg.list", "cfg.b"));
}

TEST(tree, MergeCanChangeTheShape) {
  Tree tree;
  ASSERT_TRUE(tree.Merge({}, J(R"({"a": 1, "b": {"x": 1}})"), 10));
  Recorder recorder;
  auto handle = tree.Watch({}, recorder.Callback());
  auto merged = tree.Merge({}, J(R"({"a": {"inner": true}, "b": "flat"})"), 20);
  ASSERT_TRUE(merged);
  EXPECT_EQ(*tree.ToJson({}), J(R"({"a": {"inner": true}, "b": "flat"})"));
  EXPECT_THAT(recorder.seen, ElementsAre("removed:a", "added:a.inner", "removed:b.x", "added:b"));

  // A shape change is a write like any other: an older one is ignored.
  auto older = tree.Merge({}, J(R"({"a": 5, "b": {"y": 1}})"), 15);
  ASSERT_TRUE(older);
  EXPECT_THAT(Paths(older->stale), ElementsAre("a", "b"));
  EXPECT_EQ(*tree.ToJson({}), J(R"({"a": {"inner": true}, "b": "flat"})"));
}

TEST(tree, ReplaceRemovesKeysNotGiven) {
  Tree tree;
  ASSERT_TRUE(tree.Merge({"cfg"}, J(R"({"keep": 1, "drop": 2, "obj": {"x": 1, "y": 2}})"), 10));
  Recorder recorder;
  auto handle = tree.Watch({"cfg"}, recorder.Callback());
  auto replaced = tree.Replace({"cfg"}, J(R"({"KEEP": 1, "obj": {"y": 3}, "new": []})"), 20);
  ASSERT_TRUE(replaced);
  EXPECT_EQ(*tree.ToJson({"cfg"}), J(R"({"keep": 1, "obj": {"y": 3}, "new": []})"));
  EXPECT_THAT(recorder.seen, ElementsAre("changed:cfg.obj.y", "removed:cfg.obj.x", "added:cfg.new",
                                         "removed:cfg.drop"));

  // Replacing with a scalar turns the node into a leaf.
  ASSERT_TRUE(tree.Replace({"cfg", "obj"}, "flat", 30));
  EXPECT_EQ(*tree.ToJson({"cfg", "obj"}), "flat");

  // Removals obey the timestamps too: a newer key survives an older Replace.
  ASSERT_TRUE(tree.Set({"cfg", "newer"}, 1, 100));
  auto older = tree.Replace({"cfg"}, J(R"({"keep": 1})"), 50);
  ASSERT_TRUE(older);
  EXPECT_THAT(Paths(older->stale), ElementsAre("cfg.newer"));
  EXPECT_EQ(*tree.ToJson({"cfg"}), J(R"({"keep": 1, "newer": 1})"));
}

TEST(tree, Remove) {
  Tree tree;
  ASSERT_TRUE(tree.Merge({}, J(R"({"a": {"x": 1, "y": {"z": 2}}, "b": 3})"), 10));
  Recorder recorder;
  auto handle = tree.Watch({}, recorder.Callback());

  auto missing = tree.Remove({"nope", "deeper"}, 20);
  ASSERT_TRUE(missing);
  EXPECT_FALSE(missing->changed());

  auto removed = tree.Remove({"A"}, 20);
  ASSERT_TRUE(removed);
  EXPECT_EQ(*tree.ToJson({}), J(R"({"b": 3})"));
  EXPECT_THAT(recorder.seen, ElementsAre("removed:a.x", "removed:a.y.z"));
  EXPECT_EQ(tree.Find({})->modtime(), 20);

  // A container is as new as its newest leaf: an older removal is ignored.
  ASSERT_TRUE(tree.Merge({"c"}, J(R"({"old": 1})"), 30));
  ASSERT_TRUE(tree.Set({"c", "new"}, 1, 40));
  auto older = tree.Remove({"c"}, 35);
  ASSERT_TRUE(older);
  EXPECT_THAT(Paths(older->stale), ElementsAre("c"));
  EXPECT_NE(tree.Find({"c"}), nullptr);

  auto all = tree.Remove({}, 50);
  ASSERT_TRUE(all);
  EXPECT_EQ(*tree.ToJson({}), Json::object());
}

TEST(tree, EmptyContainersAreReported) {
  Tree tree;
  Recorder recorder;
  auto handle = tree.Watch({}, recorder.Callback());
  ASSERT_TRUE(tree.Merge({"a", "b"}, Json::object(), 1));
  EXPECT_EQ(*tree.ToJson({}), J(R"({"a": {"b": {}}})"));
  ASSERT_TRUE(tree.Remove({"a"}, 2));
  EXPECT_THAT(recorder.seen, ElementsAre("added:a.b", "removed:a.b"));
}

TEST(tree, WatchersSeePrefixesOnly) {
  Tree tree;
  Recorder app;
  Recorder other;
  auto app_handle = tree.Watch({"services", "App", "configuration"}, app.Callback());
  auto other_handle = tree.Watch({"services", "other"}, other.Callback());
  ASSERT_TRUE(tree.Merge({"services", "app", "CONFIGURATION"}, J(R"({"k": 1})"), 1));
  ASSERT_TRUE(tree.Set({"services", "app", "version"}, "1.0.0", 1));
  ASSERT_TRUE(tree.Set({"services", "otherThing", "version"}, "1.0.0", 1));
  EXPECT_THAT(app.seen, ElementsAre("added:services.app.CONFIGURATION.k"));
  EXPECT_THAT(other.seen, IsEmpty());
}

TEST(tree, NoNotificationForNoOps) {
  Tree tree;
  ASSERT_TRUE(tree.Merge({}, J(R"({"a": 1, "b": {"c": [1, 2]}})"), 1));
  Recorder recorder;
  auto handle = tree.Watch({}, recorder.Callback());
  auto same = tree.Merge({}, J(R"({"a": 1, "b": {"c": [1, 2]}})"), 2);
  ASSERT_TRUE(same);
  EXPECT_FALSE(same->changed());
  auto replaced = tree.Replace({}, J(R"({"a": 1, "b": {"c": [1, 2]}})"), 3);
  ASSERT_TRUE(replaced);
  EXPECT_FALSE(replaced->changed());
  ASSERT_TRUE(tree.Remove({"zzz"}, 4));
  EXPECT_THAT(recorder.seen, IsEmpty());

  auto one = tree.Merge({}, J(R"({"a": 1, "b": {"c": [1, 2, 3]}})"), 5);
  ASSERT_TRUE(one);
  EXPECT_THAT(recorder.seen, ElementsAre("changed:b.c"));
}

TEST(tree, UnregisterOnDestruction) {
  Tree tree;
  Recorder recorder;
  {
    auto handle = tree.Watch({}, recorder.Callback());
    EXPECT_TRUE(handle.active());
    ASSERT_TRUE(tree.Set({"a"}, 1, 1));
  }
  ASSERT_TRUE(tree.Set({"a"}, 2, 2));
  EXPECT_THAT(recorder.seen, ElementsAre("added:a"));

  auto handle = tree.Watch({}, recorder.Callback());
  WatchHandle moved = std::move(handle);
  EXPECT_FALSE(handle.active());  // NOLINT(bugprone-use-after-move): moved-from is empty
  EXPECT_TRUE(moved.active());
  moved.Reset();
  EXPECT_FALSE(moved.active());
  ASSERT_TRUE(tree.Set({"a"}, 3, 3));
  EXPECT_THAT(recorder.seen, ElementsAre("added:a"));
}

TEST(tree, HandleMayOutliveTheTree) {
  WatchHandle handle;
  {
    Tree tree;
    handle = tree.Watch({}, [](const Change&) {});
    EXPECT_TRUE(handle.active());
  }
  EXPECT_FALSE(handle.active());
  handle.Reset();  // must not touch the destroyed tree
}

TEST(tree, HandlesFollowAMovedTree) {
  Tree first;
  Recorder recorder;
  auto handle = first.Watch({}, recorder.Callback());
  Tree second = std::move(first);
  ASSERT_TRUE(second.Set({"a"}, 1, 1));
  EXPECT_THAT(recorder.seen, ElementsAre("added:a"));
  handle.Reset();
  ASSERT_TRUE(second.Set({"a"}, 2, 2));
  EXPECT_THAT(recorder.seen, ElementsAre("added:a"));
}

TEST(tree, CallbacksRunAfterTheWholeChange) {
  Tree tree;
  std::vector<Json> views;
  auto handle = tree.Watch({}, [&](const Change&) { views.push_back(*tree.ToJson({})); });
  ASSERT_TRUE(tree.Merge({}, J(R"({"a": 1, "b": 2, "c": 3})"), 1));
  ASSERT_EQ(views.size(), 3u);
  for (const auto& view : views) EXPECT_EQ(view, J(R"({"a": 1, "b": 2, "c": 3})"));
}

TEST(tree, ChangesMadeByCallbacksAreQueuedNotNested) {
  Tree tree;
  std::vector<std::string> log;
  int depth = 0;
  auto handle = tree.Watch({}, [&](const Change& change) {
    ++depth;
    log.push_back(PathToString(change.path) + "@" + std::to_string(depth));
    if (change.path == KeyPath{"trigger"}) {
      auto r = tree.Set({"echo"}, "done", 2);
      EXPECT_TRUE(r);
      // Applied at once, reported later.
      EXPECT_EQ(*tree.ToJson({"echo"}), "done");
      EXPECT_EQ(log.size(), 1u);
    }
    --depth;
  });
  ASSERT_TRUE(tree.Merge({}, J(R"({"trigger": 1, "second": 2})"), 1));
  EXPECT_THAT(log, ElementsAre("trigger@1", "second@1", "echo@1"));
}

TEST(tree, FeedbackLoopsAreBounded) {
  Tree tree;
  std::int64_t n = 0;
  auto handle = tree.Watch({}, [&](const Change&) {
    ++n;
    EXPECT_TRUE(tree.Set({"counter"}, n, n));
  });
  ASSERT_TRUE(tree.Set({"counter"}, 0, 0));
  EXPECT_EQ(static_cast<std::size_t>(n), Tree::kMaxQueuedNotifications);
  EXPECT_EQ(tree.dropped_notifications(), 1u);
  // The next operation starts a fresh round.
  handle.Reset();
  Recorder recorder;
  auto again = tree.Watch({}, recorder.Callback());
  ASSERT_TRUE(tree.Set({"other"}, 1, n + 1));
  EXPECT_THAT(recorder.seen, ElementsAre("added:other"));
}

TEST(tree, CallbacksMayUnregisterThemselvesAndOthers) {
  Tree tree;
  int first_calls = 0;
  int second_calls = 0;
  WatchHandle second;
  WatchHandle first = tree.Watch({}, [&](const Change&) {
    ++first_calls;
    first.Reset();
    second.Reset();
  });
  second = tree.Watch({}, [&](const Change&) { ++second_calls; });
  ASSERT_TRUE(tree.Merge({}, J(R"({"a": 1, "b": 2})"), 1));
  EXPECT_EQ(first_calls, 1);
  EXPECT_EQ(second_calls, 0);
}

TEST(tree, SnapshotRoundTripKeepsTimestampsAndSpelling) {
  Tree tree;
  ASSERT_TRUE(
      tree.Merge({"Services", "App"}, J(R"({"Version": "1.0.0", "list": [1, {"a": 2}]})"), 7));
  ASSERT_TRUE(tree.Set({"services", "app", "configuration", "k"}, nullptr, 9));
  Json snapshot = tree.Snapshot({});

  Tree copy;
  Recorder recorder;
  auto handle = copy.Watch({}, recorder.Callback());
  auto restored = copy.Restore({}, snapshot);
  ASSERT_TRUE(restored) << restored.error().message;
  EXPECT_EQ(copy.Snapshot({}), snapshot);
  EXPECT_EQ(*copy.ToJson({}), *tree.ToJson({}));
  EXPECT_EQ(copy.Find({"services", "app", "configuration", "k"})->modtime(), 9);
  EXPECT_EQ(copy.Find({"services", "app", "version"})->modtime(), 7);
  EXPECT_EQ(recorder.seen.size(), 3u);

  // Restoring a subtree is authoritative: timestamps may go back.
  auto sub =
      copy.Restore({"Services", "App"}, J(R"({"t": 3, "c": {"version": {"t": 3, "v": "0.9"}}})"));
  ASSERT_TRUE(sub) << sub.error().message;
  EXPECT_EQ(*copy.ToJson({"services", "app"}), J(R"({"version": "0.9"})"));
  EXPECT_EQ(copy.Find({"services", "app"})->modtime(), 3);

  EXPECT_FALSE(copy.Restore({}, J(R"({"t": 1, "v": 1})")));
  EXPECT_FALSE(copy.Restore({"x"}, J(R"({"t": 1})")));
  EXPECT_FALSE(copy.Restore({"x"}, J(R"({"t": "1", "v": 1})")));
  EXPECT_FALSE(copy.Restore({"x"}, J(R"({"t": 1, "v": {"obj": 1}})")));
  EXPECT_FALSE(
      copy.Restore({"x"}, J(R"({"t": 1, "c": {"a": {"t": 1, "v": 1}, "A": {"t": 1, "v": 2}}})")));
  EXPECT_EQ(tree.Snapshot({"missing"}), Json());
}

TEST(tree, RejectsInputNestedTooDeeply) {
  Tree tree;
  Json deep = Json::object();
  Json* cursor = &deep;
  for (int i = 0; i < 200; ++i) cursor = &((*cursor)["k"] = Json::object());
  EXPECT_FALSE(tree.Merge({}, deep, 1));
  EXPECT_FALSE(tree.Set(KeyPath(200, "k"), 1, 1));
  EXPECT_EQ(*tree.ToJson({}), Json::object());
}

TEST(json_pointer, Parse) {
  EXPECT_THAT(*ParseJsonPointer(""), IsEmpty());
  EXPECT_THAT(*ParseJsonPointer("/a/b"), ElementsAre("a", "b"));
  EXPECT_THAT(*ParseJsonPointer("/a~1b/c~0d"), ElementsAre("a/b", "c~d"));
  EXPECT_THAT(*ParseJsonPointer("/"), ElementsAre(""));
  EXPECT_FALSE(ParseJsonPointer("a/b"));
  EXPECT_FALSE(ParseJsonPointer("/a~2"));
  EXPECT_FALSE(ParseJsonPointer("/a~"));
}

// The deployment configuration update.
Json Apply(const char* current, const char* defaults, std::vector<std::string> reset,
           const char* merge) {
  auto r = ApplyConfigurationUpdate(J(current), J(defaults), reset, J(merge));
  EXPECT_TRUE(r) << r.error().message;
  return r ? *r : Json();
}

TEST(configuration_update, ResetEverything) {
  EXPECT_EQ(Apply(R"({"a": 5, "extra": 1, "obj": {"x": 9}})",
                  R"({"a": 1, "obj": {"x": 1, "y": 2}})", {""}, "null"),
            J(R"({"a": 1, "obj": {"x": 1, "y": 2}})"));
}

TEST(configuration_update, ResetOneKeyRestoresItsDefault) {
  EXPECT_EQ(Apply(R"({"a": 5, "b": 6})", R"({"a": 1, "b": 2})", {"/a"}, "{}"),
            J(R"({"b": 6, "a": 1})"));
}

TEST(configuration_update, ResetOneKeyWithoutDefaultRemovesIt) {
  EXPECT_EQ(Apply(R"({"a": 5, "b": 6})", R"({"a": 1})", {"/b"}, "{}"), J(R"({"a": 5})"));
  // Case-insensitive, and an absent key is fine.
  EXPECT_EQ(Apply(R"({"Mode": "x"})", "{}", {"/mode", "/absent/deeper"}, "{}"), Json::object());
}

TEST(configuration_update, ResetAnObjectRestoresTheWholeDefaultObject) {
  Json out =
      Apply(R"({"obj": {"x": 9, "user": 1}})", R"({"obj": {"x": 1, "y": 2}})", {"/obj"}, "{}");
  EXPECT_EQ(out, J(R"({"obj": {"x": 1, "y": 2}})"));
  // Resetting one key inside keeps the user's other keys.
  out = Apply(R"({"obj": {"x": 9, "user": 1}})", R"({"obj": {"x": 1, "y": 2}})", {"/obj/x"}, "{}");
  EXPECT_EQ(out, J(R"({"obj": {"user": 1, "x": 1, "y": 2}})"));
}

TEST(configuration_update, ResetPointerIntoAListIsRejected) {
  auto r = ApplyConfigurationUpdate(J(R"({"list": [{"a": 1}]})"), J("{}"), {"/list/0/a"}, J("{}"));
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, HasSubstr("\"/list/0/a\""));
  // A list only in the defaults counts too.
  auto in_defaults = ApplyConfigurationUpdate(J("{}"), J(R"({"list": [1]})"), {"/list/0"}, J("{}"));
  ASSERT_FALSE(in_defaults);
  EXPECT_THAT(in_defaults.error().message, HasSubstr("/list/0"));
  // The whole list resets fine, and a digit key of an object is just a key.
  EXPECT_EQ(Apply(R"({"list": [9], "ports": {"8080": "on"}})", R"({"list": [1]})",
                  {"/list", "/ports/8080"}, "{}"),
            J(R"({"ports": {}, "list": [1]})"));
}

TEST(configuration_update, MalformedInputIsAnError) {
  EXPECT_FALSE(ApplyConfigurationUpdate(J("{}"), J("{}"), {"nope"}, J("{}")));
  EXPECT_FALSE(ApplyConfigurationUpdate(J("{}"), J("{}"), {}, J("[1]")));
  EXPECT_FALSE(ApplyConfigurationUpdate(J("{}"), J("3"), {}, J("{}")));
  EXPECT_FALSE(ApplyConfigurationUpdate(J("\"x\""), J("{}"), {}, J("{}")));
}

TEST(configuration_update, DefaultsNeverOverwrite) {
  EXPECT_EQ(Apply(R"({"a": 5, "n": null, "obj": {"x": 9}, "shape": {"k": 1}})",
                  R"({"a": 1, "n": 3, "obj": {"x": 1, "y": 2}, "new": 7, "shape": 4})", {}, "{}"),
            J(R"({"a": 5, "n": null, "obj": {"x": 9, "y": 2}, "shape": {"k": 1}, "new": 7})"));
}

TEST(configuration_update, MergeRules) {
  // Lists are replaced whole, null is stored, shapes may change, spelling is kept.
  EXPECT_EQ(Apply(R"({"list": [1, 2, 3], "a": 1, "obj": {"x": 1}, "Port": 1})", "{}", {},
                  R"({"list": [4], "a": null, "obj": 5, "port": 2, "fresh": {"k": []}})"),
            J(R"({"list": [4], "a": null, "obj": 5, "Port": 2, "fresh": {"k": []}})"));
  // MERGE comes after RESET and after the defaults.
  EXPECT_EQ(Apply(R"({"a": 5})", R"({"a": 1, "b": 2})", {"/a"}, R"({"a": 7})"),
            J(R"({"a": 7, "b": 2})"));
  // Keys with "/" in them are reached with "~1".
  EXPECT_EQ(Apply(R"({"a/b": 1, "c": 2})", "{}", {"/a~1b"}, "{}"), J(R"({"c": 2})"));
}

TEST(configuration_update, OnTheTreeNotifiesOnlyRealChanges) {
  Tree tree;
  const KeyPath config = {"services", "app", "configuration"};
  ASSERT_TRUE(tree.Merge(config, J(R"({"a": 1, "b": {"c": 2}, "list": [1]})"), 10));
  Recorder recorder;
  auto handle = tree.Watch(config, recorder.Callback());

  auto same = tree.ApplyConfigurationUpdate(config, J(R"({"a": 0, "list": [0]})"), {}, J("{}"), 20);
  ASSERT_TRUE(same);
  EXPECT_FALSE(same->changed());
  EXPECT_THAT(recorder.seen, IsEmpty());

  auto updated = tree.ApplyConfigurationUpdate(config, J(R"({"a": 0, "list": [0]})"), {"/list"},
                                               J(R"({"b": {"c": 3}})"), 30);
  ASSERT_TRUE(updated);
  EXPECT_EQ(*tree.ToJson(config), J(R"({"a": 1, "b": {"c": 3}, "list": [0]})"));
  EXPECT_THAT(recorder.seen, ElementsAre("changed:services.app.configuration.b.c",
                                         "changed:services.app.configuration.list"));

  // A key the component wrote after the deployment's timestamp keeps its value.
  ASSERT_TRUE(tree.Set({"services", "app", "configuration", "a"}, 42, 100));
  auto older = tree.ApplyConfigurationUpdate(config, J("{}"), {}, J(R"({"a": 2})"), 50);
  ASSERT_TRUE(older);
  EXPECT_THAT(Paths(older->stale), ElementsAre("services.app.configuration.a"));
  EXPECT_EQ(*tree.ToJson({"services", "app", "configuration", "a"}), 42);

  // The first deployment of a component starts from nothing.
  auto fresh = tree.ApplyConfigurationUpdate({"services", "new", "configuration"}, J(R"({"x": 1})"),
                                             {}, J("null"), 60);
  ASSERT_TRUE(fresh);
  EXPECT_EQ(*tree.ToJson({"services", "new", "configuration"}), J(R"({"x": 1})"));

  ASSERT_TRUE(tree.Set({"services", "leaf"}, 1, 70));
  EXPECT_FALSE(tree.ApplyConfigurationUpdate({"services", "leaf"}, J("{}"), {}, J("{}"), 80));
}

}  // namespace
}  // namespace lichen::config
