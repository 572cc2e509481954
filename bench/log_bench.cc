// Component output throughput: lines per second through Logs::ComponentOutput into
// <root>/logs/<Component>.log with the default logging configuration (1024 KB files,
// 10240 KB total, so rotation and deletion are part of the cost), TEXT and JSON.
//   build/bench/log_bench [--benchmark_repetitions=3]
// "Buffered" is the runtime's mode (an io_context: writes of 64 KiB); "Unbuffered" writes
// each line with its own write(2); "FormatOnly" is the formatting alone, no I/O.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <string>

#include "logs/log.h"

namespace {

namespace fs = std::filesystem;
using lichen::logs::Format;

// A typical line of component output (about 80 bytes).
constexpr std::string_view kLine =
    "2024-05-01 12:00:00,123 INFO sensor reading temperature=21.5C humidity=40% ok";

class TempRoot {
 public:
  TempRoot() {
    std::string pattern = (fs::temp_directory_path() / "lichen-log-bench-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~TempRoot() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

void ComponentOutput(benchmark::State& state, Format format, bool buffered) {
  TempRoot root;
  boost::asio::io_context io;  // never run: flushes are the 64 KiB ones
  lichen::logs::LogsOptions options;
  options.root = root.path();
  options.config.format = format;
  auto logs = lichen::logs::Logs::Open(options, buffered ? &io : nullptr);
  if (!logs) {
    state.SkipWithError(logs.error().message.c_str());
    return;
  }
  const std::string script = lichen::logs::ScriptName("com.example.Sensor", "Run");
  const lichen::logs::ScriptContext context{"com.example.Sensor", script, "RUNNING"};
  for (auto _ : state) {
    (*logs)->ComponentOutput(context, lichen::logs::OutputStream::kStdout, kLine);
  }
  (*logs)->Flush();
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(kLine.size()));
  if ((*logs)->last_error()) state.SkipWithError((*logs)->last_error()->message.c_str());
}

void FormatOnly(benchmark::State& state, Format format) {
  const std::string script = lichen::logs::ScriptName("com.example.Sensor", "Run");
  const lichen::logs::KeyValue contexts[] = {
      {"scriptName", script}, {"serviceName", "com.example.Sensor"}, {"currentState", "RUNNING"}};
  lichen::logs::Event event;
  event.logger = "com.example.Sensor";
  event.event_type = "stdout";
  event.message = kLine;
  event.contexts = contexts;
  event.thread = "Copier";
  lichen::logs::LineFormatter formatter;
  std::string line;
  int64_t ms = 1714564800000;
  for (auto _ : state) {
    line.clear();
    formatter.Append(line, format, event, ms++);
    benchmark::DoNotOptimize(line.data());
  }
  state.SetItemsProcessed(state.iterations());
}

BENCHMARK_CAPTURE(ComponentOutput, TextBuffered, Format::kText, true);
BENCHMARK_CAPTURE(ComponentOutput, JsonBuffered, Format::kJson, true);
BENCHMARK_CAPTURE(ComponentOutput, TextUnbuffered, Format::kText, false);
BENCHMARK_CAPTURE(ComponentOutput, JsonUnbuffered, Format::kJson, false);
BENCHMARK_CAPTURE(FormatOnly, Text, Format::kText);
BENCHMARK_CAPTURE(FormatOnly, Json, Format::kJson);

}  // namespace

BENCHMARK_MAIN();
