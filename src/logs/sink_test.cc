#include "logs/sink.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "logs/format.h"

namespace lichen::logs {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::system_clock;

Clock::time_point At(int64_t epoch_ms) {
  return Clock::time_point(std::chrono::milliseconds(epoch_ms));
}
// 2020-12-31T23:10:00Z and 2021-01-01T00:05:00Z
const Clock::time_point kLateHour = At(1609456200000);
const Clock::time_point kNextDay = At(1609459500000);

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "lichen-logs-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// "line 0042 " padded with dots to exactly 50 bytes including the newline.
std::string NumberedLine(int n) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "line %04d ", n);
  std::string line(buf);
  line.resize(49, '.');
  return line + "\n";
}

// The files of log `name` oldest first: rotated, then current.
std::vector<std::string> FilesOf(const FileSink& sink) {
  auto files = sink.rotated_paths();
  files.push_back(sink.path());
  return files;
}

// Checks that the files hold whole numbered lines, consecutive across files, and returns the
// numbers in order.
std::vector<int> NumbersIn(const std::vector<std::string>& files) {
  std::vector<int> numbers;
  for (const std::string& f : files) {
    const std::string content = ReadAll(f);
    EXPECT_TRUE(content.empty() || content.back() == '\n') << f;
    std::istringstream in(content);
    std::string line;
    while (std::getline(in, line)) {
      EXPECT_EQ(line.size(), 49u) << f << ": " << line;
      int n = -1;
      EXPECT_EQ(std::sscanf(line.c_str(), "line %d ", &n), 1) << line;
      EXPECT_EQ(line + "\n", NumberedLine(n));
      numbers.push_back(n);
    }
  }
  return numbers;
}

TEST(RotatedNameTest, FollowsTheLogbackPattern) {
  EXPECT_EQ(RotatedFileName("greengrass", kLateHour, 0), "greengrass_2020_12_31_23_0.log");
  EXPECT_EQ(RotatedFileName("com.example.Hello", kNextDay, 12),
            "com.example.Hello_2021_01_01_00_12.log");

  auto parsed = ParseRotatedFileName("com.example_x_2020_12_31_23_7.log");
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->log_name, "com.example_x");
  EXPECT_EQ(parsed->index, 7);
  EXPECT_EQ(parsed->hour_ms, 1609455600000);  // 2020-12-31T23:00:00Z

  for (const char* name :
       {"greengrass.log", "greengrass_2020_12_31_23_.log", "_2020_12_31_23_0.log",
        "g_2020_13_31_23_0.log", "g_2020_12_31_24_0.log", "g_2020_12_31_23_0.txt",
        "g_2020-12-31_23_0.log", "g_20_12_31_23_0.log"}) {
    EXPECT_FALSE(ParseRotatedFileName(name)) << name;
  }
}

TEST(FileSinkTest, QueuesLinesUntilFlush) {
  TempDir dir;
  auto sink = FileSink::OpenFile(dir.path(), "g", {});
  ASSERT_TRUE(sink) << sink.error().message;
  ASSERT_TRUE((*sink)->Add("one\n", kLateHour));
  ASSERT_TRUE((*sink)->Add("two\n", kLateHour));
  EXPECT_EQ(ReadAll(dir.path() + "/g.log"), "");
  EXPECT_EQ((*sink)->pending_bytes(), 8u);
  ASSERT_TRUE((*sink)->Flush());
  EXPECT_EQ(ReadAll(dir.path() + "/g.log"), "one\ntwo\n");
  EXPECT_EQ((*sink)->pending_bytes(), 0u);
  sink->reset();  // closing flushes too
  auto again = FileSink::OpenFile(dir.path(), "g", {});
  ASSERT_TRUE(again);
  ASSERT_TRUE((*again)->Add("three\n", kLateHour));
  again->reset();
  EXPECT_EQ(ReadAll(dir.path() + "/g.log"), "one\ntwo\nthree\n");  // appended
}

TEST(FileSinkTest, RotatesBySizeAndDeletesTheOldestPastTheTotal) {
  TempDir dir;
  auto opened = FileSink::OpenFile(dir.path(), "g", {.file_bytes = 1000, .total_bytes = 3000});
  ASSERT_TRUE(opened);
  FileSink& sink = **opened;
  for (int i = 0; i < 500; ++i) {
    ASSERT_TRUE(sink.Add(NumberedLine(i), kLateHour));
    if (i % 7 == 6) {
      ASSERT_TRUE(sink.Flush());  // flushes at odd points must not matter
    }
  }
  ASSERT_TRUE(sink.Flush());

  // 20 lines fill a file; 24 rotations made indices 0..23, and only two rotated files fit
  // beside the current one.
  EXPECT_EQ(sink.rotated_paths(),
            (std::vector<std::string>{dir.path() + "/g_2020_12_31_23_22.log",
                                      dir.path() + "/g_2020_12_31_23_23.log"}));
  size_t files = 0;
  uint64_t total = 0;
  for (const auto& entry : fs::directory_iterator(dir.path())) {
    ++files;
    EXPECT_LE(entry.file_size(), 1000u) << entry.path();
    total += entry.file_size();
  }
  EXPECT_EQ(files, 3u);
  EXPECT_LE(total, 3000u + 50u);

  // What remains is the newest lines, each whole, none missing in between.
  std::vector<int> numbers = NumbersIn(FilesOf(sink));
  ASSERT_FALSE(numbers.empty());
  EXPECT_EQ(numbers.back(), 499);
  for (size_t i = 1; i < numbers.size(); ++i) EXPECT_EQ(numbers[i], numbers[i - 1] + 1);
  EXPECT_EQ(numbers.front(), 440);
}

TEST(FileSinkTest, LosesNoLineBelowTheTotal) {
  TempDir dir;
  auto opened = FileSink::OpenFile(dir.path(), "g", {.file_bytes = 1000, .total_bytes = 1 << 20});
  ASSERT_TRUE(opened);
  FileSink& sink = **opened;
  for (int i = 0; i < 500; ++i) ASSERT_TRUE(sink.Add(NumberedLine(i), kLateHour));
  ASSERT_TRUE(sink.Flush());
  EXPECT_EQ(sink.rotated_paths().size(), 24u);
  std::vector<int> numbers = NumbersIn(FilesOf(sink));
  ASSERT_EQ(numbers.size(), 500u);
  for (int i = 0; i < 500; ++i) EXPECT_EQ(numbers[i], i);
}

TEST(FileSinkTest, IndexStartsAgainInANewHour) {
  TempDir dir;
  auto opened = FileSink::OpenFile(dir.path(), "g", {.file_bytes = 100, .total_bytes = 10000});
  ASSERT_TRUE(opened);
  FileSink& sink = **opened;
  ASSERT_TRUE(sink.Add(NumberedLine(0), kLateHour));
  ASSERT_TRUE(sink.Add(NumberedLine(1), kLateHour));
  ASSERT_TRUE(sink.Add(NumberedLine(2), kLateHour));  // rotates 0-1
  ASSERT_TRUE(sink.Add(NumberedLine(3), kLateHour));
  ASSERT_TRUE(sink.Add(NumberedLine(4), kNextDay));  // rotates 2-3
  ASSERT_TRUE(sink.Add(NumberedLine(5), kNextDay));
  ASSERT_TRUE(sink.Add(NumberedLine(6), kNextDay));  // rotates 4-5
  ASSERT_TRUE(sink.Flush());
  EXPECT_EQ(sink.rotated_paths(), (std::vector<std::string>{
                                      dir.path() + "/g_2020_12_31_23_0.log",
                                      dir.path() + "/g_2020_12_31_23_1.log",
                                      dir.path() + "/g_2021_01_01_00_0.log",
                                  }));
  EXPECT_EQ(NumbersIn(FilesOf(sink)), (std::vector<int>{0, 1, 2, 3, 4, 5, 6}));
}

TEST(FileSinkTest, LineLongerThanAFileIsWrittenWholeToAFileOfItsOwn) {
  TempDir dir;
  auto opened = FileSink::OpenFile(dir.path(), "g", {.file_bytes = 100, .total_bytes = 10000});
  ASSERT_TRUE(opened);
  FileSink& sink = **opened;
  const std::string big = std::string(250, 'b') + "\n";
  ASSERT_TRUE(sink.Add("small 1\n", kLateHour));
  ASSERT_TRUE(sink.Add(big, kLateHour));
  ASSERT_TRUE(sink.Add("small 2\n", kLateHour));
  ASSERT_TRUE(sink.Flush());
  auto files = FilesOf(sink);
  ASSERT_EQ(files.size(), 3u);
  EXPECT_EQ(ReadAll(files[0]), "small 1\n");
  EXPECT_EQ(ReadAll(files[1]), big);
  EXPECT_EQ(ReadAll(files[2]), "small 2\n");
}

TEST(FileSinkTest, TotalBelowFileSizeBoundsTheCurrentFile) {
  TempDir dir;
  auto opened = FileSink::OpenFile(dir.path(), "g", {.file_bytes = 10000, .total_bytes = 200});
  ASSERT_TRUE(opened);
  FileSink& sink = **opened;
  for (int i = 0; i < 40; ++i) ASSERT_TRUE(sink.Add(NumberedLine(i), kLateHour));
  ASSERT_TRUE(sink.Flush());
  uint64_t total = 0;
  for (const std::string& f : FilesOf(sink)) total += fs::file_size(f);
  EXPECT_LE(total, 200u + 50u);
  EXPECT_EQ(NumbersIn(FilesOf(sink)).back(), 39);
}

TEST(FileSinkTest, RotatedFilesOfEarlierRunsCountAndKeepTheirNames) {
  TempDir dir;
  {
    auto first = FileSink::OpenFile(dir.path(), "g", {.file_bytes = 100, .total_bytes = 10000});
    ASSERT_TRUE(first);
    for (int i = 0; i < 6; ++i) ASSERT_TRUE((*first)->Add(NumberedLine(i), kLateHour));
  }
  // The current file is named by its last line's hour when it rotates; across runs that is
  // its modification time.
  const struct timespec times[2] = {{1609456200, 0}, {1609456200, 0}};  // kLateHour
  ASSERT_EQ(::utimensat(AT_FDCWD, (dir.path() + "/g.log").c_str(), times, 0), 0);
  // A file of another log with a similar name is not ours.
  std::ofstream(dir.path() + "/gg_2020_12_31_23_0.log") << "other\n";

  auto second = FileSink::OpenFile(dir.path(), "g", {.file_bytes = 100, .total_bytes = 250});
  ASSERT_TRUE(second);
  FileSink& sink = **second;
  EXPECT_EQ(sink.rotated_paths(), (std::vector<std::string>{
                                      dir.path() + "/g_2020_12_31_23_0.log",
                                      dir.path() + "/g_2020_12_31_23_1.log",
                                  }));
  ASSERT_TRUE(sink.Add(NumberedLine(6), kLateHour));  // rotates 4-5 to index 2, not over 0
  ASSERT_TRUE(sink.Flush());
  EXPECT_EQ(sink.rotated_paths(), (std::vector<std::string>{
                                      dir.path() + "/g_2020_12_31_23_1.log",
                                      dir.path() + "/g_2020_12_31_23_2.log",
                                  }));
  EXPECT_EQ(NumbersIn(FilesOf(sink)), (std::vector<int>{2, 3, 4, 5, 6}));
  EXPECT_EQ(ReadAll(dir.path() + "/gg_2020_12_31_23_0.log"), "other\n");
}

TEST(FileSinkTest, DescriptorSinkWritesWithoutRotating) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  {
    auto sink = FileSink::ForDescriptor(fds[1]);
    ASSERT_TRUE(sink->Add("a\n", kLateHour));
    ASSERT_TRUE(sink->Add("b\n", kLateHour));
    ASSERT_TRUE(sink->Flush());
  }
  // The sink did not close the descriptor: it can still be written.
  ASSERT_EQ(::write(fds[1], "c\n", 2), 2);
  ::close(fds[1]);
  std::string got;
  char buf[64];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof(buf))) > 0;) got.append(buf, n);
  ::close(fds[0]);
  EXPECT_EQ(got, "a\nb\nc\n");
}

TEST(FileSinkTest, FailedWriteDropsAndCountsTheLines) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  ::close(fds[0]);  // writing now fails with EPIPE
  struct sigaction ignore {
  }, old{};
  ignore.sa_handler = SIG_IGN;
  ::sigaction(SIGPIPE, &ignore, &old);
  auto sink = FileSink::ForDescriptor(fds[1]);
  ASSERT_TRUE(sink->Add("a\n", kLateHour));
  ASSERT_TRUE(sink->Add("b\n", kLateHour));
  auto flushed = sink->Flush();
  EXPECT_FALSE(flushed);
  EXPECT_EQ(sink->dropped_lines(), 2u);
  EXPECT_EQ(sink->pending_bytes(), 0u);
  sink.reset();
  ::sigaction(SIGPIPE, &old, nullptr);
  ::close(fds[1]);
}

TEST(FileSinkTest, OpenFailsInAMissingDirectory) {
  TempDir dir;
  auto sink = FileSink::OpenFile(dir.path() + "/missing", "g", {});
  ASSERT_FALSE(sink);
  EXPECT_NE(sink.error().message.find("missing/g.log"), std::string::npos);
}

}  // namespace
}  // namespace lichen::logs
