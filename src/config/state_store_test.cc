#include "config/state_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace lichen::config {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;

class state_store : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("lichen-state-" + std::to_string(::getpid()) + "-" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    path_ = (dir_ / "state.db").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  StateStore OpenOrDie() {
    auto store = StateStore::Open(path_);
    EXPECT_TRUE(store) << store.error().message;
    return std::move(store).value();
  }

  std::vector<fs::path> CorruptFiles() const {
    std::vector<fs::path> out;
    for (const auto& entry : fs::directory_iterator(dir_)) {
      if (entry.path().filename().string().find(".corrupt-") != std::string::npos) {
        out.push_back(entry.path());
      }
    }
    return out;
  }

  fs::path dir_;
  std::string path_;
};

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void WriteFile(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

Tree SampleTree() {
  Tree tree;
  EXPECT_TRUE(tree.Merge({}, Json::parse(R"({
    "runWithDefault": {"posixUser": "ggc_user:ggc_group"},
    "services": {
      "Alpha": {"version": "1.0.0", "configuration": {"list": [1, "two", {"three": 3}]}},
      "beta": {"version": "2.0.0", "configuration": {"nothing": null}}
    }})"),
                         100));
  EXPECT_TRUE(tree.Set({"services", "alpha", "configuration", "late"}, 1.5, 250));
  return tree;
}

TEST_F(state_store, KeyValueNamespaces) {
  auto store = OpenOrDie();
  EXPECT_FALSE(store.recovery().has_value());
  const std::string binary("a\0b\xff", 4);
  ASSERT_TRUE(store.Put("component.app", "state", "RUNNING"));
  ASSERT_TRUE(store.Put("component.app", "blob", binary));
  ASSERT_TRUE(store.Put("component.app", "empty", ""));
  ASSERT_TRUE(store.Put("component.other", "state", "BROKEN"));
  ASSERT_TRUE(store.Put("component.app", "state", "FINISHED"));

  EXPECT_EQ(**store.Get("component.app", "state"), "FINISHED");
  EXPECT_EQ(**store.Get("component.app", "blob"), binary);
  EXPECT_EQ(**store.Get("component.app", "empty"), "");
  EXPECT_FALSE(store.Get("component.app", "absent")->has_value());
  EXPECT_THAT(*store.List("component.app"),
              ElementsAre(Pair("blob", binary), Pair("empty", ""), Pair("state", "FINISHED")));

  ASSERT_TRUE(store.Delete("component.app", "state"));
  ASSERT_TRUE(store.Delete("component.app", "never-there"));
  EXPECT_FALSE(store.Get("component.app", "state")->has_value());
  EXPECT_EQ(**store.Get("component.other", "state"), "BROKEN");
  EXPECT_THAT(*store.List("nobody"), IsEmpty());
}

TEST_F(state_store, TransactionsCommitOnlyWhenAsked) {
  auto store = OpenOrDie();
  {
    auto txn = store.Begin();
    ASSERT_TRUE(txn) << txn.error().message;
    ASSERT_TRUE(store.Put("ns", "dropped", "1"));
    ASSERT_TRUE(store.EnqueueDeployment("dropped"));
    EXPECT_FALSE(store.Begin());  // one at a time
  }
  EXPECT_FALSE(store.Get("ns", "dropped")->has_value());
  EXPECT_THAT(*store.ListDeployments(), IsEmpty());

  {
    auto txn = store.Begin();
    ASSERT_TRUE(txn);
    ASSERT_TRUE(store.Put("ns", "kept", "1"));
    Transaction moved = std::move(txn).value();
    ASSERT_TRUE(moved.Commit());
    EXPECT_FALSE(moved.Commit());
  }
  EXPECT_EQ(**store.Get("ns", "kept"), "1");

  // Multi-row saves join an open transaction.
  auto txn = store.Begin();
  ASSERT_TRUE(txn);
  ASSERT_TRUE(store.SaveConfig(SampleTree()));
  ASSERT_TRUE(store.Put("ns", "with-config", "1"));
  ASSERT_TRUE(txn->Commit());
  EXPECT_EQ(*store.LoadConfig()->ToJson({}), *SampleTree().ToJson({}));
}

TEST_F(state_store, DeploymentQueueIsFifoAndNeverReusesNumbers) {
  std::int64_t last = 0;
  {
    auto store = OpenOrDie();
    auto a = store.EnqueueDeployment("a");
    auto b = store.EnqueueDeployment("b");
    auto c = store.EnqueueDeployment("c");
    ASSERT_TRUE(a && b && c);
    EXPECT_LT(*a, *b);
    EXPECT_LT(*b, *c);
    EXPECT_EQ((*store.FrontDeployment())->body, "a");
    ASSERT_TRUE(store.RemoveDeployment(*a));
    EXPECT_EQ((*store.FrontDeployment())->body, "b");
    auto listed = store.ListDeployments();
    ASSERT_TRUE(listed);
    ASSERT_EQ(listed->size(), 2u);
    EXPECT_EQ((*listed)[0].seq, *b);
    EXPECT_EQ((*listed)[1].body, "c");
    ASSERT_TRUE(store.RemoveDeployment(*b));
    ASSERT_TRUE(store.RemoveDeployment(*c));
    EXPECT_FALSE(store.FrontDeployment()->has_value());
    auto d = store.EnqueueDeployment("d");
    ASSERT_TRUE(d);
    EXPECT_GT(*d, *c);
    ASSERT_TRUE(store.RemoveDeployment(*d));
    last = *d;
  }
  auto store = OpenOrDie();
  auto e = store.EnqueueDeployment("e");
  ASSERT_TRUE(e);
  EXPECT_GT(*e, last);
}

TEST_F(state_store, ConfigurationDocumentsPerComponent) {
  auto store = OpenOrDie();
  Tree tree = SampleTree();
  ASSERT_TRUE(store.SaveConfig(tree));

  auto loaded = store.LoadConfig();
  ASSERT_TRUE(loaded) << loaded.error().message;
  EXPECT_EQ(loaded->Snapshot({}), tree.Snapshot({}));
  EXPECT_EQ(loaded->Find({"services", "alpha", "configuration", "late"})->modtime(), 250);

  // Only the documents holding the changed paths are rewritten: beta's change is
  // not saved, alpha's and the root's are.
  ASSERT_TRUE(tree.Set({"services", "alpha", "version"}, "1.1.0", 300));
  ASSERT_TRUE(tree.Set({"services", "beta", "version"}, "2.1.0", 300));
  ASSERT_TRUE(tree.Set({"runWithDefault", "posixShell"}, "bash", 300));
  ASSERT_TRUE(store.SaveConfigFor(
      tree, {{"services", "ALPHA", "version"}, {"runWithDefault", "posixShell"}}));
  loaded = store.LoadConfig();
  ASSERT_TRUE(loaded);
  EXPECT_EQ(*loaded->ToJson({"services", "alpha", "version"}), "1.1.0");
  EXPECT_EQ(*loaded->ToJson({"services", "beta", "version"}), "2.0.0");
  EXPECT_EQ(*loaded->ToJson({"runWithDefault", "posixShell"}), "bash");

  // A component removed from the tree loses its document.
  ASSERT_TRUE(tree.Remove({"services", "beta"}, 400));
  ASSERT_TRUE(store.SaveConfigFor(tree, {{"services", "beta", "version"}}));
  loaded = store.LoadConfig();
  ASSERT_TRUE(loaded);
  EXPECT_EQ(loaded->Find({"services", "beta"}), nullptr);
  EXPECT_EQ(*loaded->ToJson({"services", "alpha", "version"}), "1.1.0");

  // SaveConfig drops documents of components that are gone.
  ASSERT_TRUE(tree.Remove({"services", "alpha"}, 500));
  ASSERT_TRUE(tree.Merge({"services", "gamma"}, Json::parse(R"({"version": "3.0.0"})"), 500));
  ASSERT_TRUE(store.SaveConfig(tree));
  loaded = store.LoadConfig();
  ASSERT_TRUE(loaded);
  EXPECT_EQ(*loaded->ToJson({}), *tree.ToJson({}));
}

TEST_F(state_store, ConfigurationAndQueueCommitTogether) {
  auto store = OpenOrDie();
  {
    auto txn = store.Begin();
    ASSERT_TRUE(txn);
    ASSERT_TRUE(store.SaveConfig(SampleTree()));
    ASSERT_TRUE(store.EnqueueDeployment("deployment-1"));
  }  // rolled back
  EXPECT_EQ(*store.LoadConfig()->ToJson({}), Json::object());
  EXPECT_THAT(*store.ListDeployments(), IsEmpty());
}

TEST_F(state_store, ReopenAfterCleanCloseReturnsIdenticalData) {
  Tree tree = SampleTree();
  std::vector<std::pair<std::string, std::string>> kv;
  std::vector<QueuedDeployment> queue;
  {
    auto store = OpenOrDie();
    for (int i = 0; i < 50; ++i) {
      ASSERT_TRUE(store.Put("ns", "key" + std::to_string(i), std::string(i * 37, 'a' + i % 26)));
    }
    ASSERT_TRUE(store.Put("ns", "binary", std::string("\0\1\2", 3)));
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(store.EnqueueDeployment("d" + std::to_string(i)));
    ASSERT_TRUE(store.RemoveDeployment((*store.FrontDeployment())->seq));
    ASSERT_TRUE(store.SaveConfig(tree));
    kv = *store.List("ns");
    queue = *store.ListDeployments();
  }
  EXPECT_FALSE(fs::exists(path_ + "-wal"));  // a clean close checkpoints the WAL

  auto store = OpenOrDie();
  EXPECT_FALSE(store.recovery().has_value());
  EXPECT_EQ(*store.List("ns"), kv);
  auto reopened_queue = *store.ListDeployments();
  ASSERT_EQ(reopened_queue.size(), queue.size());
  for (std::size_t i = 0; i < queue.size(); ++i) {
    EXPECT_EQ(reopened_queue[i].seq, queue[i].seq);
    EXPECT_EQ(reopened_queue[i].body, queue[i].body);
  }
  auto loaded = store.LoadConfig();
  ASSERT_TRUE(loaded);
  EXPECT_EQ(loaded->Snapshot({}), tree.Snapshot({}));
  EXPECT_TRUE(CorruptFiles().empty());
}

// Damage done to a cleanly closed database, and whether Open() must notice.
struct Damage {
  const char* name;
  void (*apply)(const fs::path& file);
};

void FillStore(const std::string& path) {
  auto store = StateStore::Open(path);
  ASSERT_TRUE(store);
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(store->Put("ns", "key" + std::to_string(i), std::string(900, 'a' + i % 26)));
  }
  ASSERT_TRUE(store->SaveConfig(SampleTree()));
}

const Damage kDamages[] = {
    {"garbage",
     [](const fs::path& file) {
       std::mt19937 rng(7);
       std::string bytes(fs::file_size(file), '\0');
       for (char& c : bytes) c = static_cast<char>(rng());
       WriteFile(file, bytes);
     }},
    {"truncated-to-half",
     [](const fs::path& file) { fs::resize_file(file, fs::file_size(file) / 2); }},
    {"truncated-inside-header", [](const fs::path& file) { fs::resize_file(file, 50); }},
    {"page-overwritten",
     [](const fs::path& file) {
       std::string bytes = ReadFile(file);
       for (std::size_t i = 3 * 4096; i < 4 * 4096 && i < bytes.size(); ++i) {
         bytes[i] = static_cast<char>(i * 131);
       }
       WriteFile(file, bytes);
     }},
};

TEST_F(state_store, CorruptFilesAreMovedAsideAndReported) {
  for (const auto& damage : kDamages) {
    SCOPED_TRACE(damage.name);
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    FillStore(path_);
    ASSERT_GT(fs::file_size(path_), 16u * 4096u);
    damage.apply(path_);
    const std::string damaged = ReadFile(path_);

    auto store = StateStore::Open(path_);
    ASSERT_TRUE(store) << store.error().message;
    ASSERT_TRUE(store->recovery().has_value());
    EXPECT_FALSE(store->recovery()->reason.empty());
    EXPECT_THAT(store->recovery()->moved_to, HasSubstr("state.db.corrupt-"));
    auto corrupt = CorruptFiles();
    ASSERT_EQ(corrupt.size(), 1u);
    EXPECT_EQ(corrupt[0].string(), store->recovery()->moved_to);
    EXPECT_EQ(ReadFile(corrupt[0]), damaged);  // kept as found

    // The fresh database works and is empty.
    EXPECT_THAT(*store->List("ns"), IsEmpty());
    ASSERT_TRUE(store->Put("ns", "after", "1"));
    EXPECT_EQ(**store->Get("ns", "after"), "1");
  }
}

TEST_F(state_store, ZeroLengthFileIsAFreshDatabase) {
  FillStore(path_);
  fs::resize_file(path_, 0);
  auto store = OpenOrDie();
  // Indistinguishable from a new install; documented in the header.
  EXPECT_FALSE(store.recovery().has_value());
  EXPECT_THAT(*store.List("ns"), IsEmpty());
}

TEST_F(state_store, OtherOpenFailuresLeaveTheFileAlone) {
  auto missing_dir = StateStore::Open((dir_ / "no" / "such" / "dir" / "state.db").string());
  ASSERT_FALSE(missing_dir);
  EXPECT_THAT(missing_dir.error().message, HasSubstr("state.db"));

  { auto store = OpenOrDie(); }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version = 99", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  auto newer = StateStore::Open(path_);
  ASSERT_FALSE(newer);
  EXPECT_THAT(newer.error().message, HasSubstr("newer"));
  EXPECT_TRUE(CorruptFiles().empty());
}

// ---- Fault injection: a writer process killed with SIGKILL at a random point. ----

constexpr int kTrials = 60;
constexpr int kMaxTransactions = 400;
constexpr int kKeysPerTransaction = 6;
// Writes per transaction: the keys, a log row, the queue, two config documents, meta.
constexpr int kWritesPerTransaction = kKeysPerTransaction + 5;

std::string LogKey(int txn) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%08d", txn);
  return buf;
}

// The queue after `txn` committed transactions: each enqueues its number and every
// third one also removes the front.
std::vector<std::string> ExpectedQueue(int txn) {
  std::deque<std::string> queue;
  for (int i = 1; i <= txn; ++i) {
    queue.push_back(std::to_string(i));
    if (i % 3 == 0) queue.pop_front();
  }
  return {queue.begin(), queue.end()};
}

// The child: transactions 1, 2, ... each writing every kind of state, reporting on
// `report_fd` -n when transaction n begins and n once it committed. With die_in_txn > 0 it kills
// itself after `die_after_writes` writes of that transaction, before its commit.
[[noreturn]] void RunWriter(const std::string& path, int report_fd, int die_in_txn,
                            int die_after_writes, unsigned seed) {
  auto store = StateStore::Open(path);
  if (!store) ::_exit(2);
  std::mt19937 rng(seed);
  Tree tree;
  for (int txn = 1; txn <= kMaxTransactions; ++txn) {
    const int begin_event = -txn;
    if (::write(report_fd, &begin_event, sizeof begin_event) != sizeof begin_event) ::_exit(6);
    auto transaction = store->Begin();
    if (!transaction) ::_exit(3);
    int writes = 0;
    auto wrote = [&](bool ok) {
      if (!ok) ::_exit(4);
      if (txn == die_in_txn && writes++ == die_after_writes) ::raise(SIGKILL);
    };
    const std::string tag = std::to_string(txn) + ":";
    for (int k = 0; k < kKeysPerTransaction; ++k) {
      // Sizes vary so that rows move between pages and overflow pages.
      wrote(
          bool(store->Put("keys", "k" + std::to_string(k), tag + std::string(rng() % 5000, 'x'))));
    }
    wrote(bool(store->Put("log", LogKey(txn), tag)));
    bool queued = bool(store->EnqueueDeployment(std::to_string(txn)));
    if (queued && txn % 3 == 0) {
      auto front = store->FrontDeployment();
      queued = front && front->has_value() && store->RemoveDeployment((*front)->seq);
    }
    wrote(queued);
    wrote(tree.Set({"services", "writer", "configuration", "txn"}, txn, txn) &&
          tree.Set({"services", "writer", "configuration", "pad"}, std::string(rng() % 3000, 'y'),
                   txn) &&
          store->SaveConfigFor(tree, {{"services", "writer"}}));
    wrote(tree.Set({"lastTxn"}, txn, txn) && store->SaveConfigFor(tree, {{"lastTxn"}}));
    wrote(bool(store->Put("meta", "txn", std::to_string(txn))));
    if (!transaction->Commit()) ::_exit(5);
    if (::write(report_fd, &txn, sizeof txn) != sizeof txn) ::_exit(6);
  }
  ::_exit(0);
}

// Verifies the reopened database against the committed transaction count.
void ExpectConsistent(StateStore& store, int txn) {
  for (int k = 0; k < kKeysPerTransaction; ++k) {
    auto value = store.Get("keys", "k" + std::to_string(k));
    ASSERT_TRUE(value);
    if (txn == 0) {
      EXPECT_FALSE(value->has_value());
    } else {
      ASSERT_TRUE(value->has_value());
      EXPECT_EQ((*value)->rfind(std::to_string(txn) + ":", 0), 0u) << "key k" << k;
    }
  }
  auto log = store.List("log");
  ASSERT_TRUE(log);
  ASSERT_EQ(log->size(), static_cast<std::size_t>(txn));
  for (int i = 1; i <= txn; ++i) EXPECT_EQ((*log)[i - 1].first, LogKey(i));

  auto queue = store.ListDeployments();
  ASSERT_TRUE(queue);
  std::vector<std::string> bodies;
  std::int64_t previous = 0;
  for (const auto& item : *queue) {
    EXPECT_GT(item.seq, previous);
    previous = item.seq;
    bodies.push_back(item.body);
  }
  EXPECT_EQ(bodies, ExpectedQueue(txn));
  // Numbers are never reused, even for transactions that died.
  auto next = store.EnqueueDeployment("after-crash");
  ASSERT_TRUE(next);
  EXPECT_GT(*next, txn);

  auto tree = store.LoadConfig();
  ASSERT_TRUE(tree) << tree.error().message;
  if (txn == 0) {
    EXPECT_EQ(*tree->ToJson({}), Json::object());
  } else {
    EXPECT_EQ(*tree->ToJson({"services", "writer", "configuration", "txn"}), txn);
    EXPECT_EQ(tree->Find({"services", "writer", "configuration", "txn"})->modtime(), txn);
    EXPECT_EQ(*tree->ToJson({"lastTxn"}), txn);
  }
}

TEST_F(state_store, SurvivesSigkillAtAnyPoint) {
  std::mt19937 rng(20240611);  // fixed: every run injects the same faults
  int self_killed = 0;
  int killed_externally = 0;
  int committed_unreported = 0;
  int inside_transaction = 0;
  int finished = 0;
  int empty_database = 0;
  for (int trial = 0; trial < kTrials; ++trial) {
    SCOPED_TRACE("trial " + std::to_string(trial));
    for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(path_ + suffix);

    // Even trials: the writer dies inside a chosen transaction after a chosen write.
    // Odd trials: the parent kills it after a chosen number of commits plus a random
    // delay, which lands anywhere: inside Open(), a write, or a commit.
    const bool self_kill = trial % 2 == 0;
    const int die_in_txn = self_kill ? 1 + static_cast<int>(rng() % 25) : 0;
    const int die_after_writes = static_cast<int>(rng() % kWritesPerTransaction);
    const int commits_before_kill = static_cast<int>(rng() % 25);
    const unsigned delay_us = rng() % 3000;
    const unsigned seed = rng();

    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(fds[0]);
      RunWriter(path_, fds[1], die_in_txn, die_after_writes, seed);
    }
    ::close(fds[1]);

    // Events from the writer: -n when transaction n begins, n once it committed.
    int reported = 0;
    int began = 0;
    int value = 0;
    auto next_event = [&] {
      if (::read(fds[0], &value, sizeof value) != sizeof value) return false;
      (value < 0 ? began : reported) = value < 0 ? -value : value;
      return true;
    };
    if (!self_kill) {
      for (int i = 0; i < 2 * kMaxTransactions && reported < commits_before_kill; ++i) {
        if (!next_event()) break;
      }
      // The injected fault: SIGKILL after a random delay, not a wait for anything.
      ::usleep(delay_us);
      ::kill(pid, SIGKILL);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    for (int i = 0; i <= 2 * kMaxTransactions; ++i) {  // the rest of the events, then EOF
      if (!next_event()) break;
    }
    ::close(fds[0]);
    if (WIFEXITED(status)) {
      ASSERT_EQ(WEXITSTATUS(status), 0) << "the writer failed on its own";
      ++finished;
    } else {
      ASSERT_TRUE(WIFSIGNALED(status));
      ASSERT_EQ(WTERMSIG(status), SIGKILL);
      ++(self_kill ? self_killed : killed_externally);
    }

    auto store = StateStore::Open(path_);
    ASSERT_TRUE(store) << store.error().message;
    EXPECT_FALSE(store->recovery().has_value()) << store->recovery()->reason;
    auto meta = store->Get("meta", "txn");
    ASSERT_TRUE(meta);
    const int txn = meta->has_value() ? std::stoi(**meta) : 0;
    if (self_kill) {
      EXPECT_EQ(txn, die_in_txn - 1);
      EXPECT_EQ(reported, die_in_txn - 1);
    } else {
      // The last commit may have reached the disk without being reported.
      EXPECT_TRUE(txn == reported || txn == reported + 1) << txn << " vs " << reported;
      if (txn == reported + 1) {
        ++committed_unreported;
      } else if (began == reported + 1 && WIFSIGNALED(status)) {
        ++inside_transaction;  // between Begin() and a durable commit
      }
    }
    if (txn == 0) ++empty_database;
    ExpectConsistent(*store, txn);
    if (HasFatalFailure()) return;
  }
  std::printf(
      "[ fault    ] %d trials: %d killed inside a transaction at a chosen write; %d killed at a "
      "random moment (%d between Begin() and a durable commit, %d after a durable but "
      "unreported commit); %d finished; %d left no commit\n",
      kTrials, self_killed, killed_externally, inside_transaction, committed_unreported, finished,
      empty_database);
  EXPECT_EQ(self_killed + killed_externally + finished, kTrials);
}

}  // namespace
}  // namespace lichen::config
