// The runtime log (logs/greengrass.log) and one log per component (logs/<Component>.log),
// written line by line in the Greengrass Java nucleus's TEXT or JSON layout (see format.h),
// rotated by size with the nucleus's file naming (see sink.h), or sent to the console.
//
// Threading: a Logs object belongs to one thread, the runtime's event loop; nothing is
// locked. Writes are buffered per file and flushed when a file's buffer passes
// `flush_bytes` or `flush_interval` after its first unflushed line (a timer on the
// io_context), so a crash of the runtime loses at most that interval of lines; every
// flush is whole lines in one write(2). Without an io_context each line is written at
// once. There is never an fsync: the page cache survives a crash of the runtime, and
// surviving power loss is not worth a disk flush per line.
#pragma once

#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "logs/format.h"
#include "logs/sink.h"

namespace lichen::logs {

enum class OutputType { kFile, kConsole };
Result<OutputType> ParseOutputType(std::string_view text);  // "FILE" | "CONSOLE"

// The `logging` keys of the runtime configuration, with the nucleus's defaults.
struct LogConfig {
  Level level = Level::kInfo;
  Format format = Format::kText;
  OutputType output_type = OutputType::kFile;
  uint64_t file_size_kb = 1024;         // rotate a file before it would pass this
  uint64_t total_logs_size_kb = 10240;  // per log: current plus rotated files
};

// The nucleus names a lifecycle script by its configuration path:
// ScriptName("com.example.Hello", "Run") == "services.com.example.Hello.lifecycle.Run".
std::string ScriptName(std::string_view component, std::string_view step);

// Which script a line of component output came from.
struct ScriptContext {
  std::string_view component;    // the log file, loggerName and serviceName
  std::string_view script_name;  // see ScriptName()
  std::string_view state;        // currentState, e.g. "RUNNING"
};

enum class OutputStream { kStdout, kStderr };

using Clock = std::function<std::chrono::system_clock::time_point()>;

struct LogsOptions {
  std::string root;  // logs go to <root>/logs
  LogConfig config;
  std::chrono::milliseconds flush_interval{100};
  size_t flush_bytes = 64 * 1024;
  int console_fd = STDOUT_FILENO;  // where CONSOLE output goes
  Clock clock;                     // unset: the system clock
};

class Logs {
 public:
  // Creates <root>/logs when output goes to files and opens greengrass.log. `io` runs the
  // flush timer and must outlive the Logs; nullptr writes every line at once.
  static Result<std::unique_ptr<Logs>> Open(LogsOptions options, boost::asio::io_context* io);
  ~Logs();  // flushes
  Logs(const Logs&) = delete;
  Logs& operator=(const Logs&) = delete;

  bool Enabled(Level level) const { return level >= options_.config.level; }

  // To greengrass.log.
  void Log(const Event& event);
  void Log(Level level, std::string_view logger, std::string_view event_type,
           std::string_view message, std::initializer_list<KeyValue> contexts = {});
  // To <component>.log.
  void LogComponent(std::string_view component, const Event& event);

  // One line of a component script's output, as the nucleus logs it: stdout at INFO and
  // stderr at WARN, logger = the component, eventType "stdout"/"stderr", thread "Copier",
  // contexts {scriptName, serviceName, currentState}. Trailing whitespace (a CR of CRLF
  // output) is dropped; leading whitespace is kept (the nucleus trims it, which flattens
  // tracebacks). An empty line is still logged.
  void ComponentOutput(const ScriptContext& script, OutputStream stream, std::string_view line);

  // Writes every buffered line now.
  void Flush();

  // Flushes and closes <component>.log, for a component that was removed; a later line
  // opens it again. Files otherwise stay open for the life of the Logs.
  void CloseComponentLog(std::string_view component);

  // Applies a changed `logging` configuration: level and format at once; output type and
  // sizes after flushing and closing the files (they reopen on their next line).
  Result<void> Reconfigure(const LogConfig& config);
  const LogConfig& config() const { return options_.config; }
  const std::string& log_dir() const { return dir_; }

  // Logging never fails its caller. A failed write drops the lines it held and a failed
  // rotation keeps writing to the current file; both are counted and remembered here.
  uint64_t dropped_lines() const;
  const std::optional<Error>& last_error() const { return last_error_; }

 private:
  Logs(LogsOptions options, boost::asio::io_context* io);
  Result<void> OpenOutputs();
  FileSink* SinkFor(std::string_view log_name);
  void Write(std::string_view log_name, const Event& event);
  void ArmTimer();
  void Note(const Result<void>& result);

  LogsOptions options_;
  boost::asio::io_context* io_;
  std::string dir_;
  std::unique_ptr<boost::asio::steady_timer> timer_;
  bool timer_armed_ = false;
  std::unique_ptr<FileSink> console_;
  std::map<std::string, std::unique_ptr<FileSink>, std::less<>> files_;
  std::string line_;  // the line being formatted; reused so a line costs no allocation
  LineFormatter formatter_;
  uint64_t dropped_elsewhere_ = 0;  // by sinks since closed, or never opened
  std::optional<Error> last_error_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace lichen::logs
