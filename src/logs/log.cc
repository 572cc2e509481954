#include "logs/log.h"

#include <filesystem>
#include <system_error>

#include "common/text.h"

namespace lichen::logs {
namespace {

constexpr std::string_view kRuntimeLog = "greengrass";

using text::EqualsIgnoreCase;

// A component name as a file name: never a path, never "." or "..".
std::string FileNameFor(std::string_view log_name) {
  std::string out(log_name);
  for (char& c : out) {
    if (c == '/' || c == '\0') c = '_';
  }
  if (out.empty() || out == "." || out == "..") out.insert(0, "_");
  return out;
}

}  // namespace

Result<OutputType> ParseOutputType(std::string_view text) {
  if (EqualsIgnoreCase(text, "FILE")) return OutputType::kFile;
  if (EqualsIgnoreCase(text, "CONSOLE")) return OutputType::kConsole;
  return MakeError("log outputType '" + std::string(text) + "' is not FILE or CONSOLE");
}

std::string ScriptName(std::string_view component, std::string_view step) {
  std::string out = "services.";
  out += component;
  out += ".lifecycle.";
  out += step;
  return out;
}

Logs::Logs(LogsOptions options, boost::asio::io_context* io)
    : options_(std::move(options)), io_(io) {
  dir_ = options_.root.empty() ? std::string("logs") : options_.root + "/logs";
  if (io_ != nullptr) timer_ = std::make_unique<boost::asio::steady_timer>(*io_);
}

Result<std::unique_ptr<Logs>> Logs::Open(LogsOptions options, boost::asio::io_context* io) {
  if (options.config.file_size_kb == 0 || options.config.total_logs_size_kb == 0) {
    return MakeError("logging fileSizeKB and totalLogsSizeKB must be positive");
  }
  if (!options.clock) options.clock = [] { return std::chrono::system_clock::now(); };
  std::unique_ptr<Logs> logs(new Logs(std::move(options), io));
  auto opened = logs->OpenOutputs();
  if (!opened) return opened.error();
  return logs;
}

Logs::~Logs() { Flush(); }

Result<void> Logs::OpenOutputs() {
  if (options_.config.output_type == OutputType::kConsole) {
    console_ = FileSink::ForDescriptor(options_.console_fd);
    return {};
  }
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) return MakeError("cannot create log directory " + dir_ + ": " + ec.message());
  auto sink = FileSink::OpenFile(dir_, std::string(kRuntimeLog),
                                 FileSink::Limits{options_.config.file_size_kb * 1024,
                                                  options_.config.total_logs_size_kb * 1024});
  if (!sink) return sink.error();
  files_.emplace(std::string(kRuntimeLog), std::move(*sink));
  return {};
}

FileSink* Logs::SinkFor(std::string_view log_name) {
  if (console_) return console_.get();
  auto it = files_.find(log_name);
  if (it != files_.end()) return it->second.get();
  auto sink = FileSink::OpenFile(dir_, FileNameFor(log_name),
                                 FileSink::Limits{options_.config.file_size_kb * 1024,
                                                  options_.config.total_logs_size_kb * 1024});
  if (!sink) {
    last_error_ = sink.error();
    return nullptr;
  }
  return files_.emplace(std::string(log_name), std::move(*sink)).first->second.get();
}

void Logs::Note(const Result<void>& result) {
  if (!result) last_error_ = result.error();
}

void Logs::Write(std::string_view log_name, const Event& event) {
  if (!Enabled(event.level)) return;
  FileSink* sink = SinkFor(log_name);
  if (sink == nullptr) {
    ++dropped_elsewhere_;
    return;
  }
  const auto now = options_.clock();
  line_.clear();
  formatter_.Append(line_, options_.config.format, event, ToEpochMs(now));
  Note(sink->Add(line_, now));
  if (io_ == nullptr || sink->pending_bytes() >= options_.flush_bytes) {
    Note(sink->Flush());
  } else {
    ArmTimer();
  }
}

void Logs::ArmTimer() {
  if (timer_armed_) return;
  timer_armed_ = true;
  timer_->expires_after(options_.flush_interval);
  // A wait that already completed is not cancelled by destroying the timer, so the
  // handler checks that this object still exists before touching it.
  timer_->async_wait(
      [this, alive = std::weak_ptr<bool>(alive_)](const boost::system::error_code& ec) {
        if (ec || alive.expired()) return;
        timer_armed_ = false;
        Flush();
      });
}

void Logs::Log(const Event& event) { Write(kRuntimeLog, event); }

void Logs::Log(Level level, std::string_view logger, std::string_view event_type,
               std::string_view message, std::initializer_list<KeyValue> contexts) {
  Event event;
  event.level = level;
  event.logger = logger;
  event.event_type = event_type;
  event.message = message;
  event.contexts = std::span<const KeyValue>(contexts.begin(), contexts.size());
  Write(kRuntimeLog, event);
}

void Logs::LogComponent(std::string_view component, const Event& event) { Write(component, event); }

void Logs::ComponentOutput(const ScriptContext& script, OutputStream stream,
                           std::string_view line) {
  // Like Java's trim() at the end only: spaces, a CR, any control character.
  while (!line.empty() && static_cast<unsigned char>(line.back()) <= ' ') line.remove_suffix(1);
  const KeyValue contexts[] = {{"scriptName", script.script_name},
                               {"serviceName", script.component},
                               {"currentState", script.state}};
  Event event;
  event.level = stream == OutputStream::kStdout ? Level::kInfo : Level::kWarn;
  event.logger = script.component;
  event.event_type = stream == OutputStream::kStdout ? "stdout" : "stderr";
  event.message = line;
  event.contexts = contexts;
  event.thread = "Copier";
  Write(script.component, event);
}

void Logs::Flush() {
  if (console_) Note(console_->Flush());
  for (auto& [name, sink] : files_) Note(sink->Flush());
}

void Logs::CloseComponentLog(std::string_view component) {
  auto it = files_.find(component);
  if (it == files_.end() || it->first == kRuntimeLog) return;
  Note(it->second->Flush());
  dropped_elsewhere_ += it->second->dropped_lines();
  files_.erase(it);
}

Result<void> Logs::Reconfigure(const LogConfig& config) {
  if (config.file_size_kb == 0 || config.total_logs_size_kb == 0) {
    return MakeError("logging fileSizeKB and totalLogsSizeKB must be positive");
  }
  const LogConfig old = options_.config;
  options_.config = config;
  if (old.output_type == config.output_type && old.file_size_kb == config.file_size_kb &&
      old.total_logs_size_kb == config.total_logs_size_kb) {
    return {};
  }
  Flush();
  if (console_) dropped_elsewhere_ += console_->dropped_lines();
  for (auto& [name, sink] : files_) dropped_elsewhere_ += sink->dropped_lines();
  console_.reset();
  files_.clear();
  return OpenOutputs();
}

uint64_t Logs::dropped_lines() const {
  uint64_t total = dropped_elsewhere_;
  if (console_) total += console_->dropped_lines();
  for (const auto& [name, sink] : files_) total += sink->dropped_lines();
  return total;
}

}  // namespace lichen::logs
