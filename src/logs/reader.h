// Reading logs back for the CLI's `logs list-log-files` and `logs get`: which files a log
// directory holds, and their lines parsed into fields and filtered.
//
// JSON lines parse exactly. TEXT lines parse by their layout (format.h) with two guesses
// the layout leaves open: the contexts are the last "{...}" that follows ". " (or starts
// the text), and the part before them is "eventType. message" when its first ". "-separated
// word has no space (event types are words like "service-set-state"), else a message.
// Escapes written in TEXT stay escaped. Lines that parse in neither layout are skipped.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"
#include "logs/format.h"

namespace lichen::logs {

struct LogFileInfo {
  std::string path;
  std::string log_name;  // "greengrass" or a component's name
  bool rotated = false;
  uint64_t size = 0;
};

// The .log files of `log_dir`, grouped by log (sorted by name); within a log the rotated
// files oldest first, then the current one.
Result<std::vector<LogFileInfo>> ListLogFiles(const std::string& log_dir);

struct LogLine {
  int64_t timestamp_ms = 0;
  Level level = Level::kInfo;
  std::string thread;
  std::string logger;
  std::string event_type;  // empty when none
  std::string message;
  std::vector<std::pair<std::string, std::string>> contexts;
  std::string cause;  // empty when none
  std::string file;   // the file it was read from (set by ReadLogs)
  std::string raw;    // the line as written, without its newline
};

// A line in either layout; nullopt when it is in neither.
std::optional<LogLine> ParseLine(std::string_view line);

struct LogQuery {
  // Sources: these files, plus every file (current and rotated) of these logs ("greengrass"
  // is the runtime's). Both empty: every log in the directory.
  std::vector<std::string> files = {};
  std::vector<std::string> logs = {};
  Level min_level = Level::kTrace;
  std::optional<int64_t> since_ms = {};  // inclusive bounds on the timestamp
  std::optional<int64_t> until_ms = {};
  std::string contains = {};  // a substring of the raw line; empty matches all
};

// The matching lines, oldest first (stable: lines with equal timestamps keep file order).
Result<std::vector<LogLine>> ReadLogs(const std::string& log_dir, const LogQuery& query);

}  // namespace lichen::logs
