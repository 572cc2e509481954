// Where lines go: one log's file, rotated by size, or a descriptor such as stdout.
//
// A log named N is the current file <dir>/N.log plus rotated files
// <dir>/N_<yyyy_MM_dd_HH>_<i>.log, the nucleus's logback pattern "N_%d{yyyy_MM_dd_HH}_%i.log"
// (greengrass_2020_12_31_23_0.log) with an index counting from 0 within the hour. The hour
// (UTC here) is that of the file's last line, as logback names a file by the period its
// lines were written in; logback also starts a new file every hour, which this does not:
// rotation is by size only.
//
// Before a line would take the current file past the file size, the file is renamed to the
// next rotated name and a new one begun; then the oldest rotated files are deleted while
// the current file, the rotated ones and the new line together would pass the total size.
// So a log's files never exceed the total by more than one line (the current file is held
// to min(file size, total)), no line is split across files, and a line longer than the
// file size is written whole into a file of its own. Rotated files from earlier runs are
// found when the sink opens and count toward the total.
//
// Lines are queued in memory and written by Flush() as whole lines in one write(2). That
// leaves whole lines behind a crash with one exception the kernel makes: a write(2) that
// is in progress when SIGKILL arrives (or that fails part-way on a full disk) stops at a
// page boundary, so the last line of the current file can be torn. Only that line, and
// only its tail is missing; when the file is opened again it is ended with a newline
// before anything else is written, so a torn line is never glued to the next one.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace lichen::logs {

// "N_yyyy_MM_dd_HH_i.log" for the hour (UTC) holding `t`.
std::string RotatedFileName(std::string_view log_name, std::chrono::system_clock::time_point t,
                            int index);

struct RotatedName {
  std::string log_name;
  int64_t hour_ms = 0;  // epoch milliseconds of the hour in the name
  int index = 0;
};
// The parts of a rotated file's name; nullopt for any other name.
std::optional<RotatedName> ParseRotatedFileName(std::string_view file_name);

class FileSink {
 public:
  struct Limits {
    uint64_t file_bytes = 1024 * 1024;
    uint64_t total_bytes = 10240 * 1024;
  };

  // Opens (appending) or creates <dir>/<log_name>.log; `dir` must exist.
  static Result<std::unique_ptr<FileSink>> OpenFile(const std::string& dir,
                                                    const std::string& log_name, Limits limits);
  // Writes to `fd`, which is neither rotated nor closed.
  static std::unique_ptr<FileSink> ForDescriptor(int fd);

  ~FileSink();  // flushes; closes an owned file
  FileSink(const FileSink&) = delete;
  FileSink& operator=(const FileSink&) = delete;

  // Queues one whole line, ending in '\n', added at `now`, rotating first when it would
  // not fit. The line is always queued; an error is about rotation, which
  // is retried once another file's worth of lines has been written.
  Result<void> Add(std::string_view line, std::chrono::system_clock::time_point now);

  // Writes the queued lines. On failure they are dropped (and counted): a log must not
  // grow without bound in memory while the disk is full.
  Result<void> Flush();

  size_t pending_bytes() const { return pending_.size(); }
  uint64_t dropped_lines() const { return dropped_lines_; }
  const std::string& path() const { return path_; }
  // Paths of the rotated files, oldest first.
  std::vector<std::string> rotated_paths() const;

 private:
  struct Rotated {
    std::string path;
    int64_t hour_ms;
    int index;
    uint64_t size;
  };

  FileSink() = default;
  Result<void> Rotate();
  Result<void> DeleteOldest();

  int fd_ = -1;
  bool owns_fd_ = false;
  bool rotating_ = false;
  std::string dir_, log_name_, path_;
  Limits limits_;
  uint64_t size_ = 0;             // of the current file, queued lines included
  int64_t last_line_ms_ = 0;      // when the current file's last line was added
  uint64_t rotate_retry_at_ = 0;  // after a failed rotation: the size to try again at
  std::vector<Rotated> rotated_;  // oldest first
  uint64_t rotated_bytes_ = 0;
  std::string pending_;
  uint64_t pending_lines_ = 0;
  uint64_t dropped_lines_ = 0;
};

}  // namespace lichen::logs
