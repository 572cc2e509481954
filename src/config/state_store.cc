#include "config/state_store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <set>

namespace lichen::config {

namespace {

constexpr int kSchemaVersion = 1;
constexpr int kBusyTimeoutMs = 5000;
constexpr int kMaxIntegrityMessages = 5;
constexpr int kMaxMoveAsideAttempts = 100;
constexpr char kServicesKey[] = "services";

constexpr char kSchema[] = R"sql(
CREATE TABLE kv(
  ns TEXT NOT NULL,
  key TEXT NOT NULL,
  value BLOB NOT NULL,
  PRIMARY KEY(ns, key)
) WITHOUT ROWID;
CREATE TABLE deployment_queue(
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  body BLOB NOT NULL
);
CREATE TABLE config_doc(
  doc TEXT PRIMARY KEY NOT NULL,
  name TEXT NOT NULL,
  body TEXT NOT NULL
) WITHOUT ROWID;
PRAGMA user_version = 1;
)sql";

bool IsCorruption(int rc) {
  int primary = rc & 0xff;
  return primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB;
}

}  // namespace

namespace detail {

struct StoreConnection {
  sqlite3* db = nullptr;
  std::string path;
  std::optional<StoreRecovery> recovery;
  bool in_transaction = false;

  StoreConnection() = default;
  StoreConnection(const StoreConnection&) = delete;
  StoreConnection& operator=(const StoreConnection&) = delete;
  ~StoreConnection() {
    if (db != nullptr) sqlite3_close(db);
  }

  Error Fail(std::string_view what, int rc) const {
    std::string message = "state store " + path + ": " + std::string(what) + ": ";
    message += db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    message += " (code " + std::to_string(rc) + ")";
    return MakeError(std::move(message));
  }

  int Exec(const char* sql) { return sqlite3_exec(db, sql, nullptr, nullptr, nullptr); }

  Result<void> ExecOrFail(const char* sql, std::string_view what) {
    int rc = Exec(sql);
    if (rc != SQLITE_OK) return Fail(what, rc);
    return {};
  }
};

}  // namespace detail

namespace {

using detail::StoreConnection;

// A prepared statement. Bind errors are kept and reported by the next Step().
class Statement {
 public:
  Statement(StoreConnection& connection, const char* sql) : connection_(connection) {
    rc_ = sqlite3_prepare_v2(connection.db, sql, -1, &stmt_, nullptr);
  }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement() { sqlite3_finalize(stmt_); }

  Statement& Text(int index, std::string_view text) {
    Check(sqlite3_bind_text(stmt_, index, text.empty() ? "" : text.data(),
                            static_cast<int>(text.size()), SQLITE_TRANSIENT));
    return *this;
  }
  Statement& Blob(int index, std::string_view bytes) {
    Check(sqlite3_bind_blob(stmt_, index, bytes.empty() ? "" : bytes.data(),
                            static_cast<int>(bytes.size()), SQLITE_TRANSIENT));
    return *this;
  }
  Statement& Int(int index, std::int64_t value) {
    Check(sqlite3_bind_int64(stmt_, index, value));
    return *this;
  }

  // true: a row is ready; false: done.
  Result<bool> Step(std::string_view what) {
    if (rc_ != SQLITE_OK) return connection_.Fail(what, rc_);
    last_rc_ = sqlite3_step(stmt_);
    if (last_rc_ == SQLITE_ROW) return true;
    if (last_rc_ == SQLITE_DONE) return false;
    return connection_.Fail(what, last_rc_);
  }
  Result<void> Run(std::string_view what) {
    auto row = Step(what);
    if (!row) return row.error();
    return {};
  }
  // The code of the failure Step() reported (preparing and binding included).
  int error_code() const { return rc_ != SQLITE_OK ? rc_ : last_rc_; }

  std::string Column(int index) const {
    const void* data = sqlite3_column_blob(stmt_, index);
    int size = sqlite3_column_bytes(stmt_, index);
    if (data == nullptr || size <= 0) return {};
    return std::string(static_cast<const char*>(data), static_cast<std::size_t>(size));
  }
  std::int64_t ColumnInt(int index) const { return sqlite3_column_int64(stmt_, index); }

 private:
  void Check(int rc) {
    if (rc_ == SQLITE_OK && rc != SQLITE_OK) rc_ = rc;
  }
  StoreConnection& connection_;
  sqlite3_stmt* stmt_ = nullptr;
  int rc_ = SQLITE_OK;
  int last_rc_ = SQLITE_OK;
};

// Runs `body` inside a savepoint: inside an open Transaction it joins it, outside it
// commits on its own. All or nothing either way.
template <typename Body>
Result<void> Atomically(StoreConnection& connection, Body&& body) {
  if (auto ok = connection.ExecOrFail("SAVEPOINT lichen_op", "savepoint"); !ok) return ok;
  Result<void> result = body();
  if (result) {
    int rc = connection.Exec("RELEASE lichen_op");
    if (rc == SQLITE_OK) return result;
    result = connection.Fail("release savepoint", rc);
  }
  connection.Exec("ROLLBACK TO lichen_op");
  connection.Exec("RELEASE lichen_op");
  return result;
}

struct Attempt {
  std::unique_ptr<StoreConnection> connection;
  bool corrupt = false;
  std::string message;
};

Attempt Failed(StoreConnection& connection, std::string_view what, int rc) {
  return {nullptr, IsCorruption(rc), connection.Fail(what, rc).message};
}

Attempt TryOpen(const std::string& path) {
  auto connection = std::make_unique<StoreConnection>();
  connection->path = path;
  int rc =
      sqlite3_open_v2(path.c_str(), &connection->db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) return Failed(*connection, "open", rc);
  sqlite3_extended_result_codes(connection->db, 1);
  sqlite3_busy_timeout(connection->db, kBusyTimeoutMs);
  // Until the file has passed the checks, closing must not checkpoint the WAL into it:
  // a corrupt file is kept as found.
  sqlite3_db_config(connection->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);

  {
    Statement check(*connection, "PRAGMA integrity_check");
    std::string problems;
    int count = 0;
    for (;;) {  // one row per problem, bounded by SQLite's own limit (100 by default)
      auto row = check.Step("integrity check");
      if (!row) return Failed(*connection, "integrity check", check.error_code());
      if (!*row) break;
      std::string line = check.Column(0);
      if (line == "ok") continue;
      if (count++ < kMaxIntegrityMessages) problems += (problems.empty() ? "" : "; ") + line;
    }
    if (count > 0) {
      return {nullptr, true, "state store " + path + ": integrity check failed: " + problems};
    }
  }

  {
    Statement mode(*connection, "PRAGMA journal_mode=WAL");
    auto row = mode.Step("set WAL mode");
    if (!row) return Failed(*connection, "set WAL mode", mode.error_code());
    if (!*row || mode.Column(0) != "wal") {
      return {nullptr, false, "state store " + path + ": WAL mode is not available here"};
    }
  }
  for (const char* pragma : {"PRAGMA synchronous=FULL", "PRAGMA foreign_keys=ON"}) {
    rc = connection->Exec(pragma);
    if (rc != SQLITE_OK) return Failed(*connection, pragma, rc);
  }

  int version = 0;
  {
    Statement read(*connection, "PRAGMA user_version");
    auto row = read.Step("read schema version");
    if (!row) return Failed(*connection, "read schema version", read.error_code());
    if (*row) version = static_cast<int>(read.ColumnInt(0));
  }
  if (version > kSchemaVersion) {
    return {nullptr, false,
            "state store " + path + ": schema version " + std::to_string(version) +
                " was written by a newer Lichen (this one knows " + std::to_string(kSchemaVersion) +
                ")"};
  }
  if (version == 0) {
    rc = connection->Exec("BEGIN IMMEDIATE");
    if (rc == SQLITE_OK) rc = connection->Exec(kSchema);
    if (rc == SQLITE_OK) rc = connection->Exec("COMMIT");
    if (rc != SQLITE_OK) {
      Attempt failed = Failed(*connection, "create schema", rc);
      connection->Exec("ROLLBACK");
      return failed;
    }
  }
  sqlite3_db_config(connection->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 0, nullptr);
  return {std::move(connection), false, {}};
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

// Best effort: the rename has happened either way; this only makes it durable sooner.
void SyncDirectoryOf(const std::string& path) {
  auto slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

// Renames the database (and its WAL) out of the way; returns the new name.
Result<std::string> MoveAside(const std::string& path) {
  auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  std::string base = path + ".corrupt-" + std::to_string(now);
  std::string target = base;
  for (int i = 1; Exists(target) || Exists(target + "-wal"); ++i) {
    if (i >= kMaxMoveAsideAttempts) return MakeError("no free name to move " + path + " aside");
    target = base + "-" + std::to_string(i);
  }
  if (::rename(path.c_str(), target.c_str()) != 0) {
    return MakeError("cannot move " + path + " aside: " + std::strerror(errno));
  }
  const std::string wal = path + "-wal";
  struct stat st;
  if (::lstat(wal.c_str(), &st) == 0) {
    if (st.st_size == 0) {
      ::unlink(wal.c_str());  // holds nothing
    } else if (::rename(wal.c_str(), (target + "-wal").c_str()) != 0) {
      return MakeError("cannot move " + wal + " aside: " + std::strerror(errno));
    }
  }
  ::unlink((path + "-shm").c_str());  // an index of the WAL, rebuilt from it when needed
  SyncDirectoryOf(path);
  return target;
}

std::string ServiceDocKey(std::string_view name) {
  return std::string(kServicesKey) + "/" + FoldKey(name);
}

std::string Dump(const Json& json) {
  return json.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// Everything but the components' own subtrees, which have documents of their own.
Json RootDocument(const Node& root) {
  Json children = Json::object();
  for (const auto& child : root.children()) {
    if (KeyEquals(child->name(), kServicesKey) && child->is_container()) {
      children[child->name()] = Json{{"t", child->modtime()}, {"c", Json::object()}};
    } else {
      children[child->name()] = SnapshotOf(*child);
    }
  }
  return Json{{"t", root.modtime()}, {"c", std::move(children)}};
}

const Node* ServicesNode(const Tree& tree) {
  const Node* services = tree.Find({kServicesKey});
  return services != nullptr && services->is_container() ? services : nullptr;
}

Result<void> WriteDoc(StoreConnection& connection, const std::string& doc, std::string_view name,
                      const Json& body) {
  return Statement(connection,
                   "INSERT INTO config_doc(doc, name, body) VALUES(?1, ?2, ?3) "
                   "ON CONFLICT(doc) DO UPDATE SET name = excluded.name, body = excluded.body")
      .Text(1, doc)
      .Text(2, name)
      .Text(3, Dump(body))
      .Run("save configuration");
}

Result<void> DeleteDoc(StoreConnection& connection, const std::string& doc) {
  return Statement(connection, "DELETE FROM config_doc WHERE doc = ?1")
      .Text(1, doc)
      .Run("delete configuration");
}

Result<void> WriteRootDoc(StoreConnection& connection, const Tree& tree) {
  return WriteDoc(connection, "", "", RootDocument(*tree.Find({})));
}

// The document of services.<name>: written, or deleted when the component is gone.
Result<void> WriteServiceDoc(StoreConnection& connection, const Tree& tree, std::string_view name) {
  const Node* services = ServicesNode(tree);
  const Node* service = services == nullptr ? nullptr : services->Child(name);
  if (service == nullptr) return DeleteDoc(connection, ServiceDocKey(name));
  return WriteDoc(connection, ServiceDocKey(name), service->name(), SnapshotOf(*service));
}

}  // namespace

Transaction::Transaction(Transaction&& other) noexcept
    : connection_(std::exchange(other.connection_, nullptr)) {}

Transaction::~Transaction() {
  if (connection_ == nullptr) return;
  // Nothing to report to from a destructor; a failed ROLLBACK leaves SQLite's own
  // automatic rollback, and the next Begin() reports the connection's state.
  connection_->Exec("ROLLBACK");
  connection_->in_transaction = false;
}

Result<void> Transaction::Commit() {
  if (connection_ == nullptr) return MakeError("the transaction is already over");
  StoreConnection* connection = std::exchange(connection_, nullptr);
  connection->in_transaction = false;
  int rc = connection->Exec("COMMIT");
  if (rc == SQLITE_OK) return {};
  Error error = connection->Fail("commit", rc);
  connection->Exec("ROLLBACK");
  return error;
}

StateStore::StateStore(std::unique_ptr<detail::StoreConnection> connection)
    : connection_(std::move(connection)) {}
StateStore::StateStore(StateStore&&) noexcept = default;
StateStore& StateStore::operator=(StateStore&&) noexcept = default;
StateStore::~StateStore() = default;

Result<StateStore> StateStore::Open(const std::string& path) {
  Attempt first = TryOpen(path);
  if (first.connection) return StateStore(std::move(first.connection));
  if (!first.corrupt) return MakeError(first.message);
  auto moved = MoveAside(path);
  if (!moved) return MakeError(first.message + "; " + moved.error().message);
  Attempt second = TryOpen(path);
  if (!second.connection) {
    return MakeError(second.message + " (after moving a corrupt database to " + *moved + ")");
  }
  second.connection->recovery = StoreRecovery{*moved, first.message};
  return StateStore(std::move(second.connection));
}

const std::string& StateStore::path() const { return connection_->path; }

const std::optional<StoreRecovery>& StateStore::recovery() const { return connection_->recovery; }

Result<Transaction> StateStore::Begin() {
  if (connection_->in_transaction) return MakeError("a transaction is already open");
  if (auto ok = connection_->ExecOrFail("BEGIN IMMEDIATE", "begin"); !ok) return ok.error();
  connection_->in_transaction = true;
  return Transaction(connection_.get());
}

Result<std::optional<std::string>> StateStore::Get(std::string_view ns, std::string_view key) {
  Statement select(*connection_, "SELECT value FROM kv WHERE ns = ?1 AND key = ?2");
  select.Text(1, ns).Text(2, key);
  auto row = select.Step("get");
  if (!row) return row.error();
  if (!*row) return std::optional<std::string>();
  return std::optional<std::string>(select.Column(0));
}

Result<void> StateStore::Put(std::string_view ns, std::string_view key, std::string_view value) {
  return Statement(*connection_,
                   "INSERT INTO kv(ns, key, value) VALUES(?1, ?2, ?3) "
                   "ON CONFLICT(ns, key) DO UPDATE SET value = excluded.value")
      .Text(1, ns)
      .Text(2, key)
      .Blob(3, value)
      .Run("put");
}

Result<void> StateStore::Delete(std::string_view ns, std::string_view key) {
  return Statement(*connection_, "DELETE FROM kv WHERE ns = ?1 AND key = ?2")
      .Text(1, ns)
      .Text(2, key)
      .Run("delete");
}

Result<std::vector<std::pair<std::string, std::string>>> StateStore::List(std::string_view ns) {
  Statement select(*connection_, "SELECT key, value FROM kv WHERE ns = ?1 ORDER BY key");
  select.Text(1, ns);
  std::vector<std::pair<std::string, std::string>> out;
  for (;;) {  // one iteration per row of a finite table
    auto row = select.Step("list");
    if (!row) return row.error();
    if (!*row) return out;
    out.emplace_back(select.Column(0), select.Column(1));
  }
}

Result<std::int64_t> StateStore::EnqueueDeployment(std::string_view body) {
  Statement insert(*connection_, "INSERT INTO deployment_queue(body) VALUES(?1)");
  insert.Blob(1, body);
  if (auto ok = insert.Run("enqueue deployment"); !ok) return ok.error();
  return static_cast<std::int64_t>(sqlite3_last_insert_rowid(connection_->db));
}

Result<std::optional<QueuedDeployment>> StateStore::FrontDeployment() {
  Statement select(*connection_, "SELECT seq, body FROM deployment_queue ORDER BY seq LIMIT 1");
  auto row = select.Step("read deployment queue");
  if (!row) return row.error();
  if (!*row) return std::optional<QueuedDeployment>();
  return std::optional<QueuedDeployment>(QueuedDeployment{select.ColumnInt(0), select.Column(1)});
}

Result<void> StateStore::RemoveDeployment(std::int64_t seq) {
  return Statement(*connection_, "DELETE FROM deployment_queue WHERE seq = ?1")
      .Int(1, seq)
      .Run("remove deployment");
}

Result<std::vector<QueuedDeployment>> StateStore::ListDeployments() {
  Statement select(*connection_, "SELECT seq, body FROM deployment_queue ORDER BY seq");
  std::vector<QueuedDeployment> out;
  for (;;) {  // one iteration per row of a finite table
    auto row = select.Step("read deployment queue");
    if (!row) return row.error();
    if (!*row) return out;
    out.push_back({select.ColumnInt(0), select.Column(1)});
  }
}

Result<void> StateStore::SaveConfig(const Tree& tree) {
  return Atomically(*connection_, [&]() -> Result<void> {
    if (auto ok = WriteRootDoc(*connection_, tree); !ok) return ok;
    std::set<std::string> current;
    if (const Node* services = ServicesNode(tree)) {
      for (const auto& service : services->children()) {
        std::string doc = ServiceDocKey(service->name());
        if (auto ok = WriteDoc(*connection_, doc, service->name(), SnapshotOf(*service)); !ok) {
          return ok;
        }
        current.insert(std::move(doc));
      }
    }
    std::vector<std::string> gone;
    Statement select(*connection_, "SELECT doc FROM config_doc WHERE doc != ''");
    for (;;) {  // one iteration per row of a finite table
      auto row = select.Step("list configuration documents");
      if (!row) return row.error();
      if (!*row) break;
      std::string doc = select.Column(0);
      if (current.count(doc) == 0) gone.push_back(std::move(doc));
    }
    for (const auto& doc : gone) {
      if (auto ok = DeleteDoc(*connection_, doc); !ok) return ok;
    }
    return {};
  });
}

Result<void> StateStore::SaveConfigFor(const Tree& tree,
                                       const std::vector<KeyPath>& changed_paths) {
  bool root = false;
  std::set<std::string> services;  // folded name -> one write each
  std::vector<std::string> names;
  for (const auto& path : changed_paths) {
    if (path.empty() || (path.size() == 1 && KeyEquals(path[0], kServicesKey))) {
      return SaveConfig(tree);
    }
    if (path.size() >= 2 && KeyEquals(path[0], kServicesKey)) {
      if (services.insert(FoldKey(path[1])).second) names.push_back(path[1]);
    } else {
      root = true;
    }
  }
  return Atomically(*connection_, [&]() -> Result<void> {
    if (root) {
      if (auto ok = WriteRootDoc(*connection_, tree); !ok) return ok;
    }
    for (const auto& name : names) {
      if (auto ok = WriteServiceDoc(*connection_, tree, name); !ok) return ok;
    }
    return {};
  });
}

Result<Tree> StateStore::LoadConfig() {
  Tree tree;
  // "" (the root document) sorts first, so components restore under it.
  Statement select(*connection_, "SELECT doc, name, body FROM config_doc ORDER BY doc");
  for (;;) {  // one iteration per row of a finite table
    auto row = select.Step("load configuration");
    if (!row) return row.error();
    if (!*row) break;
    std::string doc = select.Column(0);
    Json body = Json::parse(select.Column(2), nullptr, false);
    if (body.is_discarded()) {
      return MakeError("state store " + connection_->path + ": configuration document \"" + doc +
                       "\" is not valid JSON");
    }
    KeyPath path;
    if (!doc.empty()) path = {kServicesKey, select.Column(1)};
    auto restored = tree.Restore(path, body);
    if (!restored) {
      return MakeError("state store " + connection_->path + ": configuration document \"" + doc +
                       "\": " + restored.error().message);
    }
  }
  return tree;
}

}  // namespace lichen::config
