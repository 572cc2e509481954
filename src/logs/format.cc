#include "logs/format.h"

#include <array>
#include <charconv>
#include <cstdio>
#include <cstring>

#include "common/text.h"

namespace lichen::logs {
namespace {

constexpr char kHex[] = "0123456789ABCDEF";
constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

enum class Escape { kText, kJson };

// Length of the well-formed UTF-8 sequence starting at p (whose first byte is >= 0x80),
// or 0 when it is not well-formed (Unicode Table 3-7: no overlongs, no surrogates,
// nothing past U+10FFFF).
size_t Utf8Length(const unsigned char* p, const unsigned char* end) {
  const unsigned char c = p[0];
  size_t len = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // the range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (static_cast<size_t>(end - p) < len) return 0;
  if (p[1] < lo || p[1] > hi) return 0;
  for (size_t i = 2; i < len; ++i) {
    if (p[i] < 0x80 || p[i] > 0xBF) return 0;
  }
  return len;
}

void AppendUnicodeEscape(std::string& out, unsigned char code) {
  const char buf[6] = {'\\', 'u', '0', '0', kHex[code >> 4], kHex[code & 0xF]};
  out.append(buf, sizeof(buf));
}

template <Escape kMode>
void AppendControl(std::string& out, unsigned char c) {
  switch (c) {
    case '\n':
      out += "\\n";
      return;
    case '\r':
      out += "\\r";
      return;
    case '\t':  // reached in JSON only
      out += "\\t";
      return;
    default:
      break;
  }
  if constexpr (kMode == Escape::kJson) {
    if (c == '\b') {
      out += "\\b";
    } else if (c == '\f') {
      out += "\\f";
    } else {
      AppendUnicodeEscape(out, c);
    }
  } else {
    const char buf[4] = {'\\', 'x', kHex[c >> 4], kHex[c & 0xF]};
    out.append(buf, sizeof(buf));
  }
}

// Which bytes are copied as they are: printable ASCII, and tab in TEXT; not '"' or '\\' in
// JSON.
constexpr std::array<bool, 256> PlainBytes(Escape mode) {
  std::array<bool, 256> plain{};
  for (int c = 0x20; c < 0x7F; ++c) plain[c] = true;
  if (mode == Escape::kText) {
    plain['\t'] = true;
  } else {
    plain['"'] = false;
    plain['\\'] = false;
  }
  return plain;
}
constexpr std::array<bool, 256> kPlainText = PlainBytes(Escape::kText);
constexpr std::array<bool, 256> kPlainJson = PlainBytes(Escape::kJson);

// Whether any of the 8 bytes in `w` may need attention: below 0x20, above 0x7E, and in JSON
// '"' or '\\'. False alarms are allowed (a borrow or carry can flag a neighbour of a real
// hit; tab is flagged in TEXT too); a miss is not.
template <Escape kMode>
bool MaybeSpecial(uint64_t w) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  constexpr uint64_t kHigh = 0x8080808080808080ULL;
  uint64_t hit = ((w - kOnes * 0x20) & ~w) | ((w + kOnes) | w);
  if constexpr (kMode == Escape::kJson) {
    const uint64_t quote = w ^ (kOnes * '"');
    const uint64_t backslash = w ^ (kOnes * '\\');
    hit |= ((quote - kOnes) & ~quote) | ((backslash - kOnes) & ~backslash);
  }
  return (hit & kHigh) != 0;
}

// Copies runs of ordinary bytes in one append, skipping them eight at a time; only the rare
// byte that needs attention is handled on its own.
template <Escape kMode>
void AppendEscaped(std::string& out, std::string_view text) {
  const auto& plain = kMode == Escape::kJson ? kPlainJson : kPlainText;
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* const end = p + text.size();
  const auto* run = p;
  auto take_run = [&](const unsigned char* upto) {
    out.append(reinterpret_cast<const char*>(run), static_cast<size_t>(upto - run));
  };
  while (true) {
    uint64_t word;
    while (end - p >= 8 && (std::memcpy(&word, p, 8), !MaybeSpecial<kMode>(word))) p += 8;
    const unsigned char* const stop = end - p >= 8 ? p + 8 : end;
    while (p < stop && plain[*p]) ++p;
    if (p == end) break;
    if (p == stop) continue;  // a false alarm
    const unsigned char c = *p;
    size_t len = 0;
    if (c >= 0x80) {
      len = Utf8Length(p, end);
      const bool c1_control = len == 2 && c == 0xC2 && p[1] < 0xA0;  // U+0080..U+009F
      if (len != 0 && !c1_control) {
        p += len;  // well-formed: part of the run
        continue;
      }
    }
    take_run(p);
    if (c < 0x80) {
      if (c == '"' || c == '\\') {  // JSON only: TEXT keeps them plain
        out += '\\';
        out += static_cast<char>(c);
      } else {
        AppendControl<kMode>(out, c);  // C0 controls and DEL
      }
      ++p;
    } else if (len == 0) {
      out += kReplacement;
      ++p;
    } else {
      AppendUnicodeEscape(out, p[1]);
      p += 2;
    }
    run = p;
  }
  take_run(end);
}

void AppendDigits(std::string& out, int64_t value, int width) {
  char buf[24];
  int n = std::snprintf(buf, sizeof(buf), "%0*lld", width, static_cast<long long>(value));
  out.append(buf, static_cast<size_t>(n));
}

// "YYYY-MM-DDTHH:MM:SS" of the second that holds `epoch_ms`.
void AppendSecond(std::string& out, const CivilTime& t) {
  if (t.year >= 0 && t.year <= 9999) {
    const char buf[19] = {static_cast<char>('0' + t.year / 1000),
                          static_cast<char>('0' + t.year / 100 % 10),
                          static_cast<char>('0' + t.year / 10 % 10),
                          static_cast<char>('0' + t.year % 10),
                          '-',
                          static_cast<char>('0' + t.month / 10),
                          static_cast<char>('0' + t.month % 10),
                          '-',
                          static_cast<char>('0' + t.day / 10),
                          static_cast<char>('0' + t.day % 10),
                          'T',
                          static_cast<char>('0' + t.hour / 10),
                          static_cast<char>('0' + t.hour % 10),
                          ':',
                          static_cast<char>('0' + t.minute / 10),
                          static_cast<char>('0' + t.minute % 10),
                          ':',
                          static_cast<char>('0' + t.second / 10),
                          static_cast<char>('0' + t.second % 10)};
    out.append(buf, sizeof(buf));
    return;
  }
  AppendDigits(out, t.year, 4);
  out += '-';
  AppendDigits(out, t.month, 2);
  out += '-';
  AppendDigits(out, t.day, 2);
  out += 'T';
  AppendDigits(out, t.hour, 2);
  out += ':';
  AppendDigits(out, t.minute, 2);
  out += ':';
  AppendDigits(out, t.second, 2);
}

void AppendFraction(std::string& out, int millisecond) {
  if (millisecond == 0) {
    out += 'Z';
    return;
  }
  const char buf[5] = {'.', static_cast<char>('0' + millisecond / 100),
                       static_cast<char>('0' + millisecond / 10 % 10),
                       static_cast<char>('0' + millisecond % 10), 'Z'};
  out.append(buf, sizeof(buf));
}

int64_t FloorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

using text::EqualsIgnoreCase;

}  // namespace

const char* ToString(Level level) {
  switch (level) {
    case Level::kTrace:
      return "TRACE";
    case Level::kDebug:
      return "DEBUG";
    case Level::kInfo:
      return "INFO";
    case Level::kWarn:
      return "WARN";
    case Level::kError:
      return "ERROR";
  }
  return "INFO";
}

Result<Level> ParseLevel(std::string_view text) {
  for (Level l : {Level::kTrace, Level::kDebug, Level::kInfo, Level::kWarn, Level::kError}) {
    if (EqualsIgnoreCase(text, ToString(l))) return l;
  }
  return MakeError("log level '" + std::string(text) +
                   "' is not one of TRACE, DEBUG, INFO, WARN, ERROR");
}

Result<Format> ParseFormat(std::string_view text) {
  if (EqualsIgnoreCase(text, "TEXT")) return Format::kText;
  if (EqualsIgnoreCase(text, "JSON")) return Format::kJson;
  return MakeError("log format '" + std::string(text) + "' is not TEXT or JSON");
}

CivilTime ToCivil(int64_t epoch_ms) {
  const int64_t secs = FloorDiv(epoch_ms, 1000);
  const int64_t days = FloorDiv(secs, 86400);
  const int64_t sod = secs - days * 86400;
  // Howard Hinnant's civil_from_days.
  const int64_t z = days + 719468;
  const int64_t era = FloorDiv(z, 146097);
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int day = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  const int month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  const int64_t year = yoe + era * 400 + (month <= 2);
  return CivilTime{year,
                   month,
                   day,
                   static_cast<int>(sod / 3600),
                   static_cast<int>(sod / 60 % 60),
                   static_cast<int>(sod % 60),
                   static_cast<int>(epoch_ms - secs * 1000)};
}

int64_t FromCivil(const CivilTime& t) {
  // Howard Hinnant's days_from_civil.
  const int64_t y = t.year - (t.month <= 2);
  const int64_t era = FloorDiv(y, 400);
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (t.month + (t.month > 2 ? -3 : 9)) + 2) / 5 + t.day - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  const int64_t days = era * 146097 + doe - 719468;
  return ((days * 24 + t.hour) * 60 + t.minute) * 60000 + t.second * 1000 + t.millisecond;
}

int64_t ToEpochMs(std::chrono::system_clock::time_point t) {
  return std::chrono::floor<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

void AppendInstant(std::string& out, int64_t epoch_ms) {
  const CivilTime t = ToCivil(epoch_ms);
  AppendSecond(out, t);
  AppendFraction(out, t.millisecond);
}

void AppendEscapedText(std::string& out, std::string_view text) {
  AppendEscaped<Escape::kText>(out, text);
}

void AppendJsonString(std::string& out, std::string_view text) {
  out += '"';
  AppendEscaped<Escape::kJson>(out, text);
  out += '"';
}

void LineFormatter::AppendCachedInstant(std::string& out, int64_t epoch_ms) {
  const int64_t second = FloorDiv(epoch_ms, 1000);
  if (second != cached_second_) {
    std::string text;
    AppendSecond(text, ToCivil(epoch_ms));
    cached_len_ = std::min(text.size(), sizeof(cached_));
    text.copy(cached_, cached_len_);
    cached_second_ = second;
  }
  out.append(cached_, cached_len_);
  AppendFraction(out, static_cast<int>(epoch_ms - second * 1000));
}

void LineFormatter::Append(std::string& out, Format format, const Event& event, int64_t epoch_ms) {
  format == Format::kJson ? AppendJson(out, event, epoch_ms) : AppendText(out, event, epoch_ms);
}

void LineFormatter::AppendText(std::string& out, const Event& event, int64_t epoch_ms) {
  AppendCachedInstant(out, epoch_ms);
  out += " [";
  out += ToString(event.level);
  out += "] (";
  AppendEscapedText(out, event.thread);
  out += ") ";
  AppendEscapedText(out, event.logger);
  out += ": ";
  if (!event.event_type.empty()) {
    AppendEscapedText(out, event.event_type);
    out += ". ";
  }
  if (!event.message.empty()) {
    AppendEscapedText(out, event.message);
    out += ". ";
  }
  out += '{';
  bool first = true;
  for (const KeyValue& kv : event.contexts) {
    if (!first) out += ", ";
    first = false;
    AppendEscapedText(out, kv.key);
    out += '=';
    AppendEscapedText(out, kv.value);
  }
  out += '}';
  if (!event.cause.empty()) {
    out += "\\n";  // the nucleus's line separator before the cause, escaped
    AppendEscapedText(out, event.cause);
  }
  out += '\n';
}

void LineFormatter::AppendJson(std::string& out, const Event& event, int64_t epoch_ms) {
  out += "{\"thread\":";
  AppendJsonString(out, event.thread);
  out += ",\"level\":\"";
  out += ToString(event.level);
  out += "\",\"eventType\":";
  if (event.event_type.empty()) {
    out += "null";
  } else {
    AppendJsonString(out, event.event_type);
  }
  out += ",\"message\":";
  AppendJsonString(out, event.message);
  out += ",\"contexts\":{";
  bool first = true;
  for (const KeyValue& kv : event.contexts) {
    if (!first) out += ',';
    first = false;
    AppendJsonString(out, kv.key);
    out += ':';
    AppendJsonString(out, kv.value);
  }
  out += "},\"loggerName\":";
  AppendJsonString(out, event.logger);
  out += ",\"timestamp\":";
  char buf[24];
  const auto printed = std::to_chars(buf, buf + sizeof(buf), epoch_ms);
  out.append(buf, printed.ptr);
  out += ",\"cause\":";
  if (event.cause.empty()) {
    out += "null";
  } else {
    out += "{\"message\":";
    AppendJsonString(out, event.cause);
    out += ",\"suppressed\":[],\"stackTrace\":[],\"cause\":null}";
  }
  out += "}\n";
}

}  // namespace lichen::logs
