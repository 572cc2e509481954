// `logs list-log-files|get`: read the runtime's log files directly (no nucleus needed),
// with the Greengrass CLI's filters, time windows and --follow.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <set>
#include <sstream>
#include <thread>

#include "cli/daemon.h"
#include "logs/format.h"
#include "logs/reader.h"

namespace lichen::cli {
namespace {

namespace fs = std::filesystem;

// How often --follow looks for new lines, and how quickly it notices a stop request.
constexpr std::chrono::milliseconds kFollowPollInterval{200};
constexpr std::chrono::milliseconds kStopCheckInterval{20};

std::atomic<bool> g_stop_follow{false};
static_assert(std::atomic<bool>::is_always_lock_free, "set from a signal handler");

extern "C" void OnStopSignal(int) { g_stop_follow.store(true); }

// ---- filters ------------------------------------------------------------------------

// One alternative of a --filter: key=value on a field or context, or text in the line.
struct Match {
  bool keyed = false;
  std::string key;
  std::string value;  // the text when not keyed
};
// Alternatives of one --filter (OR); all --filter flags must match (AND).
using Filter = std::vector<Match>;

Filter ParseFilter(const std::string& flag) {
  Filter out;
  std::stringstream in(flag);
  for (std::string item; std::getline(in, item, ',');) {
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    if (eq != std::string::npos && eq > 0) {
      out.push_back({true, item.substr(0, eq), item.substr(eq + 1)});
    } else {
      out.push_back({false, "", item});
    }
  }
  return out;
}

bool Matches(const Match& m, const logs::LogLine& line) {
  if (!m.keyed) return line.raw.find(m.value) != std::string::npos;
  const std::string& k = m.key;
  if (k == "level") return m.value == logs::ToString(line.level);
  if (k == "thread") return m.value == line.thread;
  if (k == "loggerName" || k == "logger") return m.value == line.logger;
  if (k == "eventType") return m.value == line.event_type;
  if (k == "message") return m.value == line.message;
  if (k == "cause" || k == "error") return line.cause.find(m.value) != std::string::npos;
  return std::any_of(line.contexts.begin(), line.contexts.end(),
                     [&](const auto& kv) { return kv.first == k && kv.second == m.value; });
}

// ---- time windows -------------------------------------------------------------------

struct Window {
  int64_t begin_ms;
  int64_t end_ms;
};

bool ReadDigits(std::string_view s, size_t pos, size_t n, int* out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}

// "+|-" then runs of <n>h|hr|hours, <n>m|min|minutes, <n>s|sec|seconds.
std::optional<int64_t> ParseOffset(std::string_view s) {
  if (s.size() < 3 || (s[0] != '+' && s[0] != '-')) return std::nullopt;
  const int64_t sign = s[0] == '-' ? -1 : 1;
  int64_t total_ms = 0;
  size_t i = 1;
  while (i < s.size()) {
    int64_t n = 0;
    const size_t digits_start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9' && i - digits_start < 9) {
      n = n * 10 + (s[i++] - '0');
    }
    if (i == digits_start) return std::nullopt;
    const size_t unit_start = i;
    while (i < s.size() && s[i] >= 'a' && s[i] <= 'z') ++i;
    const std::string_view unit = s.substr(unit_start, i - unit_start);
    int64_t unit_ms;
    if (unit == "h" || unit == "hr" || unit == "hour" || unit == "hours") {
      unit_ms = 3600 * 1000;
    } else if (unit == "m" || unit == "min" || unit == "minute" || unit == "minutes") {
      unit_ms = 60 * 1000;
    } else if (unit == "s" || unit == "sec" || unit == "second" || unit == "seconds") {
      unit_ms = 1000;
    } else {
      return std::nullopt;
    }
    total_ms += n * unit_ms;
  }
  return sign * total_ms;
}

// The Greengrass CLI's timestamp forms, read as UTC (the time zone the logs are written
// in): yyyy-MM-dd, yyyyMMdd, HH:mm:ss[.SSS] (today), yyyy-MM-ddTHH:mm:ss[.SSS][Z]; a
// relative offset from now; empty for now.
std::optional<int64_t> ParseTimePoint(std::string_view s, int64_t now_ms) {
  if (s.empty()) return now_ms;
  if (s[0] == '+' || s[0] == '-') {
    auto offset = ParseOffset(s);
    if (!offset) return std::nullopt;
    return now_ms + *offset;
  }
  logs::CivilTime t = logs::ToCivil(now_ms);
  t.hour = t.minute = t.second = t.millisecond = 0;
  int y = 0, mo = 0, d = 0;
  size_t pos = 0;
  bool has_date = false;
  if (ReadDigits(s, 0, 4, &y) && s.size() >= 10 && s[4] == '-' && ReadDigits(s, 5, 2, &mo) &&
      s[7] == '-' && ReadDigits(s, 8, 2, &d)) {
    pos = 10;
    has_date = true;
  } else if (s.size() == 8 && ReadDigits(s, 0, 4, &y) && ReadDigits(s, 4, 2, &mo) &&
             ReadDigits(s, 6, 2, &d)) {
    pos = 8;
    has_date = true;
  }
  if (has_date) {
    if (mo < 1 || mo > 12 || d < 1 || d > 31) return std::nullopt;
    t.year = y;
    t.month = mo;
    t.day = d;
    if (pos == s.size()) return logs::FromCivil(t);
    if (s[pos] != 'T') return std::nullopt;
    ++pos;
  }
  int h = 0, mi = 0, sec = 0;
  if (!ReadDigits(s, pos, 2, &h) || pos + 2 >= s.size() || s[pos + 2] != ':' ||
      !ReadDigits(s, pos + 3, 2, &mi) || pos + 5 >= s.size() || s[pos + 5] != ':' ||
      !ReadDigits(s, pos + 6, 2, &sec)) {
    return std::nullopt;
  }
  if (h > 23 || mi > 59 || sec > 60) return std::nullopt;
  pos += 8;
  int ms = 0;
  if (pos < s.size() && s[pos] == '.') ++pos;  // HH:mm:ssSSS is accepted too
  if (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
    if (!ReadDigits(s, pos, 3, &ms)) return std::nullopt;
    pos += 3;
  }
  if (has_date && pos < s.size() && s[pos] == 'Z') ++pos;
  if (pos != s.size()) return std::nullopt;
  t.hour = h;
  t.minute = mi;
  t.second = sec;
  t.millisecond = ms;
  return logs::FromCivil(t);
}

Result<Window> ParseWindow(const std::string& flag, int64_t now_ms) {
  const size_t comma = flag.find(',');
  const std::string begin = flag.substr(0, comma);
  const std::string end = comma == std::string::npos ? "" : flag.substr(comma + 1);
  auto b = ParseTimePoint(begin, now_ms);
  auto e = ParseTimePoint(end, now_ms);
  if (!b || !e) {
    return MakeError("--time-window " + flag +
                     ": give BEGIN,END as yyyy-MM-dd, yyyyMMdd, HH:mm:ss[.SSS], "
                     "yyyy-MM-ddTHH:mm:ss[.SSS][Z] (UTC) or an offset like -2h15min; an "
                     "empty side is now");
  }
  if (*b > *e) return MakeError("--time-window " + flag + ": the beginning is after the end");
  return Window{*b, *e};
}

// ---- reading ------------------------------------------------------------------------

struct GetOptions {
  std::vector<std::string> log_dirs;  // none given: <root>/logs when a folder is needed
  std::vector<std::string> files;
  std::vector<std::string> components;
  std::vector<std::string> filters;
  std::vector<std::string> windows;
  std::string level;
  bool follow = false;
  bool verbose = false;
};

struct Query {
  std::vector<std::string> dirs;
  std::vector<std::string> files;
  std::set<std::string> components;  // empty: every log in the folders
  logs::Level min_level = logs::Level::kTrace;
  std::vector<Filter> filters;
  std::vector<Window> windows;

  bool Accepts(const logs::LogLine& line) const {
    if (line.level < min_level) return false;
    if (!windows.empty() && std::none_of(windows.begin(), windows.end(), [&](const Window& w) {
          return line.timestamp_ms >= w.begin_ms && line.timestamp_ms <= w.end_ms;
        })) {
      return false;
    }
    return std::all_of(filters.begin(), filters.end(), [&](const Filter& f) {
      return std::any_of(f.begin(), f.end(), [&](const Match& m) { return Matches(m, line); });
    });
  }
};

// One file read from where the last read stopped, as `tail -F` does: the descriptor stays
// open, so when the log rotates (the file is renamed and a new one begun) the rest of the
// old file is still read before the new one.
class TailedFile {
 public:
  explicit TailedFile(std::string path) : path_(std::move(path)) {}
  TailedFile(const TailedFile&) = delete;
  TailedFile& operator=(const TailedFile&) = delete;
  ~TailedFile() {
    if (fd_ >= 0) ::close(fd_);
  }

  // Appends the complete lines written since the last call. follow_renames: switch to a
  // new file at the path once the old one is read to its end (for current log files).
  // missing_ok: a file not there (yet, or between a rename and its re-creation) has
  // nothing to read.
  Result<void> ReadNew(std::vector<std::string>& lines, bool follow_renames, bool missing_ok) {
    if (fd_ < 0) {
      fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd_ < 0) {
        if (errno == ENOENT && missing_ok) return {};
        return MakeError("cannot read log file " + path_ + ": " + std::strerror(errno));
      }
      struct stat st {};
      ::fstat(fd_, &st);
      inode_ = st.st_ino;
      device_ = st.st_dev;
    }
    Drain(lines);
    if (!follow_renames) return {};
    struct stat st {};
    const bool exists = ::stat(path_.c_str(), &st) == 0;
    struct stat mine {};
    ::fstat(fd_, &mine);
    if (exists && (st.st_ino != inode_ || st.st_dev != device_)) {
      Drain(lines);  // anything written to the old file just before the rename
      if (!pending_.empty()) lines.push_back(std::exchange(pending_, {}));
      ::close(fd_);
      fd_ = -1;
      offset_ = 0;
      return ReadNew(lines, follow_renames, missing_ok);
    }
    if (exists && mine.st_size < offset_) {  // truncated in place: start over
      ::lseek(fd_, 0, SEEK_SET);
      offset_ = 0;
      pending_.clear();
      Drain(lines);
    }
    return {};
  }

 private:
  void Drain(std::vector<std::string>& lines) {
    char buf[64 * 1024];
    while (true) {
      const ssize_t n = ::read(fd_, buf, sizeof(buf));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      offset_ += n;
      pending_.append(buf, static_cast<size_t>(n));
      size_t start = 0;
      for (size_t nl; (nl = pending_.find('\n', start)) != std::string::npos; start = nl + 1) {
        lines.push_back(pending_.substr(start, nl - start));
      }
      pending_.erase(0, start);
    }
  }

  std::string path_;
  int fd_ = -1;
  ino_t inode_ = 0;
  dev_t device_ = 0;
  off_t offset_ = 0;
  std::string pending_;  // a line whose newline is not written yet
};

std::string VerboseLine(const logs::LogLine& line) {
  std::string out;
  logs::AppendInstant(out, line.timestamp_ms);
  out += " [";
  out += logs::ToString(line.level);
  out += "] (" + line.thread + ") " + line.logger + ": ";
  if (!line.event_type.empty()) out += line.event_type + ". ";
  out += line.message;
  out += ". {";
  for (size_t i = 0; i < line.contexts.size(); ++i) {
    if (i > 0) out += ", ";
    out += line.contexts[i].first + "=" + line.contexts[i].second;
  }
  out += "}";
  if (!line.cause.empty()) out += " cause: " + line.cause;
  out += " [" + fs::path(line.file).filename().string() + "]";
  return out;
}

class LogPrinter {
 public:
  LogPrinter(Context& ctx, const Query& query, bool verbose)
      : ctx_(ctx), query_(query), verbose_(verbose) {}

  // Reads what is new in every source, printing matching lines oldest first. The first
  // call reads whole files, rotated ones included; later ones only what was appended.
  Result<void> Pass() {
    // live: files that may still grow (explicit files and current log files); rotated
    // files are whole once written, so they are read on the first pass only (later ones
    // are a current file renamed, which its TailedFile finishes reading).
    std::set<std::string> live(query_.files.begin(), query_.files.end());
    for (const auto& path : query_.files) Track(path);
    for (const auto& dir : query_.dirs) {
      auto listed = logs::ListLogFiles(dir);
      if (!listed) {
        if (first_pass_) return listed.error();
        continue;  // the folder may come back
      }
      for (const auto& f : *listed) {
        if (!query_.components.empty() && query_.components.count(f.log_name) == 0) continue;
        if (f.rotated && !first_pass_) continue;
        if (!f.rotated) {
          live.insert(f.path);
          found_logs_.insert(f.log_name);
        }
        Track(f.path);
      }
    }
    std::vector<logs::LogLine> matched;
    std::vector<std::string> lines;
    for (auto& [path, file] : tailed_) {
      lines.clear();
      auto read = file->ReadNew(lines, /*follow_renames=*/live.count(path) != 0,
                                /*missing_ok=*/!first_pass_);
      if (!read) {
        if (first_pass_) return read.error();
        continue;
      }
      for (const auto& text : lines) {
        auto parsed = logs::ParseLine(text);
        if (!parsed || !query_.Accepts(*parsed)) continue;
        parsed->file = path;
        matched.push_back(std::move(*parsed));
      }
    }
    std::erase_if(tailed_, [&](const auto& entry) { return live.count(entry.first) == 0; });
    std::stable_sort(matched.begin(), matched.end(),
                     [](const auto& a, const auto& b) { return a.timestamp_ms < b.timestamp_ms; });
    for (const auto& line : matched) ctx_.out << (verbose_ ? VerboseLine(line) : line.raw) << "\n";
    ctx_.out.flush();
    if (first_pass_) {
      for (const auto& c : query_.components) {
        if (found_logs_.count(c) == 0) {
          ctx_.err << ctx_.program << ": warning: no log for component " << c << " in "
                   << Join(query_.dirs) << "\n";
        }
      }
    }
    first_pass_ = false;
    return {};
  }

 private:
  // Starts reading a file, after those already read (the listing's order: a log's
  // rotated files oldest first, then its current one).
  void Track(const std::string& path) {
    for (const auto& [p, file] : tailed_) {
      if (p == path) return;
    }
    tailed_.emplace_back(path, std::make_unique<TailedFile>(path));
  }
  static std::string Join(const std::vector<std::string>& v) {
    std::string out;
    for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
    return out;
  }

  Context& ctx_;
  const Query& query_;
  bool verbose_;
  bool first_pass_ = true;
  std::set<std::string> found_logs_;
  std::vector<std::pair<std::string, std::unique_ptr<TailedFile>>> tailed_;
};

int64_t NowMs() { return logs::ToEpochMs(std::chrono::system_clock::now()); }

// SIGINT and SIGTERM end --follow (after one last read) instead of the process.
class StopSignals {
 public:
  StopSignals() {
    struct sigaction sa {};
    sa.sa_handler = OnStopSignal;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGINT, &sa, &old_int_);
    ::sigaction(SIGTERM, &sa, &old_term_);
  }
  ~StopSignals() {
    ::sigaction(SIGINT, &old_int_, nullptr);
    ::sigaction(SIGTERM, &old_term_, nullptr);
    g_stop_follow.store(false);  // consumed: the next --follow starts fresh
  }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

 private:
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
};

void RunGet(Context& ctx, const GetOptions& o) {
  Query q;
  if (!o.level.empty()) {
    auto level = logs::ParseLevel(o.level);
    if (!level) {
      Report(ctx, "--level " + o.level + ": not one of TRACE, DEBUG, INFO, WARN, ERROR",
             kExitUsage);
      return;
    }
    q.min_level = *level;
  }
  for (const auto& f : o.filters) {
    Filter filter = ParseFilter(f);
    if (!filter.empty()) q.filters.push_back(std::move(filter));
  }
  const int64_t now = NowMs();
  for (const auto& w : o.windows) {
    auto window = ParseWindow(w, now);
    if (!window) {
      Report(ctx, window.error().message, kExitUsage);
      return;
    }
    q.windows.push_back(*window);
  }
  q.files = o.files;
  q.components.insert(o.components.begin(), o.components.end());
  q.dirs = o.log_dirs;
  // A folder is read when one is named, when components are asked for, or when no file is.
  if (q.dirs.empty() && (o.files.empty() || !o.components.empty())) {
    q.dirs.push_back((fs::path(ResolveRoot(ctx)) / "logs").string());
  }

  LogPrinter printer(ctx, q, o.verbose);
  if (!o.follow) {
    if (auto ok = printer.Pass(); !ok) Report(ctx, ok.error().message);
    return;
  }
  StopSignals signals;
  if (auto ok = printer.Pass(); !ok) {
    Report(ctx, ok.error().message);
    return;
  }
  // With time windows, following ends once the last window has ended.
  std::optional<int64_t> last_end;
  for (const auto& w : q.windows) last_end = std::max(last_end.value_or(w.end_ms), w.end_ms);
  while (true) {
    bool stopping = false;
    for (auto waited = std::chrono::milliseconds(0); waited < kFollowPollInterval;
         waited += kStopCheckInterval) {
      if ((stopping = g_stop_follow.load())) break;
      std::this_thread::sleep_for(kStopCheckInterval);
    }
    if (last_end && NowMs() > *last_end) stopping = true;
    // One more read after a stop request, so lines written before it are all shown.
    (void)printer.Pass();
    if (stopping) return;
  }
}

void RunListFiles(Context& ctx, const std::vector<std::string>& dirs_given) {
  std::vector<std::string> dirs = dirs_given;
  if (dirs.empty()) dirs.push_back((fs::path(ResolveRoot(ctx)) / "logs").string());
  size_t total = 0;
  for (const auto& dir : dirs) {
    auto files = logs::ListLogFiles(dir);
    if (!files) {
      Report(ctx, files.error().message);
      return;
    }
    for (const auto& f : *files) ctx.out << f.path << "\n";
    total += files->size();
  }
  ctx.out << "Total " << total << " files found.\n";
}

}  // namespace

void RequestFollowStop() { g_stop_follow.store(true); }

void AddLogsCommands(CLI::App& app, Context& ctx) {
  CLI::App* group = app.add_subcommand("logs", "Read the runtime's and components' log files");
  group->require_subcommand(1);
  {
    auto o = std::make_shared<GetOptions>();
    CLI::App* cmd = group->add_subcommand(
        "get", "Print log lines, filtered; with --follow, keep printing new ones");
    // One value per flag, as the Greengrass CLI takes them (repeat the flag for more).
    cmd->add_option("--log-dir", o->log_dirs,
                    "log folder, repeatable (default: <root>/logs); also -ld")
        ->allow_extra_args(false);
    cmd->add_option("--log-file", o->files, "a log file to read, repeatable; also -lf")
        ->allow_extra_args(false);
    cmd->add_option("-n,--component", o->components,
                    "the log of this component, repeatable (Lichen)")
        ->allow_extra_args(false);
    cmd->add_option("-f,--filter", o->filters,
                    "text or key=value that lines must have; repeated filters must all match, "
                    "comma-separated alternatives in one filter need one to")
        ->allow_extra_args(false);
    cmd->add_option("-t,--time-window", o->windows,
                    "BEGIN,END in UTC (yyyy-MM-dd, HH:mm:ss, yyyy-MM-ddTHH:mm:ss, or offsets "
                    "like -2h15min), repeatable")
        ->allow_extra_args(false);
    cmd->add_option("--level", o->level, "lowest level shown: TRACE, DEBUG, INFO, WARN, ERROR");
    cmd->add_flag("--follow", o->follow,
                  "keep reading new lines until interrupted (or the time windows end); also "
                  "-fol");
    cmd->add_flag("--verbose", o->verbose, "print every field of each line");
    AddRootOption(*cmd, ctx);
    cmd->callback([&ctx, o] { RunGet(ctx, *o); });
  }
  {
    auto dirs = std::make_shared<std::vector<std::string>>();
    CLI::App* cmd = group->add_subcommand("list-log-files", "List the log files of a folder");
    cmd->add_option("--log-dir", *dirs, "log folder, repeatable (default: <root>/logs); also -ld")
        ->allow_extra_args(false);
    AddRootOption(*cmd, ctx);
    cmd->callback([&ctx, dirs] { RunListFiles(ctx, *dirs); });
  }
}

}  // namespace lichen::cli
