#include "logs/reader.h"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>

#include "logs/sink.h"

namespace lichen::logs {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;  // contexts keep their order

constexpr std::string_view kExtension = ".log";

bool ReadNumber(std::string_view s, size_t pos, size_t n, int* out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = 0; i < n; ++i) {
    const char c = s[pos + i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *out = v;
  return true;
}

// "YYYY-MM-DDTHH:MM:SS[.fraction]Z", as ISO_INSTANT writes it.
std::optional<int64_t> ParseInstant(std::string_view s) {
  int y, mo, d, h, mi, sec;
  if (!ReadNumber(s, 0, 4, &y) || s.size() < 20 || s[4] != '-' || !ReadNumber(s, 5, 2, &mo) ||
      s[7] != '-' || !ReadNumber(s, 8, 2, &d) || s[10] != 'T' || !ReadNumber(s, 11, 2, &h) ||
      s[13] != ':' || !ReadNumber(s, 14, 2, &mi) || s[16] != ':' || !ReadNumber(s, 17, 2, &sec)) {
    return std::nullopt;
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return std::nullopt;
  size_t pos = 19;
  int ms = 0;
  if (s[pos] == '.') {
    ++pos;
    int digits = 0;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      if (digits < 3) ms = ms * 10 + (s[pos] - '0');
      ++digits;
      ++pos;
    }
    if (digits == 0) return std::nullopt;
    for (; digits < 3; ++digits) ms *= 10;
  }
  if (pos + 1 != s.size() || s[pos] != 'Z') return std::nullopt;
  return FromCivil(CivilTime{y, mo, d, h, mi, sec, ms});
}

std::optional<Level> ExactLevel(std::string_view s) {
  for (Level l : {Level::kTrace, Level::kDebug, Level::kInfo, Level::kWarn, Level::kError}) {
    if (s == ToString(l)) return l;
  }
  return std::nullopt;
}

std::string JsonText(const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

std::optional<LogLine> ParseJsonLine(std::string_view line) {
  json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return std::nullopt;
  auto level_it = j.find("level");
  auto ts_it = j.find("timestamp");
  if (level_it == j.end() || !level_it->is_string() || ts_it == j.end()) return std::nullopt;
  auto level = ExactLevel(level_it->get<std::string>());
  if (!level) return std::nullopt;
  LogLine out;
  out.level = *level;
  if (ts_it->is_number_integer()) {
    out.timestamp_ms = ts_it->get<int64_t>();
  } else if (ts_it->is_string()) {  // the CLI accepts a quoted number too
    const std::string& s = ts_it->get_ref<const std::string&>();
    auto [end, err] = std::from_chars(s.data(), s.data() + s.size(), out.timestamp_ms);
    if (err != std::errc() || end != s.data() + s.size()) return std::nullopt;
  } else {
    return std::nullopt;
  }
  auto text = [&](const char* key) {
    auto it = j.find(key);
    return it == j.end() || it->is_null() ? std::string() : JsonText(*it);
  };
  out.thread = text("thread");
  out.logger = text("loggerName");
  out.event_type = text("eventType");
  out.message = text("message");
  if (auto it = j.find("contexts"); it != j.end() && it->is_object()) {
    for (auto& [k, v] : it->items()) out.contexts.emplace_back(k, JsonText(v));
  }
  if (auto it = j.find("cause"); it != j.end() && !it->is_null()) {
    auto m = it->is_object() ? it->find("message") : it->end();
    out.cause =
        it->is_object() && m != it->end() && m->is_string() ? m->get<std::string>() : JsonText(*it);
  }
  return out;
}

void ParseContexts(std::string_view inner, LogLine& out) {
  while (!inner.empty()) {
    const size_t comma = inner.find(", ");
    std::string_view item = inner.substr(0, comma);
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos) {
      out.contexts.emplace_back(std::string(item), std::string());
    } else {
      out.contexts.emplace_back(std::string(item.substr(0, eq)), std::string(item.substr(eq + 1)));
    }
    if (comma == std::string_view::npos) break;
    inner.remove_prefix(comma + 2);
  }
}

std::optional<LogLine> ParseTextLine(std::string_view line) {
  const size_t lb = line.find(" [");
  if (lb == std::string_view::npos) return std::nullopt;
  auto ts = ParseInstant(line.substr(0, lb));
  if (!ts) return std::nullopt;
  const size_t rb = line.find("] (", lb + 2);
  if (rb == std::string_view::npos) return std::nullopt;
  auto level = ExactLevel(line.substr(lb + 2, rb - lb - 2));
  if (!level) return std::nullopt;
  const size_t thread_end = line.find(") ", rb + 3);
  if (thread_end == std::string_view::npos) return std::nullopt;
  const size_t logger_end = line.find(": ", thread_end + 2);
  if (logger_end == std::string_view::npos) return std::nullopt;

  LogLine out;
  out.timestamp_ms = *ts;
  out.level = *level;
  out.thread = std::string(line.substr(rb + 3, thread_end - rb - 3));
  out.logger = std::string(line.substr(thread_end + 2, logger_end - thread_end - 2));
  std::string_view rest = line.substr(logger_end + 2);

  // The contexts: after the last ". {", or at the start; they end at the end of the line or
  // where an escaped newline starts the cause.
  size_t cs = std::string_view::npos;
  if (size_t dot = rest.rfind(". {"); dot != std::string_view::npos) {
    cs = dot + 2;
  } else if (rest.starts_with('{')) {
    cs = 0;
  }
  std::string_view head = rest;
  if (cs != std::string_view::npos) {
    size_t ce = rest.find("}\\n", cs);
    if (ce != std::string_view::npos) {
      out.cause = std::string(rest.substr(ce + 3));
    } else if (rest.ends_with('}')) {
      ce = rest.size() - 1;
    }
    if (ce != std::string_view::npos) {
      ParseContexts(rest.substr(cs + 1, ce - cs - 1), out);
      head = rest.substr(0, cs == 0 ? 0 : cs - 2);
    }
  }
  const size_t sep = head.find(". ");
  const std::string_view first = head.substr(0, sep);
  if (!first.empty() && first.find(' ') == std::string_view::npos) {
    out.event_type = std::string(first);
    if (sep != std::string_view::npos) out.message = std::string(head.substr(sep + 2));
  } else {
    out.message = std::string(head);
  }
  return out;
}

struct ListedFile {
  LogFileInfo info;
  int64_t hour_ms;
  int index;
};

}  // namespace

std::optional<LogLine> ParseLine(std::string_view line) {
  if (line.ends_with('\r')) line.remove_suffix(1);
  std::optional<LogLine> out = line.starts_with('{') ? ParseJsonLine(line) : ParseTextLine(line);
  if (out) out->raw = std::string(line);
  return out;
}

Result<std::vector<LogFileInfo>> ListLogFiles(const std::string& log_dir) {
  std::error_code ec;
  fs::directory_iterator it(log_dir, ec);
  if (ec) return MakeError("cannot list log directory " + log_dir + ": " + ec.message());
  std::vector<ListedFile> found;
  for (fs::directory_iterator end; !ec && it != end; it.increment(ec)) {
    std::error_code type_ec;
    if (!it->is_regular_file(type_ec)) continue;
    const std::string name = it->path().filename().string();
    if (name.size() <= kExtension.size() || !name.ends_with(kExtension)) continue;
    ListedFile f;
    f.info.path = it->path().string();
    std::error_code size_ec;
    f.info.size = it->file_size(size_ec);
    if (size_ec) f.info.size = 0;  // removed while listing
    if (auto rotated = ParseRotatedFileName(name)) {
      f.info.log_name = rotated->log_name;
      f.info.rotated = true;
      f.hour_ms = rotated->hour_ms;
      f.index = rotated->index;
    } else {
      f.info.log_name = name.substr(0, name.size() - kExtension.size());
      f.hour_ms = INT64_MAX;  // the current file comes after its rotated ones
      f.index = 0;
    }
    found.push_back(std::move(f));
  }
  if (ec) return MakeError("cannot list log directory " + log_dir + ": " + ec.message());
  std::sort(found.begin(), found.end(), [](const ListedFile& a, const ListedFile& b) {
    return std::tie(a.info.log_name, a.hour_ms, a.index) <
           std::tie(b.info.log_name, b.hour_ms, b.index);
  });
  std::vector<LogFileInfo> out;
  out.reserve(found.size());
  for (auto& f : found) out.push_back(std::move(f.info));
  return out;
}

Result<std::vector<LogLine>> ReadLogs(const std::string& log_dir, const LogQuery& query) {
  std::vector<std::string> paths = query.files;
  if (!query.logs.empty() || query.files.empty()) {
    auto listed = ListLogFiles(log_dir);
    if (!listed) return listed.error();
    for (const LogFileInfo& f : *listed) {
      if (query.logs.empty() ||
          std::find(query.logs.begin(), query.logs.end(), f.log_name) != query.logs.end()) {
        paths.push_back(f.path);
      }
    }
  }
  std::vector<LogLine> out;
  std::set<std::string> seen;
  std::string line;
  for (const std::string& path : paths) {
    if (!seen.insert(path).second) continue;
    std::ifstream in(path, std::ios::binary);
    if (!in) return MakeError("cannot read log file " + path);
    while (std::getline(in, line)) {
      if (!query.contains.empty() && line.find(query.contains) == std::string::npos) continue;
      auto parsed = ParseLine(line);
      if (!parsed || parsed->level < query.min_level) continue;
      if (query.since_ms && parsed->timestamp_ms < *query.since_ms) continue;
      if (query.until_ms && parsed->timestamp_ms > *query.until_ms) continue;
      parsed->file = path;
      out.push_back(std::move(*parsed));
    }
  }
  std::stable_sort(out.begin(), out.end(), [](const LogLine& a, const LogLine& b) {
    return a.timestamp_ms < b.timestamp_ms;
  });
  return out;
}

}  // namespace lichen::logs
