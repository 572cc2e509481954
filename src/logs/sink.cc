#include "logs/sink.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "logs/format.h"

namespace lichen::logs {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kHourMs = 3600 * 1000;
constexpr std::string_view kExtension = ".log";

std::string ErrnoText(int err) { return std::strerror(err); }

int OpenForAppend(const std::string& path, int access = O_WRONLY) {
  int fd;
  do {
    fd = ::open(path.c_str(), access | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  } while (fd < 0 && errno == EINTR);
  return fd;
}

// Reads exactly `n` digits at `s[pos]`.
bool ReadDigits(std::string_view s, size_t pos, size_t n, int* out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = 0; i < n; ++i) {
    char c = s[pos + i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *out = v;
  return true;
}

}  // namespace

std::string RotatedFileName(std::string_view log_name, std::chrono::system_clock::time_point t,
                            int index) {
  const CivilTime c = ToCivil(ToEpochMs(t));
  char buf[64];
  int n = std::snprintf(buf, sizeof(buf), "_%04lld_%02d_%02d_%02d_%d.log",
                        static_cast<long long>(c.year), c.month, c.day, c.hour, index);
  std::string out(log_name);
  out.append(buf, static_cast<size_t>(n));
  return out;
}

std::optional<RotatedName> ParseRotatedFileName(std::string_view file_name) {
  if (file_name.size() <= kExtension.size() || !file_name.ends_with(kExtension)) {
    return std::nullopt;
  }
  std::string_view stem = file_name.substr(0, file_name.size() - kExtension.size());
  // ..._yyyy_MM_dd_HH_<index>: the index is the digits after the last '_'.
  const size_t last = stem.rfind('_');
  if (last == std::string_view::npos || last + 1 == stem.size() || stem.size() - last > 10) {
    return std::nullopt;
  }
  int index = 0;
  if (!ReadDigits(stem, last + 1, stem.size() - last - 1, &index)) return std::nullopt;
  constexpr size_t kDateLen = 14;                // "_yyyy_MM_dd_HH"
  if (last < kDateLen + 1) return std::nullopt;  // a name of at least one character
  const size_t d = last - kDateLen;
  int y, mo, day, h;
  if (stem[d] != '_' || !ReadDigits(stem, d + 1, 4, &y) || stem[d + 5] != '_' ||
      !ReadDigits(stem, d + 6, 2, &mo) || stem[d + 8] != '_' || !ReadDigits(stem, d + 9, 2, &day) ||
      stem[d + 11] != '_' || !ReadDigits(stem, d + 12, 2, &h)) {
    return std::nullopt;
  }
  if (mo < 1 || mo > 12 || day < 1 || day > 31 || h > 23) return std::nullopt;
  RotatedName out;
  out.log_name = std::string(stem.substr(0, d));
  out.hour_ms = FromCivil(CivilTime{y, mo, day, h, 0, 0, 0});
  out.index = index;
  return out;
}

Result<std::unique_ptr<FileSink>> FileSink::OpenFile(const std::string& dir,
                                                     const std::string& log_name, Limits limits) {
  std::unique_ptr<FileSink> sink(new FileSink());
  sink->dir_ = dir;
  sink->log_name_ = log_name;
  sink->path_ = dir + "/" + log_name + std::string(kExtension);
  sink->limits_ = limits;
  sink->rotating_ = true;
  sink->owns_fd_ = true;
  sink->fd_ = OpenForAppend(sink->path_, O_RDWR);
  if (sink->fd_ < 0) {
    return MakeError("cannot open log file " + sink->path_ + ": " + ErrnoText(errno));
  }
  struct stat st {};
  if (::fstat(sink->fd_, &st) == 0) {
    sink->size_ = static_cast<uint64_t>(st.st_size);
    sink->last_line_ms_ =
        static_cast<int64_t>(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1000000;
  }
  char last = '\n';
  if (sink->size_ > 0 && ::pread(sink->fd_, &last, 1, static_cast<off_t>(sink->size_ - 1)) == 1 &&
      last != '\n') {
    // A line torn by a crash: end it, so the next line starts on a line of its own.
    sink->pending_ = "\n";
    sink->size_ += 1;
  }

  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    auto parsed = ParseRotatedFileName(name);
    if (!parsed || parsed->log_name != log_name) continue;
    std::error_code size_ec;
    const uint64_t size = it->file_size(size_ec);
    if (size_ec) continue;
    sink->rotated_.push_back({dir + "/" + name, parsed->hour_ms, parsed->index, size});
    sink->rotated_bytes_ += size;
  }
  std::sort(sink->rotated_.begin(), sink->rotated_.end(), [](const Rotated& a, const Rotated& b) {
    return a.hour_ms != b.hour_ms ? a.hour_ms < b.hour_ms : a.index < b.index;
  });
  return sink;
}

std::unique_ptr<FileSink> FileSink::ForDescriptor(int fd) {
  std::unique_ptr<FileSink> sink(new FileSink());
  sink->fd_ = fd;
  sink->path_ = "/dev/fd/" + std::to_string(fd);
  return sink;
}

FileSink::~FileSink() {
  (void)Flush();
  if (owns_fd_ && fd_ >= 0) ::close(fd_);
}

std::vector<std::string> FileSink::rotated_paths() const {
  std::vector<std::string> out;
  out.reserve(rotated_.size());
  for (const Rotated& r : rotated_) out.push_back(r.path);
  return out;
}

Result<void> FileSink::Add(std::string_view line, std::chrono::system_clock::time_point now) {
  Result<void> result;
  if (rotating_) {
    const uint64_t n = line.size();
    const uint64_t file_limit = std::min(limits_.file_bytes, limits_.total_bytes);
    if (size_ > 0 && size_ + n > file_limit && size_ >= rotate_retry_at_) {
      result = Rotate();
    }
    // Bounded: each pass removes one rotated file.
    while (!rotated_.empty() && size_ + rotated_bytes_ + n > limits_.total_bytes) {
      auto deleted = DeleteOldest();
      if (!deleted && result) result = deleted;
    }
  }
  pending_.append(line);
  ++pending_lines_;
  size_ += line.size();
  last_line_ms_ = ToEpochMs(now);
  return result;
}

Result<void> FileSink::Rotate() {
  // The queued lines belong to the file being rotated.
  Result<void> flushed = Flush();

  // Named by the hour of its last line; never before the newest rotated file, so that
  // names keep sorting oldest first when the clock steps back.
  int64_t hour_ms = last_line_ms_ / kHourMs * kHourMs;
  if (!rotated_.empty()) hour_ms = std::max(hour_ms, rotated_.back().hour_ms);
  int index = 0;
  for (const Rotated& r : rotated_) {
    if (r.hour_ms == hour_ms) index = std::max(index, r.index + 1);
  }
  const auto named_at = std::chrono::system_clock::time_point(std::chrono::milliseconds(hour_ms));
  std::string rotated;
  struct stat st {};
  // A file we do not know of may hold a name (copied in by hand); skip past it. Bounded.
  for (int tries = 0; tries < 1000; ++tries, ++index) {
    rotated = dir_ + "/" + RotatedFileName(log_name_, named_at, index);
    if (::lstat(rotated.c_str(), &st) != 0 && errno == ENOENT) break;
  }
  if (::rename(path_.c_str(), rotated.c_str()) != 0) {
    const int err = errno;
    rotate_retry_at_ = size_ + limits_.file_bytes;
    return MakeError("cannot rotate " + path_ + " to " + rotated + ": " + ErrnoText(err));
  }
  const int fd = OpenForAppend(path_);
  if (fd < 0) {
    const int err = errno;
    // Keep writing where we were: put the file back under its name.
    (void)::rename(rotated.c_str(), path_.c_str());
    rotate_retry_at_ = size_ + limits_.file_bytes;
    return MakeError("cannot open new log file " + path_ + ": " + ErrnoText(err));
  }
  ::close(fd_);
  fd_ = fd;
  rotated_.push_back({std::move(rotated), hour_ms, index, size_});
  rotated_bytes_ += size_;
  size_ = 0;
  rotate_retry_at_ = 0;
  return flushed;
}

Result<void> FileSink::DeleteOldest() {
  Rotated oldest = std::move(rotated_.front());
  rotated_.erase(rotated_.begin());
  rotated_bytes_ -= oldest.size;
  if (::unlink(oldest.path.c_str()) != 0 && errno != ENOENT) {
    return MakeError("cannot delete old log file " + oldest.path + ": " + ErrnoText(errno));
  }
  return {};
}

Result<void> FileSink::Flush() {
  if (pending_.empty()) return {};
  const char* p = pending_.data();
  size_t left = pending_.size();
  while (left > 0) {
    const ssize_t n = ::write(fd_, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      dropped_lines_ += pending_lines_;
      pending_.clear();
      pending_lines_ = 0;
      if (rotating_) {
        struct stat st {};
        if (::fstat(fd_, &st) == 0) size_ = static_cast<uint64_t>(st.st_size);
      }
      return MakeError("cannot write log file " + path_ + ": " + ErrnoText(err));
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  pending_.clear();
  pending_lines_ = 0;
  return {};
}

}  // namespace lichen::logs
