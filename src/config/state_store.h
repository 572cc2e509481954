// Crash-safe state: everything the daemon must not lose (the configuration tree,
// per-component state, the deployment queue) in one SQLite database.
//
// The database runs in WAL mode with synchronous=FULL (a commit is on disk when
// Commit() returns), foreign_keys=ON and a busy timeout. Open() runs
// PRAGMA integrity_check; a file SQLite cannot read or that fails the check is
// renamed to "<path>.corrupt-<epoch ms>" (a non-empty -wal file alongside as
// "<path>.corrupt-<epoch ms>-wal"), a fresh database is created in its place, and
// recovery() says what happened. A zero-length file is a valid empty database to
// SQLite, so truncation to zero bytes cannot be told apart from a new install.
//
// One thread owns a StateStore. Writes made while a Transaction is open belong to it;
// writes made outside one commit on their own. Each call that writes several rows
// (SaveConfig, SaveConfigFor) is atomic either way.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"
#include "config/tree.h"

namespace lichen::config {

namespace detail {
struct StoreConnection;
}

struct StoreRecovery {
  std::string moved_to;  // where the unreadable database was moved
  std::string reason;    // what SQLite reported
};

struct QueuedDeployment {
  std::int64_t seq;  // increases with every enqueue and is never reused
  std::string body;
};

// BEGIN IMMEDIATE on construction; ROLLBACK on destruction unless Commit() succeeded.
// The StateStore it came from must outlive it.
class Transaction {
 public:
  Transaction(Transaction&& other) noexcept;
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();

  // After a failed commit the transaction is rolled back. Either way it is over.
  Result<void> Commit();

 private:
  friend class StateStore;
  explicit Transaction(detail::StoreConnection* connection) : connection_(connection) {}
  detail::StoreConnection* connection_;
};

class StateStore {
 public:
  // Creates the file (and schema) when missing. Fails when the file cannot be opened
  // or was written by a newer schema; a corrupt file is moved aside (see above).
  static Result<StateStore> Open(const std::string& path);

  StateStore(StateStore&&) noexcept;
  StateStore& operator=(StateStore&&) noexcept;
  StateStore(const StateStore&) = delete;
  StateStore& operator=(const StateStore&) = delete;
  ~StateStore();

  const std::string& path() const;
  // Set when Open() found the previous database unreadable.
  const std::optional<StoreRecovery>& recovery() const;

  // Fails when a transaction is already open.
  Result<Transaction> Begin();

  // Key/value namespaces (per-component state and the like). Values may be binary.
  Result<std::optional<std::string>> Get(std::string_view ns, std::string_view key);
  Result<void> Put(std::string_view ns, std::string_view key, std::string_view value);
  Result<void> Delete(std::string_view ns, std::string_view key);  // absent is fine
  Result<std::vector<std::pair<std::string, std::string>>> List(std::string_view ns);  // by key

  // The deployment queue, first in first out.
  Result<std::int64_t> EnqueueDeployment(std::string_view body);
  Result<std::optional<QueuedDeployment>> FrontDeployment();
  Result<void> RemoveDeployment(std::int64_t seq);  // absent is fine
  Result<std::vector<QueuedDeployment>> ListDeployments();

  // The configuration tree, one document per services.<Component> and one for the
  // rest, each with every timestamp. SaveConfig() writes them all (and drops
  // documents of components no longer present); SaveConfigFor() rewrites only the
  // documents holding the given changed paths (a Change::path from a watcher).
  Result<void> SaveConfig(const Tree& tree);
  Result<void> SaveConfigFor(const Tree& tree, const std::vector<KeyPath>& changed_paths);
  Result<Tree> LoadConfig();

 private:
  explicit StateStore(std::unique_ptr<detail::StoreConnection> connection);
  std::unique_ptr<detail::StoreConnection> connection_;
};

}  // namespace lichen::config
