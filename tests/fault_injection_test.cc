// Crash safety of the daemon: random sequences of local deployments, a kill -9 of the
// daemon at a random moment, a restart, and invariants checked after every trial.
//
// Reproduce a run with LICHEN_FAULT_SEED=<seed printed at the start>; LICHEN_FAULT_TRIALS
// changes the number of trials (default 50).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "config/state_store.h"
#include "nucleus_harness.h"

namespace lichen::harness {
namespace {

const std::string kAlpha = "lichen.fault.Alpha";
const std::string kBeta = "lichen.fault.Beta";
const std::string kGamma = "lichen.fault.Gamma";
const std::string kOneshot = "lichen.fault.Oneshot";
const std::string kGraceful = "lichen.fault.Graceful";

std::string RecipeDir() { return SourceDir() + "/tests/data/nucleus/fault/recipes"; }

// The recipes' DefaultConfiguration, as tests/data/nucleus/fault/recipes has them.
Json Defaults(const std::string& name, const std::string& version) {
  if (name == kAlpha) {
    if (version == "1.0.0") return {{"Message", "alpha-default"}};
    if (version == "2.0.0") return {{"Message", "alpha-default-v2"}, {"Extra", "two"}};
    return {{"Message", "alpha-default-v3"}};
  }
  if (name == kBeta) return {{"Message", "beta-default"}};
  if (name == kGamma) return {{"Message", "gamma-default"}};
  if (name == kOneshot) return {{"Message", "oneshot-default"}};
  return Json::object();
}

bool LongRunning(const std::string& name) { return name != kOneshot; }

// What the daemon should run: root components (every dependency here is also a root)
// with their versions and configurations.
struct Model {
  std::map<std::string, std::string> versions;
  std::map<std::string, Json> config;
};

struct ConfigUpdate {
  Json merge = Json::object();
  std::vector<std::string> reset;
};

struct Op {
  std::map<std::string, std::string> merge;  // -m name=version
  std::vector<std::string> remove;
  std::map<std::string, ConfigUpdate> update;
  bool rollback = false;
  std::string expect_status = "SUCCEEDED";
  std::string expect_detailed = "SUCCESSFUL";
  std::string id;  // once submitted
  std::string text;

  std::vector<std::string> Args() const {
    std::vector<std::string> args = {"deployment", "create", "-r", RecipeDir()};
    for (const auto& [name, version] : merge) {
      args.push_back("-m");
      args.push_back(name + "=" + version);
    }
    if (!remove.empty()) {
      std::string joined;
      for (const auto& r : remove) joined += (joined.empty() ? "" : ",") + r;
      args.push_back("--remove");
      args.push_back(joined);
    }
    if (!update.empty()) {
      Json j = Json::object();
      for (const auto& [name, u] : update) {
        Json entry = Json::object();
        if (!u.merge.empty()) entry["MERGE"] = u.merge;
        if (!u.reset.empty()) entry["RESET"] = u.reset;
        j[name] = entry;
      }
      args.push_back("-c");
      args.push_back(j.dump());
    }
    if (rollback) {
      args.push_back("--failure-handling-policy");
      args.push_back("ROLLBACK");
    }
    return args;
  }

  std::string Describe() const {
    std::string out;
    for (const auto& a : Args()) {
      if (a == RecipeDir()) continue;
      out += (a == "-r" ? "" : a + " ");
    }
    return out + "(expect " + expect_status + "/" + expect_detailed + ")";
  }
};

// Applies a deployment that succeeded, the way the nucleus computes the result.
void Apply(Model& m, const Op& op) {
  for (const auto& r : op.remove) {
    m.versions.erase(r);
    m.config.erase(r);
  }
  for (const auto& [name, version] : op.merge) m.versions[name] = version;
  for (auto it = m.config.begin(); it != m.config.end();) {
    it = m.versions.count(it->first) ? std::next(it) : m.config.erase(it);
  }
  for (const auto& [name, version] : m.versions) {
    Json cfg = m.config.count(name) ? m.config[name] : Json::object();
    auto u = op.update.find(name);
    if (u != op.update.end()) {
      for (const auto& ptr : u->second.reset) cfg.erase(ptr.substr(1));
    }
    const Json defaults = Defaults(name, version);
    for (const auto& [k, v] : defaults.items()) {
      if (!cfg.contains(k)) cfg[k] = v;
    }
    if (u != op.update.end()) {
      for (const auto& [k, v] : u->second.merge.items()) cfg[k] = v;
    }
    m.config[name] = cfg;
  }
}

class OpGenerator {
 public:
  explicit OpGenerator(std::mt19937_64& rng) : rng_(rng) {}

  int Uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  bool Chance(double p) { return std::bernoulli_distribution(p)(rng_); }
  std::string Version() { return Chance(0.5) ? "1.0.0" : "2.0.0"; }
  std::string Token() { return "m" + std::to_string(Uniform(1000, 999999)); }

  // A deployment valid against `m` (the projected state when it runs).
  Op Next(const Model& m, bool allow_failing) {
    Op op;
    std::vector<std::string> roots;
    for (const auto& [name, v] : m.versions) roots.push_back(name);
    int kind = roots.empty() ? 0 : Uniform(0, 9);
    if (allow_failing && Chance(0.12)) kind = 10;
    if (kind <= 3) {  // add or change versions
      const std::vector<std::string> all = {kAlpha, kBeta, kGamma, kOneshot};
      const std::string name = all[static_cast<size_t>(Uniform(0, 3))];
      op.merge[name] = Version();
      if (name == kBeta && !m.versions.count(kAlpha)) op.merge[kAlpha] = Version();
      if (Chance(0.5)) op.update[name].merge["Message"] = Token();
    } else if (kind <= 5) {  // configuration change only
      const std::string name = roots[static_cast<size_t>(Uniform(0, int(roots.size()) - 1))];
      if (Chance(0.5)) op.merge[name] = m.versions.at(name);
      op.update[name].merge["Message"] = Token();
    } else if (kind <= 7) {  // reset
      const std::string name = roots[static_cast<size_t>(Uniform(0, int(roots.size()) - 1))];
      op.update[name].reset.push_back("/Message");
      if (name == kAlpha && Chance(0.5)) op.update[name].reset.push_back("/Extra");
    } else if (kind <= 9) {  // remove
      const std::string name = roots[static_cast<size_t>(Uniform(0, int(roots.size()) - 1))];
      op.remove.push_back(name);
      if (name == kAlpha && m.versions.count(kBeta)) op.remove.push_back(kBeta);
    } else {  // Alpha 3.0.0 goes BROKEN: rolled back, with a configuration change undone
      op.merge[kAlpha] = "3.0.0";
      op.rollback = true;
      if (m.versions.count(kGamma)) op.update[kGamma].merge["Message"] = Token();
      op.expect_status = "FAILED";
      // Beta needs Alpha < 3.0.0: then resolution fails before anything changes.
      op.expect_detailed =
          m.versions.count(kBeta) ? "FAILED_NO_STATE_CHANGE" : "FAILED_ROLLBACK_COMPLETE";
    }
    if (op.rollback == false && Chance(0.2)) op.rollback = true;  // ROLLBACK on a good one
    return op;
  }

 private:
  std::mt19937_64& rng_;
};

// The line each component's Run prints for its version and configuration.
std::string ExpectedLine(const std::string& name, const std::string& version, const Json& cfg) {
  std::string line =
      "state version=" + version + " message=" + cfg.value("Message", std::string("?"));
  if (name == kAlpha && version == "2.0.0") line += " extra=" + cfg.value("Extra", std::string());
  return line;
}

// The last "state version=..." line the component printed.
std::string LastStateLine(const std::string& log) {
  auto at = log.rfind("state version=");
  if (at == std::string::npos) return "";
  auto end = log.find_first_of("\n", at);
  std::string line = log.substr(at, end == std::string::npos ? std::string::npos : end - at);
  // TEXT layout: "<message>. {contexts}"
  auto ctx = line.find(". {");
  return ctx == std::string::npos ? line : line.substr(0, ctx);
}

// Opens a copy of the database as it is on disk after the crash (the WAL beside it).
::testing::AssertionResult StateDbOpens(const std::string& root, const std::string& scratch) {
  std::error_code ec;
  fs::create_directories(scratch, ec);
  fs::remove(scratch + "/state.db", ec);
  fs::remove(scratch + "/state.db-wal", ec);
  fs::remove(scratch + "/state.db-shm", ec);
  fs::copy_file(root + "/config/state.db", scratch + "/state.db", ec);
  if (ec) return ::testing::AssertionFailure() << "copying state.db: " << ec.message();
  if (fs::exists(root + "/config/state.db-wal")) {
    fs::copy_file(root + "/config/state.db-wal", scratch + "/state.db-wal", ec);
  }
  auto store = config::StateStore::Open(scratch + "/state.db");
  if (!store.ok()) return ::testing::AssertionFailure() << store.error().message;
  if (store->recovery()) {
    return ::testing::AssertionFailure()
           << "state.db was unreadable after the crash: " << store->recovery()->reason;
  }
  auto tree = store->LoadConfig();
  if (!tree.ok()) return ::testing::AssertionFailure() << tree.error().message;
  return ::testing::AssertionSuccess();
}

// Process groups the daemon's ledger holds (config/processes: "<boot id> <pgid> <start>").
std::set<pid_t> LedgerGroups(const std::string& root) {
  std::set<pid_t> out;
  std::istringstream in(ReadFile(root + "/config/processes"));
  std::string boot;
  long long pgid = 0;
  unsigned long long start = 0;
  while (in >> boot >> pgid >> start) out.insert(static_cast<pid_t>(pgid));
  return out;
}

std::string Tail(const std::string& text, size_t lines) {
  size_t at = text.size();
  while (lines-- > 0 && at > 0) {
    at = text.rfind('\n', at - 1);
    if (at == std::string::npos) return text;
  }
  return text.substr(at);
}

bool SameJson(const Json& a, const Json& b) {
  return nlohmann::json::parse(a.dump()) == nlohmann::json::parse(b.dump());
}

unsigned long long StartTimeOf(pid_t pid) {
  auto p = ReadProc(pid);
  return p ? p->start_time : 0;
}

class FaultInjection : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "the daemon tests run as root";
  }
};

TEST_F(FaultInjection, KillNineAtRandomMomentsKeepsStateConsistent) {
  const char* seed_env = std::getenv("LICHEN_FAULT_SEED");
  const uint64_t seed =
      seed_env != nullptr && *seed_env != '\0'
          ? std::strtoull(seed_env, nullptr, 10)
          : static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());
  const char* trials_env = std::getenv("LICHEN_FAULT_TRIALS");
  const int trials = trials_env != nullptr && *trials_env != '\0' ? std::atoi(trials_env) : 50;
  std::cout << "[ fault    ] seed " << seed << " (LICHEN_FAULT_SEED=" << seed
            << " reproduces this run), " << trials << " trials\n";
  RecordProperty("seed", std::to_string(seed));
  std::mt19937_64 rng(seed);
  OpGenerator gen(rng);

  Nucleus n;
  ASSERT_TRUE(n.Start());
  Model model;
  std::set<std::string> seen_ids;
  int leftovers_total = 0, async_kills = 0, failing_ops = 0, resumed = 0;
  size_t resumes_seen = 0;
  const auto started = Clock::now();

  for (int trial = 0; trial < trials; ++trial) {
    SCOPED_TRACE("trial " + std::to_string(trial) + " (seed " + std::to_string(seed) + ")");
    // Plan 1-3 deployments against the state each one will see.
    Model projected = model;
    std::vector<Op> ops;
    const int count = gen.Uniform(1, 3);
    bool have_failing = false;
    for (int i = 0; i < count; ++i) {
      Op op = gen.Next(projected, !have_failing);
      if (op.expect_status == "FAILED") {
        have_failing = true;
        ++failing_ops;
      } else {
        Apply(projected, op);
      }
      ops.push_back(std::move(op));
    }
    std::string plan;
    for (const auto& op : ops) plan += "\n  " + op.Describe();
    SCOPED_TRACE("deployments:" + plan);

    // Submit them; the daemon dies at a random moment after (or during) the last one.
    const bool kill_during_submit = gen.Chance(0.2);
    std::optional<RunningCommand> in_flight;
    for (size_t i = 0; i < ops.size(); ++i) {
      if (i + 1 == ops.size() && kill_during_submit) {
        in_flight = n.CliAsync(ops[i].Args());
        break;
      }
      auto r = n.Cli(ops[i].Args(), 10000ms);
      ASSERT_EQ(r.exit_code, 0) << r.Describe();
      ops[i].id = SubmittedId(r.out);
      ASSERT_FALSE(ops[i].id.empty()) << r.Describe();
      seen_ids.insert(ops[i].id);
    }
    const int delay_ms = kill_during_submit ? gen.Uniform(0, 30) : gen.Uniform(0, 300);
    std::this_thread::sleep_for(milliseconds(delay_ms));  // the fault's moment, not a wait
    const auto before_kill = n.Processes();
    n.Kill9();
    const std::set<pid_t> ledger_groups = LedgerGroups(n.root());
    if (in_flight) {
      ++async_kills;
      auto r = in_flight->Finish(10000ms);
      ops.back().id = r.exit_code == 0 ? SubmittedId(r.out) : "";
      if (!ops.back().id.empty()) seen_ids.insert(ops.back().id);
    }
    leftovers_total += static_cast<int>(before_kill.size());

    ASSERT_TRUE(StateDbOpens(n.root(), n.dir() + "/dbcheck"));

    ASSERT_TRUE(n.Start(10000ms));
    const unsigned long long daemon_start = StartTimeOf(n.pid());

    // Every deployment reaches a final status (bounded: a failing one takes a few s).
    std::vector<Json> deployments;
    const bool all_final = WaitFor(
        [&] {
          deployments = n.Deployments();
          if (deployments.empty() && !seen_ids.empty()) return false;  // not answering yet
          for (const auto& d : deployments) {
            if (!IsFinalStatus(d.value("status", ""))) return false;
          }
          return true;
        },
        60000ms, 50ms);
    ASSERT_TRUE(all_final) << "deployments still pending after 60 s:\n"
                           << n.Cli({"deployment", "list"}).out << "\ngreengrass.log:\n"
                           << n.Log();
    // The same through the CLI as a user sees it: nothing QUEUED or IN_PROGRESS.
    auto listed = n.Cli({"deployment", "list"});
    ASSERT_EQ(listed.exit_code, 0) << listed.Describe();
    for (const auto& row : ParseDeployments(listed.out)) {
      EXPECT_TRUE(IsFinalStatus(row.status)) << row.id << ": " << row.status;
    }

    // A submission cut off by the kill may or may not have been committed.
    if (in_flight && ops.back().id.empty()) {
      for (const auto& d : deployments) {
        const std::string id = d.value("deploymentId", "");
        if (!seen_ids.count(id)) ops.back().id = id;
      }
      if (ops.back().id.empty()) {
        ops.pop_back();  // never queued: it changes nothing
      } else {
        seen_ids.insert(ops.back().id);
      }
    }
    for (const auto& d : deployments) {
      EXPECT_TRUE(seen_ids.count(d.value("deploymentId", "")))
          << "a deployment nobody submitted: " << d.dump();
    }

    // Each deployment ended as designed; the model follows the ones that succeeded.
    bool as_expected = true;
    for (const auto& op : ops) {
      Json status = n.DeploymentStatus(op.id);
      const std::string s = status.value("status", "");
      const std::string detailed = status.value("deploymentStatusDetails", Json::object())
                                       .value("detailedDeploymentStatus", "");
      EXPECT_EQ(s, op.expect_status) << op.Describe() << "\n" << status.dump();
      EXPECT_EQ(detailed, op.expect_detailed) << op.Describe() << "\n" << status.dump();
      if (s != op.expect_status || detailed != op.expect_detailed) as_expected = false;
      if (s == "SUCCEEDED") Apply(model, op);
    }
    const size_t resumes = CountOccurrences(n.Log(), "deployment-resume");
    if (resumes > resumes_seen) ++resumed;
    resumes_seen = resumes;

    // The running set is the model's: names, versions, configuration, settled states.
    std::map<std::string, ComponentRow> rows;
    auto set_problems = [&]() -> std::string {
      rows = n.Components();
      std::string problems;
      for (const auto& [name, row] : rows) {
        if (!model.versions.count(name)) problems += name + " runs but should not\n";
      }
      for (const auto& [name, version] : model.versions) {
        auto it = rows.find(name);
        if (it == rows.end()) {
          problems += name + " is missing\n";
          continue;
        }
        const ComponentRow& row = it->second;
        const std::string state = LongRunning(name) ? "RUNNING" : "FINISHED";
        if (row.version != version)
          problems += name + " runs " + row.version + ", not " + version + "\n";
        if (row.state != state) problems += name + " is " + row.state + ", not " + state + "\n";
        if (!SameJson(row.configuration, model.config[name])) {
          problems += name + " has configuration " + row.configuration.dump() + ", not " +
                      model.config[name].dump() + "\n";
        }
      }
      return problems;
    };
    std::string set_problems_now;
    WaitFor([&] { return (set_problems_now = set_problems()).empty(); }, 15000ms, 50ms);
    EXPECT_EQ(set_problems_now, "") << n.Cli({"component", "list"}).out;
    // Each script saw the same version and configuration.
    for (const auto& [component, version] : model.versions) {
      const std::string name = component;  // a lambda may not capture a structured binding
      const std::string expected = ExpectedLine(name, version, model.config[name]);
      EXPECT_TRUE(WaitFor([&] { return LastStateLine(n.Log(name)) == expected; }, 5000ms, 25ms))
          << name << ": expected \"" << expected << "\", last printed \""
          << LastStateLine(n.Log(name)) << "\"";
    }

    // Processes from before the kill: the restarted daemon stopped every one of them
    // (through its process ledger, or the component cgroups where it can use them).
    std::vector<ProcInfo> old;
    WaitFor(
        [&] {
          old.clear();
          for (auto& p : n.Processes()) {
            if (p.start_time < daemon_start) old.push_back(p);
          }
          for (const auto& p : before_kill) {
            if (StillRunning(p) && std::none_of(old.begin(), old.end(), [&](const ProcInfo& o) {
                  return o.pid == p.pid;
                })) {
              old.push_back(p);
            }
          }
          return old.empty();
        },
        3000ms, 20ms);
    for (const auto& p : old) {
      ADD_FAILURE() << "left over from before the kill (in the ledger: "
                    << (ledger_groups.count(p.pgid) ? "yes" : "no") << "):\n"
                    << DescribeProcesses({p});
      ::kill(p.pid, SIGKILL);
    }

    // Exactly one Run process per long-running component, nothing else.
    std::vector<ProcInfo> now;
    auto process_problems = [&]() -> std::string {
      now = n.Processes();
      std::string problems;
      std::map<std::string, size_t> runs;
      for (const auto& p : now) {
        if (p.start_time < daemon_start)
          problems += "older than the daemon: pid " + std::to_string(p.pid) + "\n";
        bool known = false;
        for (const auto& [name, v] : model.versions) {
          if (p.cwd == n.WorkDir(name) && p.cmdline == "sleep 600") {
            ++runs[name];
            known = true;
          }
        }
        if (!known) problems += "unexpected process: pid " + std::to_string(p.pid) + "\n";
      }
      for (const auto& [name, v] : model.versions) {
        if (runs[name] != (LongRunning(name) ? 1u : 0u)) {
          problems += name + " has " + std::to_string(runs[name]) + " Run processes\n";
        }
      }
      return problems;
    };
    std::string process_problems_now;
    WaitFor([&] { return (process_problems_now = process_problems()).empty(); }, 5000ms, 25ms);
    EXPECT_EQ(process_problems_now, "") << "processes of the root:\n" << DescribeProcesses(now);

    if (!as_expected || ::testing::Test::HasFailure()) {
      // Carry on from what the daemon really runs, so later trials still check something.
      model.versions.clear();
      model.config.clear();
      for (const auto& [name, row] : n.Components()) {
        model.versions[name] = row.version;
        model.config[name] = row.configuration;
      }
      if (::testing::Test::HasFatalFailure()) return;
    }
  }
  const auto elapsed =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count();
  std::cout << "[ fault    ] " << trials << " trials in " << elapsed << " ms; " << leftovers_total
            << " processes were running at the kills, " << async_kills
            << " kills during a submission, " << failing_ops << " failing deployments, " << resumed
            << " trials resumed an interrupted deployment\n";

  // A clean stop at the end: exit 0, nothing left, the database intact.
  const std::string list_before_stop = n.Cli({"component", "list"}).out;
  auto code = n.Stop();
  ASSERT_TRUE(code.has_value()) << "the daemon did not stop within 30 s of SIGTERM; components "
                                   "before:\n"
                                << list_before_stop << "processes now:\n"
                                << DescribeProcesses(n.Processes()) << "greengrass.log tail:\n"
                                << Tail(n.Log(), 40);
  EXPECT_EQ(*code, 0) << ReadFile(n.daemon_output_path());
  EXPECT_TRUE(n.Processes().empty()) << DescribeProcesses(n.Processes());
  auto store = config::StateStore::Open(n.root() + "/config/state.db");
  ASSERT_TRUE(store.ok()) << store.error().message;
  EXPECT_FALSE(store->recovery().has_value());
  EXPECT_TRUE(store->LoadConfig().ok());
}

// A kill -9 while the restarted daemon starts many components at once: each spawn has a
// window between fork and ProcessLedger::Record (which runs only after the child's exec),
// so the ledger alone misses the process being started; the component cgroups must
// catch it. No process may survive the next start.
TEST_F(FaultInjection, LedgerRecordsEveryGroupBeforeAKill) {
  Nucleus n;
  const std::string recipes = n.dir() + "/many-recipes";
  std::vector<std::string> args = {"deployment", "create", "-r", recipes};
  constexpr int kComponents = 8;
  for (int i = 0; i < kComponents; ++i) {
    const std::string name = "lichen.fault.Many" + std::to_string(i);
    WriteFile(recipes + "/" + name + "-1.0.0.yaml",
              "RecipeFormatVersion: \"2020-01-25\"\nComponentName: " + name +
                  "\nComponentVersion: \"1.0.0\"\nManifests:\n  - Platform:\n      os: linux\n"
                  "    Lifecycle:\n      Run: \"exec sleep 600\"\n");
    args.push_back("-m");
    args.push_back(name + "=1.0.0");
  }
  args.insert(args.end(), {"--wait", "--timeout", "30"});
  ASSERT_TRUE(n.Start());
  auto r = n.Cli(args, 40000ms);
  ASSERT_EQ(r.exit_code, 0) << r.Describe();

  const char* seed_env = std::getenv("LICHEN_FAULT_SEED");
  const uint64_t seed =
      seed_env != nullptr && *seed_env != '\0'
          ? std::strtoull(seed_env, nullptr, 10)
          : static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());
  std::cout << "[ ledger   ] seed " << seed << "\n";
  std::mt19937_64 rng(seed);
  // How long a start takes to the point where components are spawned (Recover runs just
  // after the socket is ready): the kills land around it.
  n.Kill9();
  auto t0 = Clock::now();
  ASSERT_TRUE(n.Start(10000ms));
  const int ready_ms =
      static_cast<int>(std::chrono::duration_cast<milliseconds>(Clock::now() - t0).count());
  std::cout << "[ ledger   ] ready after " << ready_ms << " ms\n";
  int escaped = 0, window_hits = 0;
  for (int trial = 0; trial < 40; ++trial) {
    SCOPED_TRACE("trial " + std::to_string(trial) + " (seed " + std::to_string(seed) + ")");
    // Restart and kill again while Recover spawns every component.
    n.Kill9();
    ASSERT_TRUE(n.Spawn());
    const unsigned long long killed_start = StartTimeOf(n.pid());
    std::this_thread::sleep_for(
        milliseconds(std::uniform_int_distribution<int>(ready_ms / 2, ready_ms + 40)(rng)));
    n.Kill9();
    // Processes the killed daemon started that its ledger does not hold: the window.
    size_t unrecorded = 0;
    const auto ledger = LedgerGroups(n.root());
    for (const auto& p : n.Processes()) {
      if (p.start_time >= killed_start && !ledger.count(p.pgid)) {
        ++unrecorded;
        if (std::getenv("LICHEN_FAULT_VERBOSE")) std::cout << DescribeProcesses({p});
      }
    }
    window_hits += unrecorded > 0 ? 1 : 0;
    ASSERT_TRUE(n.Start(10000ms));
    const unsigned long long daemon_start = StartTimeOf(n.pid());
    // Whatever the killed daemon started must be gone now (SIGKILL is immediate, but the
    // kernel may take a moment to tear a process down).
    std::vector<ProcInfo> old;
    WaitFor(
        [&] {
          old.clear();
          for (auto& p : n.Processes()) {
            if (p.start_time < daemon_start) {
              old.push_back(p);
            }
          }
          return old.empty();
        },
        2000ms, 20ms);
    escaped += static_cast<int>(old.size());
    EXPECT_TRUE(old.empty()) << "started by the killed daemon and still running:\n"
                             << DescribeProcesses(old);
    for (const auto& p : old) ::kill(p.pid, SIGKILL);
    ASSERT_FALSE(::testing::Test::HasFatalFailure());
  }
  std::cout << "[ ledger   ] " << escaped << " processes escaped in 40 kills; " << window_hits
            << " kills left a started process out of the ledger\n";
}

// SIGTERM when every component has already FINISHED: nothing to stop, a prompt exit.
TEST_F(FaultInjection, SigtermWithOnlyFinishedComponentsExitsPromptly) {
  Nucleus n;
  ASSERT_TRUE(n.Start());
  auto r = n.Cli({"deployment", "create", "-r", RecipeDir(), "-m", kOneshot + "=1.0.0", "--wait",
                  "--timeout", "30"},
                 40000ms);
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  ASSERT_TRUE(n.WaitState(kOneshot, "FINISHED"));
  auto code = n.Stop(10000ms);
  ASSERT_TRUE(code.has_value()) << "still running 10 s after SIGTERM; greengrass.log:\n"
                                << Tail(n.Log(), 10);
  EXPECT_EQ(*code, 0);
}

TEST_F(FaultInjection, SigtermRunsShutdownStepsAndExitsZero) {
  Nucleus n;
  ASSERT_TRUE(n.Start());
  auto r = n.Cli({"deployment", "create", "-r", RecipeDir(), "-m", kGraceful + "=1.0.0", "-m",
                  kAlpha + "=1.0.0", "-m", kBeta + "=1.0.0", "--wait", "--timeout", "30"},
                 40000ms);
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  ASSERT_TRUE(n.WaitLog(kGraceful, "graceful running"));
  const auto before = n.Processes();
  EXPECT_EQ(before.size(), 3u) << DescribeProcesses(before);

  const auto t0 = Clock::now();
  auto code = n.Stop(20000ms);
  const auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - t0).count();
  ASSERT_TRUE(code.has_value()) << "the daemon did not exit within 20 s of SIGTERM";
  EXPECT_EQ(*code, 0) << ReadFile(n.daemon_output_path());
  std::cout << "[ sigterm  ] stopped 3 components in " << took << " ms\n";

  // The Shutdown step's output is in the component log (flushed before exit).
  EXPECT_NE(n.Log(kGraceful).find("graceful shutdown step ran"), std::string::npos)
      << n.Log(kGraceful);
  EXPECT_NE(n.Log().find("shutdown-complete"), std::string::npos);
  // No process of any component is left, and none of those that ran.
  EXPECT_TRUE(n.Processes().empty()) << DescribeProcesses(n.Processes());
  for (const auto& p : before) EXPECT_FALSE(StillRunning(p)) << DescribeProcesses({p});
  // Dependents stop before what they depend on: Beta is FINISHED before Alpha stops.
  const std::string log = n.Log();
  const auto beta_finished =
      log.find("serviceName=" + kBeta + ", currentState=STOPPING, newState=FINISHED");
  const auto alpha_stopping =
      log.find("serviceName=" + kAlpha + ", currentState=RUNNING, newState=STOPPING");
  ASSERT_NE(beta_finished, std::string::npos) << log;
  ASSERT_NE(alpha_stopping, std::string::npos) << log;
  EXPECT_LT(beta_finished, alpha_stopping);

  // A restart after a clean stop finds nothing to kill and runs the same components.
  ASSERT_TRUE(n.Start());
  EXPECT_TRUE(n.WaitState(kGraceful, "RUNNING"));
  EXPECT_TRUE(n.WaitState(kBeta, "RUNNING"));
  EXPECT_EQ(n.Log().find("leftover-processes"), std::string::npos);
  code = n.Stop(20000ms);
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0);
  EXPECT_TRUE(n.Processes().empty()) << DescribeProcesses(n.Processes());
}

}  // namespace
}  // namespace lichen::harness
