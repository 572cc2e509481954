// What one log line looks like: the two layouts of the Greengrass Java nucleus
// (aws-greengrass-logging-java, GreengrassLogMessage).
//
// TEXT:  <instant> [LEVEL] (thread) loggerName: eventType. message. {k=v, k=v}
//   The parts after "loggerName: " are eventType, message and the contexts, each left out
//   when empty and joined with ". ". The contexts print as "{}" when there are none (the
//   nucleus prints its empty map too), so they are never left out. A cause follows the
//   contexts after a newline in the nucleus; here that newline is escaped like any other.
//   The instant is java.time's ISO_INSTANT of epoch milliseconds: 2020-12-31T23:59:59.120Z,
//   and 2020-12-31T23:59:59Z on a whole second (ISO_INSTANT drops a zero fraction).
// JSON:  {"thread":..,"level":..,"eventType":..,"message":..,"contexts":{..},
//         "loggerName":..,"timestamp":<epoch ms>,"cause":..}
//   Jackson's field order for GreengrassLogMessage. eventType and cause are null when
//   absent; a cause is {"message":..,"suppressed":[],"stackTrace":[],"cause":null}, the
//   shape of the nucleus's Throwable serializer.
//
// One event is always one line. Text is kept byte for byte except: invalid UTF-8 becomes
// U+FFFD (the nucleus decodes output as UTF-8 with replacement), and control characters
// other than tab are escaped: in TEXT as \n, \r or \xHH (C1 controls as \u0080..\u009f),
// in JSON as JSON escapes. TEXT escaping is for reading and is not reversible (a
// backslash is not doubled).
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "common/result.h"

namespace lichen::logs {

enum class Level { kTrace, kDebug, kInfo, kWarn, kError };
const char* ToString(Level level);                // "TRACE" ... "ERROR"
Result<Level> ParseLevel(std::string_view text);  // case-insensitive

enum class Format { kText, kJson };
Result<Format> ParseFormat(std::string_view text);  // "TEXT" | "JSON", case-insensitive

struct KeyValue {
  std::string_view key;
  std::string_view value;
};

// One log event; every view must stay valid for the duration of the call that takes it.
struct Event {
  Level level = Level::kInfo;
  std::string_view logger;      // loggerName, e.g. "lichen.deployment"
  std::string_view event_type;  // e.g. "service-set-state"; empty means none (JSON null)
  std::string_view message;
  std::span<const KeyValue> contexts;  // printed in this order
  std::string_view cause;              // an error's text; empty means none (JSON null)
  std::string_view thread = "main";
};

// Appends the instant as ISO_INSTANT prints it (see above).
void AppendInstant(std::string& out, int64_t epoch_ms);
// Appends `text` with the TEXT escaping (see above).
void AppendEscapedText(std::string& out, std::string_view text);
// Appends `text` as a quoted JSON string.
void AppendJsonString(std::string& out, std::string_view text);

// Formats events into lines ending in '\n'. Keeps the last second's formatted date so a
// line costs no date arithmetic; one formatter per thread.
class LineFormatter {
 public:
  void Append(std::string& out, Format format, const Event& event, int64_t epoch_ms);
  void AppendText(std::string& out, const Event& event, int64_t epoch_ms);
  void AppendJson(std::string& out, const Event& event, int64_t epoch_ms);

 private:
  void AppendCachedInstant(std::string& out, int64_t epoch_ms);
  int64_t cached_second_ = INT64_MIN;
  char cached_[32] = {};  // "YYYY-MM-DDTHH:MM:SS"
  size_t cached_len_ = 0;
};

// Civil UTC time of an epoch-milliseconds instant, and back.
struct CivilTime {
  int64_t year;
  int month, day, hour, minute, second, millisecond;
};
CivilTime ToCivil(int64_t epoch_ms);
int64_t FromCivil(const CivilTime& t);

int64_t ToEpochMs(std::chrono::system_clock::time_point t);

}  // namespace lichen::logs
