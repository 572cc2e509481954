#include "logs/log.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "logs/reader.h"

namespace lichen::logs {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr int64_t kT = 1609459199120;  // 2020-12-31T23:59:59.120Z
constexpr std::string_view kHello = "com.example.Hello";

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

class LogsTest : public ::testing::Test {
 protected:
  LogsTest() {
    std::string pattern = (fs::temp_directory_path() / "lichen-logs-XXXXXX").string();
    root_ = ::mkdtemp(pattern.data());
  }
  ~LogsTest() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  LogsOptions Options() {
    LogsOptions o;
    o.root = root_;
    o.clock = [this] {
      return std::chrono::system_clock::time_point(std::chrono::milliseconds(now_ms_));
    };
    return o;
  }
  std::unique_ptr<Logs> Open(LogsOptions o, boost::asio::io_context* io = nullptr) {
    auto logs = Logs::Open(std::move(o), io);
    EXPECT_TRUE(logs) << (logs ? "" : logs.error().message);
    return logs ? std::move(*logs) : nullptr;
  }
  std::string LogFile(std::string_view name) const {
    return root_ + "/logs/" + std::string(name) + ".log";
  }
  ScriptContext Run() const { return ScriptContext{kHello, run_script_, "RUNNING"}; }
  // Runs the loop until `done` holds; the deadline is a failure, never a pass.
  template <typename Pred>
  bool RunUntil(boost::asio::io_context& io, Pred done) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      io.restart();
      io.run_for(10ms);
    }
    return done();
  }

  std::string root_;
  int64_t now_ms_ = kT;
  std::string run_script_ = ScriptName(kHello, "Run");
};

TEST_F(LogsTest, RuntimeLogGoesToGreengrassLog) {
  auto logs = Open(Options());
  ASSERT_TRUE(logs);
  EXPECT_EQ(logs->log_dir(), root_ + "/logs");
  logs->Log(Level::kInfo, "lichen.KernelLifecycle", "system-start", "Launch Nucleus",
            {{"version", "0.1.0"}, {"rootPath", "/greengrass/v2"}});
  now_ms_ += 1000;
  const KeyValue ctx[] = {{"serviceName", "main"}};
  Event e;
  e.level = Level::kError;
  e.logger = "lichen.Kernel";
  e.message = "Failed to start";
  e.contexts = ctx;
  e.cause = "no such file";
  e.thread = "pool-1";
  logs->Log(e);
  EXPECT_EQ(ReadAll(LogFile("greengrass")),
            "2020-12-31T23:59:59.120Z [INFO] (main) lichen.KernelLifecycle: system-start. Launch "
            "Nucleus. {version=0.1.0, rootPath=/greengrass/v2}\n"
            "2021-01-01T00:00:00.120Z [ERROR] (pool-1) lichen.Kernel: Failed to start. "
            "{serviceName=main}\\nno such file\n");
}

TEST_F(LogsTest, ComponentOutputInTheNucleusShape) {
  auto logs = Open(Options());
  ASSERT_TRUE(logs);
  logs->ComponentOutput(Run(), OutputStream::kStdout, "Hello, world!");
  logs->ComponentOutput(Run(), OutputStream::kStderr, "Traceback (most recent call last):\r");
  logs->ComponentOutput(Run(), OutputStream::kStderr, "  File \"hello.py\", line 3");
  logs->ComponentOutput(Run(), OutputStream::kStdout, "");
  const std::string ctx =
      "{scriptName=services.com.example.Hello.lifecycle.Run, serviceName=com.example.Hello, "
      "currentState=RUNNING}";
  EXPECT_EQ(ReadAll(LogFile(kHello)),
            "2020-12-31T23:59:59.120Z [INFO] (Copier) com.example.Hello: stdout. Hello, world!. " +
                ctx + "\n" +
                "2020-12-31T23:59:59.120Z [WARN] (Copier) com.example.Hello: stderr. Traceback "
                "(most recent call last):. " +
                ctx + "\n" +
                "2020-12-31T23:59:59.120Z [WARN] (Copier) com.example.Hello: stderr.   File "
                "\"hello.py\", line 3. " +
                ctx + "\n" +
                "2020-12-31T23:59:59.120Z [INFO] (Copier) com.example.Hello: stdout. " + ctx +
                "\n");
  EXPECT_EQ(ReadAll(LogFile("greengrass")), "");  // component output stays in its own file
}

TEST_F(LogsTest, ComponentOutputAsJson) {
  auto o = Options();
  o.config.format = Format::kJson;
  auto logs = Open(o);
  ASSERT_TRUE(logs);
  logs->ComponentOutput(Run(), OutputStream::kStderr, "warning: \"disk\" low");
  EXPECT_EQ(ReadAll(LogFile(kHello)),
            "{\"thread\":\"Copier\",\"level\":\"WARN\",\"eventType\":\"stderr\",\"message\":"
            "\"warning: \\\"disk\\\" low\",\"contexts\":{\"scriptName\":\"services.com.example."
            "Hello.lifecycle.Run\",\"serviceName\":\"com.example.Hello\",\"currentState\":"
            "\"RUNNING\"},\"loggerName\":\"com.example.Hello\",\"timestamp\":1609459199120,"
            "\"cause\":null}\n");
}

TEST_F(LogsTest, MultiLineOutputStaysOneLogLinePerLine) {
  auto logs = Open(Options());
  ASSERT_TRUE(logs);
  // What Process delivers for "one\ntwo\r\n\x1b[31mred\x1b[0m\tend\n" plus a 64 KiB line.
  const std::string big(64 * 1024, 'x');
  const std::vector<std::string> delivered = {"one", "two\r", "\x1b[31mred\x1b[0m\tend", big,
                                              "after"};
  for (const auto& line : delivered) logs->ComponentOutput(Run(), OutputStream::kStdout, line);
  const auto lines = Lines(ReadAll(LogFile(kHello)));
  ASSERT_EQ(lines.size(), delivered.size());
  EXPECT_NE(lines[0].find(": stdout. one. {"), std::string::npos);
  EXPECT_NE(lines[1].find(": stdout. two. {"), std::string::npos);
  EXPECT_NE(lines[2].find(": stdout. \\x1B[31mred\\x1B[0m\tend. {"), std::string::npos);
  EXPECT_NE(lines[3].find(big), std::string::npos);
  EXPECT_NE(lines[4].find(": stdout. after. {"), std::string::npos);
}

TEST_F(LogsTest, MinimumLevelFilters) {
  auto o = Options();
  o.config.level = Level::kWarn;
  auto logs = Open(o);
  ASSERT_TRUE(logs);
  EXPECT_FALSE(logs->Enabled(Level::kInfo));
  EXPECT_TRUE(logs->Enabled(Level::kWarn));
  logs->ComponentOutput(Run(), OutputStream::kStdout, "dropped");
  logs->ComponentOutput(Run(), OutputStream::kStderr, "kept");
  logs->Log(Level::kInfo, "L", "", "dropped");
  logs->Log(Level::kError, "L", "", "kept");
  EXPECT_EQ(Lines(ReadAll(LogFile(kHello))).size(), 1u);
  EXPECT_EQ(Lines(ReadAll(LogFile("greengrass"))).size(), 1u);
  EXPECT_EQ(ReadAll(LogFile(kHello)).find("dropped"), std::string::npos);

  auto trace = o;
  trace.config.level = Level::kTrace;
  ASSERT_TRUE(logs->Reconfigure(trace.config));
  logs->Log(Level::kTrace, "L", "", "fine detail");
  logs->Log(Level::kDebug, "L", "", "detail");
  EXPECT_EQ(Lines(ReadAll(LogFile("greengrass"))).size(), 3u);
}

TEST_F(LogsTest, ConsoleOutputWritesTheSameLinesToTheDescriptor) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  auto o = Options();
  o.config.output_type = OutputType::kConsole;
  o.console_fd = fds[1];
  {
    auto logs = Open(o);
    ASSERT_TRUE(logs);
    logs->Log(Level::kInfo, "L", "start", "");
    logs->ComponentOutput(Run(), OutputStream::kStdout, "hi");
  }
  ::close(fds[1]);
  std::string got;
  char buf[4096];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof(buf))) > 0;) got.append(buf, n);
  ::close(fds[0]);
  EXPECT_EQ(got,
            "2020-12-31T23:59:59.120Z [INFO] (main) L: start. {}\n"
            "2020-12-31T23:59:59.120Z [INFO] (Copier) com.example.Hello: stdout. hi. "
            "{scriptName=services.com.example.Hello.lifecycle.Run, serviceName=com.example.Hello, "
            "currentState=RUNNING}\n");
  EXPECT_FALSE(fs::exists(root_ + "/logs"));
}

TEST_F(LogsTest, BufferedLinesAreFlushedByTheTimer) {
  boost::asio::io_context io;
  auto o = Options();
  o.flush_interval = 20ms;
  auto logs = Open(o, &io);
  ASSERT_TRUE(logs);
  logs->ComponentOutput(Run(), OutputStream::kStdout, "one");
  logs->ComponentOutput(Run(), OutputStream::kStdout, "two");
  EXPECT_EQ(ReadAll(LogFile(kHello)), "");  // buffered: no write(2) per line
  ASSERT_TRUE(RunUntil(io, [&] { return Lines(ReadAll(LogFile(kHello))).size() == 2; }));
  logs->ComponentOutput(Run(), OutputStream::kStdout, "three");  // the timer arms again
  ASSERT_TRUE(RunUntil(io, [&] { return Lines(ReadAll(LogFile(kHello))).size() == 3; }));
}

TEST_F(LogsTest, BufferedLinesAreFlushedWhenTheBufferIsLarge) {
  boost::asio::io_context io;
  auto o = Options();
  o.flush_interval = 1h;
  o.flush_bytes = 1000;
  auto logs = Open(o, &io);
  ASSERT_TRUE(logs);
  size_t written = 0;
  for (int i = 0; i < 100 && written == 0; ++i) {
    logs->ComponentOutput(Run(), OutputStream::kStdout, "line " + std::to_string(i));
    written = ReadAll(LogFile(kHello)).size();
  }
  EXPECT_GE(written, 1000u);
  EXPECT_LT(written, 1000u + 300u);
  EXPECT_EQ(ReadAll(LogFile(kHello)).back(), '\n');
}

TEST_F(LogsTest, DestroyingFlushesAndLeavesNoTimerBehind) {
  boost::asio::io_context io;
  auto logs = Open(Options(), &io);
  ASSERT_TRUE(logs);
  logs->ComponentOutput(Run(), OutputStream::kStdout, "last words");
  logs.reset();
  EXPECT_EQ(Lines(ReadAll(LogFile(kHello))).size(), 1u);
  io.run_for(50ms);  // the cancelled wait completes without touching the destroyed Logs
}

TEST_F(LogsTest, RotatesComponentLogsWithTheReferenceNaming) {
  auto o = Options();
  o.config.file_size_kb = 1;
  o.config.total_logs_size_kb = 3;
  auto logs = Open(o);
  ASSERT_TRUE(logs);
  for (int i = 0; i < 200; ++i) {
    logs->ComponentOutput(Run(), OutputStream::kStdout, "n=" + std::to_string(i));
  }
  auto files = ListLogFiles(logs->log_dir());
  ASSERT_TRUE(files);
  uint64_t total = 0;
  std::vector<std::string> names;
  for (const auto& f : *files) {
    if (f.log_name != kHello) continue;
    names.push_back(fs::path(f.path).filename().string());
    EXPECT_LE(f.size, 1024u);
    total += f.size;
  }
  ASSERT_GE(names.size(), 2u);
  EXPECT_EQ(names.back(), "com.example.Hello.log");
  for (size_t i = 0; i + 1 < names.size(); ++i) {
    EXPECT_TRUE(names[i].starts_with("com.example.Hello_2020_12_31_23_")) << names[i];
  }
  EXPECT_LE(total, 3u * 1024 + 200);
  // The newest line is there, whole, last.
  auto read = ReadLogs(logs->log_dir(), LogQuery{.logs = {std::string(kHello)}});
  ASSERT_TRUE(read);
  ASSERT_FALSE(read->empty());
  EXPECT_EQ(read->back().message, "n=199");
}

TEST_F(LogsTest, ReconfigureSwitchesFormatAndOutput) {
  auto o = Options();
  auto logs = Open(o);
  ASSERT_TRUE(logs);
  logs->Log(Level::kInfo, "L", "", "text line");
  LogConfig json = o.config;
  json.format = Format::kJson;
  ASSERT_TRUE(logs->Reconfigure(json));
  logs->Log(Level::kInfo, "L", "", "json line");
  const auto lines = Lines(ReadAll(LogFile("greengrass")));
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], "2020-12-31T23:59:59.120Z [INFO] (main) L: text line. {}");
  EXPECT_EQ(nlohmann::json::parse(lines[1])["message"], "json line");

  LogConfig bad = o.config;
  bad.file_size_kb = 0;
  EXPECT_FALSE(logs->Reconfigure(bad));
  auto o2 = Options();
  o2.config.total_logs_size_kb = 0;
  EXPECT_FALSE(Logs::Open(o2, nullptr));
}

TEST_F(LogsTest, ComponentNamesCannotEscapeTheLogDirectory) {
  auto logs = Open(Options());
  ASSERT_TRUE(logs);
  logs->ComponentOutput(ScriptContext{"../evil", "s", "RUNNING"}, OutputStream::kStdout, "x");
  logs->ComponentOutput(ScriptContext{"..", "s", "RUNNING"}, OutputStream::kStdout, "y");
  EXPECT_TRUE(fs::exists(root_ + "/logs/.._evil.log"));
  EXPECT_TRUE(fs::exists(root_ + "/logs/_...log"));
  EXPECT_FALSE(fs::exists(root_ + "/evil.log"));
}

TEST_F(LogsTest, ClosingAComponentLogFlushesItAndALaterLineReopensIt) {
  boost::asio::io_context io;
  auto o = Options();
  o.flush_interval = 1h;
  auto logs = Open(o, &io);
  ASSERT_TRUE(logs);
  logs->ComponentOutput(Run(), OutputStream::kStdout, "before removal");
  logs->CloseComponentLog(kHello);
  EXPECT_EQ(Lines(ReadAll(LogFile(kHello))).size(), 1u);
  logs->CloseComponentLog("greengrass");  // the runtime log is not a component's
  logs->Log(Level::kInfo, "L", "", "still open");
  logs->ComponentOutput(Run(), OutputStream::kStdout, "reinstalled");
  logs->Flush();
  EXPECT_EQ(Lines(ReadAll(LogFile(kHello))).size(), 2u);
  EXPECT_EQ(Lines(ReadAll(LogFile("greengrass"))).size(), 1u);
}

TEST_F(LogsTest, UnwritableDirectoryIsReportedNotThrown) {
  std::ofstream(root_ + "/logs") << "a file where the directory should be";
  EXPECT_FALSE(Logs::Open(Options(), nullptr));
}

TEST_F(LogsTest, ParsesTheOutputConfigurationNames) {
  EXPECT_EQ(*ParseOutputType("console"), OutputType::kConsole);
  EXPECT_EQ(*ParseOutputType("FILE"), OutputType::kFile);
  EXPECT_FALSE(ParseOutputType("syslog"));
  EXPECT_EQ(ScriptName("a.B", "install"), "services.a.B.lifecycle.install");
}

// A writer killed with SIGKILL at an arbitrary moment leaves whole, consecutive lines; only
// the last line of the newest file may be torn (see sink.h), and reopening ends it.
class CrashTest : public LogsTest, public ::testing::WithParamInterface<bool> {};

[[noreturn]] void WriteForever(const std::string& root, bool buffered) {
  boost::asio::io_context io;
  LogsOptions o;
  o.root = root;
  o.config.file_size_kb = 8;
  o.config.total_logs_size_kb = 1 << 20;  // nothing is deleted: every line must be there
  o.flush_bytes = 16 * 1024;
  o.flush_interval = 5ms;
  auto logs = Logs::Open(o, buffered ? &io : nullptr);
  if (!logs) ::_exit(2);
  const std::string script = ScriptName("Writer", "Run");
  const std::string padding(60, '.');
  uint64_t n = 0;
  std::function<void()> burst = [&] {
    for (int i = 0; i < 200; ++i) {
      (*logs)->ComponentOutput(ScriptContext{"Writer", script, "RUNNING"}, OutputStream::kStdout,
                               "n=" + std::to_string(n++) + " " + padding);
    }
    if (buffered) boost::asio::post(io, burst);
  };
  if (buffered) {
    boost::asio::post(io, burst);
    io.run();
  } else {
    for (;;) burst();
  }
  ::_exit(3);
}

TEST_P(CrashTest, KilledWriterLeavesOnlyWholeLines) {
  const bool buffered = GetParam();
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) WriteForever(root_, buffered);

  // Wait, bounded, for a few rotations' worth of output; then kill mid-stream.
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  uint64_t total = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    total = 0;
    std::error_code ec;
    for (fs::directory_iterator it(root_ + "/logs", ec), end; !ec && it != end; it.increment(ec)) {
      std::error_code size_ec;
      const uint64_t size = it->file_size(size_ec);
      if (!size_ec) total += size;  // a file renamed under us has no size to count
    }
    if (total >= 256 * 1024) break;
    std::this_thread::sleep_for(1ms);  // polling a condition, not waiting out a race
  }
  ::kill(pid, SIGKILL);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "writer exited early";
  ASSERT_GE(total, 256u * 1024);

  auto listed = ListLogFiles(root_ + "/logs");
  ASSERT_TRUE(listed);
  std::vector<LogFileInfo> writer_files;
  for (const auto& f : *listed) {
    if (f.log_name == "Writer") writer_files.push_back(f);
  }
  const auto* files = &writer_files;
  ASSERT_GE(files->size(), 2u);
  uint64_t expected = 0;
  std::string torn;
  for (size_t f = 0; f < files->size(); ++f) {
    const auto& file = (*files)[f];
    const std::string content = ReadAll(file.path);
    const bool newest = f + 1 == files->size();
    size_t start = 0;
    while (start < content.size()) {
      const size_t nl = content.find('\n', start);
      if (nl == std::string::npos) {
        ASSERT_TRUE(newest) << "a line torn in a rotated file: " << file.path;
        torn = content.substr(start);
        break;
      }
      auto line = ParseLine(std::string_view(content).substr(start, nl - start));
      ASSERT_TRUE(line) << file.path << " at " << start;
      ASSERT_EQ(line->message, "n=" + std::to_string(expected) + " " + std::string(60, '.'))
          << file.path;
      ++expected;
      start = nl + 1;
    }
  }
  EXPECT_GT(expected, 1000u) << [&] {
    std::string listing;
    for (const auto& f : *listed) listing += f.path + " " + std::to_string(f.size) + "\n";
    return listing;
  }();

  // Reopening ends a torn line, so the next line stands alone.
  {
    auto logs = Open(Options());
    ASSERT_TRUE(logs);
    logs->ComponentOutput(ScriptContext{"Writer", "s", "RUNNING"}, OutputStream::kStdout,
                          "after restart");
  }
  const auto lines = Lines(ReadAll(LogFile("Writer")));
  ASSERT_FALSE(lines.empty());
  auto last = ParseLine(lines.back());
  ASSERT_TRUE(last);
  EXPECT_EQ(last->message, "after restart");
  if (!torn.empty()) {
    EXPECT_EQ(lines[lines.size() - 2], torn);
  }
}

INSTANTIATE_TEST_SUITE_P(BufferedAndUnbuffered, CrashTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& p) {
                           return p.param ? "Buffered" : "Unbuffered";
                         });

}  // namespace
}  // namespace lichen::logs
