#include "logs/reader.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "logs/log.h"

namespace lichen::logs {
namespace {

namespace fs = std::filesystem;
using Pairs = std::vector<std::pair<std::string, std::string>>;

constexpr int64_t kT = 1609459199120;  // 2020-12-31T23:59:59.120Z

TEST(ParseLineTest, TextLinesAsTheNucleusWritesThem) {
  auto a = ParseLine(
      "2021-11-17T09:48:47.331Z [INFO] (main) com.aws.greengrass.config.Configuration: "
      "config-loading. Read configuration from a file path. {path=/greengrass/v2/config/"
      "config.tlog}");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->timestamp_ms, 1637142527331);
  EXPECT_EQ(a->level, Level::kInfo);
  EXPECT_EQ(a->thread, "main");
  EXPECT_EQ(a->logger, "com.aws.greengrass.config.Configuration");
  EXPECT_EQ(a->event_type, "config-loading");
  EXPECT_EQ(a->message, "Read configuration from a file path");  // ". " joins it to the contexts
  EXPECT_EQ(a->contexts, (Pairs{{"path", "/greengrass/v2/config/config.tlog"}}));

  auto b = ParseLine(
      "2021-11-17T09:48:41.764Z [INFO] (main) com.aws.greengrass.util.platforms.Platform: Getting "
      "platform instance com.aws.greengrass.util.platforms.unix.linux.LinuxPlatform.. {}");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->event_type, "");
  EXPECT_EQ(
      b->message,
      "Getting platform instance com.aws.greengrass.util.platforms.unix.linux.LinuxPlatform.");
  EXPECT_TRUE(b->contexts.empty());

  auto c = ParseLine(
      "2021-07-09T13:20:59.039Z [INFO] (Serialized listener processor) "
      "com.aws.greengrass.logmanager.LogManagerService: effective-config-dump-complete. "
      "{componentName=burro, serviceName=aws.greengrass.LogManager, currentState=FINISHED}");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->thread, "Serialized listener processor");
  EXPECT_EQ(c->event_type, "effective-config-dump-complete");
  EXPECT_EQ(c->message, "");
  EXPECT_EQ(c->contexts, (Pairs{{"componentName", "burro"},
                                {"serviceName", "aws.greengrass.LogManager"},
                                {"currentState", "FINISHED"}}));

  auto whole_second = ParseLine("2021-01-01T00:00:00Z [WARN] (Copier) C: stderr. {}");
  ASSERT_TRUE(whole_second);
  EXPECT_EQ(whole_second->timestamp_ms, 1609459200000);
  EXPECT_EQ(whole_second->event_type, "stderr");
}

TEST(ParseLineTest, JsonLinesAsTheNucleusWritesThem) {
  auto j = ParseLine(
      "{\"thread\":\"pool-3-thread-25\",\"level\":\"INFO\",\"eventType\":null,\"message\":\"Found "
      "running component which meets the requirement and use it.\",\"contexts\":{"
      "\"ComponentIdentifier\":\"aws.greengrass.Nucleus-v2.12.6\"},\"loggerName\":\"com.aws."
      "greengrass.componentmanager.ComponentManager\",\"timestamp\":1724746653458,\"cause\":null}");
  ASSERT_TRUE(j);
  EXPECT_EQ(j->timestamp_ms, 1724746653458);
  EXPECT_EQ(j->thread, "pool-3-thread-25");
  EXPECT_EQ(j->event_type, "");
  EXPECT_EQ(j->logger, "com.aws.greengrass.componentmanager.ComponentManager");
  EXPECT_EQ(j->contexts, (Pairs{{"ComponentIdentifier", "aws.greengrass.Nucleus-v2.12.6"}}));
  EXPECT_EQ(j->cause, "");

  auto with_cause = ParseLine(
      "{\"level\":\"ERROR\",\"timestamp\":\"5\",\"cause\":{\"message\":\"boom\",\"suppressed\":[],"
      "\"stackTrace\":[],\"cause\":null}}");
  ASSERT_TRUE(with_cause);
  EXPECT_EQ(with_cause->timestamp_ms, 5);
  EXPECT_EQ(with_cause->cause, "boom");
}

TEST(ParseLineTest, RejectsLinesInNeitherLayout) {
  for (const char* line :
       {"", "hello", "{not json", "{\"level\":\"INFO\"}", "{\"level\":\"LOUD\",\"timestamp\":1}",
        "2021-11-17 09:48:47 [INFO] (main) L: x. {}",
        "2021-11-17T09:48:47.331Z [INFO] main L: x"}) {
    EXPECT_FALSE(ParseLine(line)) << line;
  }
}

TEST(ParseLineTest, WhatTheFormatterWritesParsesBack) {
  const KeyValue ctx[] = {{"scriptName", "services.C.lifecycle.Run"}, {"serviceName", "C"}};
  Event e;
  e.level = Level::kWarn;
  e.logger = "C";
  e.event_type = "stderr";
  e.message = "disk at 91%. {almost} full";
  e.contexts = ctx;
  e.cause = "ENOSPC";
  e.thread = "Copier";
  LineFormatter f;
  for (Format format : {Format::kText, Format::kJson}) {
    std::string line;
    f.Append(line, format, e, kT);
    line.pop_back();
    auto parsed = ParseLine(line);
    ASSERT_TRUE(parsed) << line;
    EXPECT_EQ(parsed->timestamp_ms, kT);
    EXPECT_EQ(parsed->level, Level::kWarn);
    EXPECT_EQ(parsed->thread, "Copier");
    EXPECT_EQ(parsed->logger, "C");
    EXPECT_EQ(parsed->event_type, "stderr");
    EXPECT_EQ(parsed->message, "disk at 91%. {almost} full");
    EXPECT_EQ(parsed->contexts,
              (Pairs{{"scriptName", "services.C.lifecycle.Run"}, {"serviceName", "C"}}));
    EXPECT_EQ(parsed->cause, "ENOSPC");
    EXPECT_EQ(parsed->raw, line);
  }
}

// Logs written through Logs, in one format, with a clock the test moves.
class ReadLogsTest : public ::testing::TestWithParam<Format> {
 protected:
  ReadLogsTest() {
    std::string pattern = (fs::temp_directory_path() / "lichen-logs-XXXXXX").string();
    root_ = ::mkdtemp(pattern.data());
    LogsOptions o;
    o.root = root_;
    o.config.format = GetParam();
    o.config.level = Level::kDebug;
    o.config.file_size_kb = 1;  // a few lines per file, so reads span rotated files
    o.clock = [this] {
      return std::chrono::system_clock::time_point(std::chrono::milliseconds(now_ms_));
    };
    auto logs = Logs::Open(o, nullptr);
    EXPECT_TRUE(logs);
    logs_ = std::move(*logs);
    dir_ = logs_->log_dir();

    const std::string run = ScriptName("com.example.A", "Run");
    for (int i = 0; i < 30; ++i) {
      now_ms_ = kT + i * 1000;
      logs_->ComponentOutput({"com.example.A", run, "RUNNING"},
                             i % 3 == 0 ? OutputStream::kStderr : OutputStream::kStdout,
                             "a line " + std::to_string(i));
      logs_->Log(i % 10 == 0 ? Level::kError : Level::kDebug, "lichen.Kernel", "tick",
                 "kernel " + std::to_string(i), {{"i", std::to_string(i)}});
    }
    logs_->ComponentOutput({"com.example.B", ScriptName("com.example.B", "Install"), "NEW"},
                           OutputStream::kStdout, "b only");
    logs_->Flush();
  }
  ~ReadLogsTest() override {
    logs_.reset();
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  std::vector<std::string> Messages(const LogQuery& q) {
    auto lines = ReadLogs(dir_, q);
    EXPECT_TRUE(lines) << (lines ? "" : lines.error().message);
    std::vector<std::string> out;
    if (lines) {
      for (const auto& l : *lines) out.push_back(l.message);
    }
    return out;
  }

  std::string root_, dir_;
  int64_t now_ms_ = kT;
  std::unique_ptr<Logs> logs_;
};

TEST_P(ReadLogsTest, ListsCurrentAndRotatedFilesPerLog) {
  auto files = ListLogFiles(dir_);
  ASSERT_TRUE(files);
  std::vector<std::string> a_files;
  for (const auto& f : *files) {
    if (f.log_name == "com.example.A") a_files.push_back(fs::path(f.path).filename().string());
  }
  ASSERT_GE(a_files.size(), 3u);
  EXPECT_EQ(a_files.back(), "com.example.A.log");
  EXPECT_EQ(a_files.front(), "com.example.A_2021_01_01_00_0.log");  // the clock passed midnight
  ASSERT_FALSE(files->empty());
  EXPECT_EQ(files->front().log_name, "com.example.A");
  EXPECT_EQ(files->back().log_name, "greengrass");
  EXPECT_FALSE(files->back().rotated);
  EXPECT_TRUE(files->front().rotated);
  EXPECT_FALSE(ListLogFiles(root_ + "/missing"));
}

TEST_P(ReadLogsTest, ReadsAComponentAcrossItsRotatedFiles) {
  auto all = Messages({.logs = {"com.example.A"}});
  ASSERT_EQ(all.size(), 30u);
  for (int i = 0; i < 30; ++i) EXPECT_EQ(all[i], "a line " + std::to_string(i));
}

TEST_P(ReadLogsTest, FiltersByLevelTimeAndText) {
  // stderr lines are WARN: every third.
  EXPECT_EQ(
      Messages({.logs = {"com.example.A"}, .min_level = Level::kWarn}),
      (std::vector<std::string>{"a line 0", "a line 3", "a line 6", "a line 9", "a line 12",
                                "a line 15", "a line 18", "a line 21", "a line 24", "a line 27"}));
  EXPECT_EQ(Messages({.logs = {"greengrass"}, .min_level = Level::kError}),
            (std::vector<std::string>{"kernel 0", "kernel 10", "kernel 20"}));
  EXPECT_EQ(Messages({.logs = {"com.example.A"}, .since_ms = kT + 5000, .until_ms = kT + 7000}),
            (std::vector<std::string>{"a line 5", "a line 6", "a line 7"}));
  EXPECT_EQ(Messages({.logs = {"com.example.A"}, .contains = "line 2"}),
            (std::vector<std::string>{"a line 2", "a line 20", "a line 21", "a line 22",
                                      "a line 23", "a line 24", "a line 25", "a line 26",
                                      "a line 27", "a line 28", "a line 29"}));
}

TEST_P(ReadLogsTest, EveryLogByDefaultMergedByTime) {
  auto lines = ReadLogs(dir_, {.since_ms = kT + 29000});
  ASSERT_TRUE(lines);
  std::vector<std::pair<std::string, std::string>> got;
  for (const auto& l : *lines) got.emplace_back(l.logger, l.message);
  EXPECT_EQ(got, (Pairs{{"com.example.A", "a line 29"},
                        {"com.example.B", "b only"},
                        {"lichen.Kernel", "kernel 29"}}));
}

TEST_P(ReadLogsTest, ReadsNamedFilesAndSkipsForeignLines) {
  const std::string b = dir_ + "/com.example.B.log";
  std::ofstream(b, std::ios::app) << "not a log line\n";
  auto lines = ReadLogs(dir_, {.files = {b}});
  ASSERT_TRUE(lines);
  ASSERT_EQ(lines->size(), 1u);
  EXPECT_EQ((*lines)[0].message, "b only");
  EXPECT_EQ((*lines)[0].file, b);
  EXPECT_EQ((*lines)[0].contexts, (Pairs{{"scriptName", "services.com.example.B.lifecycle.Install"},
                                         {"serviceName", "com.example.B"},
                                         {"currentState", "NEW"}}));
  EXPECT_FALSE(ReadLogs(dir_, {.files = {dir_ + "/nope.log"}}));
}

INSTANTIATE_TEST_SUITE_P(BothFormats, ReadLogsTest, ::testing::Values(Format::kText, Format::kJson),
                         [](const ::testing::TestParamInfo<Format>& p) {
                           return p.param == Format::kText ? "Text" : "Json";
                         });

}  // namespace
}  // namespace lichen::logs
