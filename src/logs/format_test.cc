#include "logs/format.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <random>

namespace lichen::logs {
namespace {

// 2020-12-31T23:59:59.120Z
constexpr int64_t kT = 1609459199120;

std::string Text(const Event& e, int64_t ms = kT) {
  std::string out;
  LineFormatter().AppendText(out, e, ms);
  return out;
}

std::string Json(const Event& e, int64_t ms = kT) {
  std::string out;
  LineFormatter().AppendJson(out, e, ms);
  return out;
}

std::string Escaped(std::string_view s) {
  std::string out;
  AppendEscapedText(out, s);
  return out;
}

TEST(FormatTest, TextLayoutWithEventTypeMessageAndContexts) {
  const KeyValue ctx[] = {{"serviceName", "main"}, {"currentState", "NEW"}};
  Event e;
  e.logger = "com.aws.greengrass.lifecyclemanager.Kernel";
  e.event_type = "service-set-state";
  e.message = "Moving on";
  e.contexts = ctx;
  EXPECT_EQ(Text(e),
            "2020-12-31T23:59:59.120Z [INFO] (main) com.aws.greengrass.lifecyclemanager.Kernel: "
            "service-set-state. Moving on. {serviceName=main, currentState=NEW}\n");
}

TEST(FormatTest, TextLeavesOutEmptyPartsButAlwaysPrintsContexts) {
  Event e;
  e.logger = "L";
  e.message = "Proceed as default.";
  EXPECT_EQ(Text(e), "2020-12-31T23:59:59.120Z [INFO] (main) L: Proceed as default.. {}\n");

  const KeyValue ctx[] = {{"file", "/x/effectiveConfig.yaml"}};
  Event only_type;
  only_type.logger = "L";
  only_type.event_type = "effective-config-dump-complete";
  only_type.contexts = ctx;
  EXPECT_EQ(Text(only_type),
            "2020-12-31T23:59:59.120Z [INFO] (main) L: effective-config-dump-complete. "
            "{file=/x/effectiveConfig.yaml}\n");

  Event nothing;
  nothing.level = Level::kDebug;
  nothing.logger = "L";
  nothing.thread = "pool-2-thread-1";
  EXPECT_EQ(Text(nothing), "2020-12-31T23:59:59.120Z [DEBUG] (pool-2-thread-1) L: {}\n");
}

TEST(FormatTest, TextCauseFollowsAnEscapedNewline) {
  Event e;
  e.level = Level::kError;
  e.logger = "L";
  e.event_type = "deploy";
  e.message = "failed";
  e.cause = "connection refused";
  EXPECT_EQ(Text(e),
            "2020-12-31T23:59:59.120Z [ERROR] (main) L: deploy. failed. {}\\nconnection refused\n");
}

TEST(FormatTest, InstantIsIsoInstantOfMilliseconds) {
  auto instant = [](int64_t ms) {
    std::string s;
    AppendInstant(s, ms);
    return s;
  };
  EXPECT_EQ(instant(kT), "2020-12-31T23:59:59.120Z");
  EXPECT_EQ(instant(1609459199000), "2020-12-31T23:59:59Z");  // no ".000", like ISO_INSTANT
  EXPECT_EQ(instant(1609459199001), "2020-12-31T23:59:59.001Z");
  EXPECT_EQ(instant(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(instant(-1), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(instant(1709164800000), "2024-02-29T00:00:00Z");
  EXPECT_EQ(instant(253402300799999), "9999-12-31T23:59:59.999Z");

  // The formatter's per-second cache gives the same text across seconds.
  LineFormatter f;
  Event e;
  e.logger = "L";
  for (int64_t ms : {kT, kT + 1, kT + 880, kT + 881, kT - 121, kT + 86400000}) {
    std::string cached, fresh;
    f.AppendText(cached, e, ms);
    AppendInstant(fresh, ms);
    EXPECT_EQ(cached.substr(0, fresh.size()), fresh) << ms;
  }
}

TEST(FormatTest, CivilRoundTrip) {
  for (int64_t ms : {int64_t{0}, int64_t{-1}, kT, int64_t{951782400000}, int64_t{4107542399999},
                     int64_t{-62135596800000}}) {
    EXPECT_EQ(FromCivil(ToCivil(ms)), ms) << ms;
  }
  CivilTime leap = ToCivil(951782400000);  // 2000-02-29
  EXPECT_EQ(leap.year, 2000);
  EXPECT_EQ(leap.month, 2);
  EXPECT_EQ(leap.day, 29);
}

TEST(FormatTest, JsonLayoutMatchesTheNucleusFieldOrder) {
  // The same event as the reference's StructuredLayoutTest expects.
  const KeyValue ctx[] = {{"key", "value"}};
  Event e;
  e.logger = "Logger";
  e.message = "message 1";
  e.contexts = ctx;
  EXPECT_EQ(
      Json(e),
      "{\"thread\":\"main\",\"level\":\"INFO\",\"eventType\":null,\"message\":\"message 1\","
      "\"contexts\":{\"key\":\"value\"},\"loggerName\":\"Logger\",\"timestamp\":1609459199120,"
      "\"cause\":null}\n");
}

TEST(FormatTest, JsonWithEventTypeAndCause) {
  Event e;
  e.level = Level::kWarn;
  e.logger = "L";
  e.event_type = "stderr";
  e.cause = "it \"broke\"";
  EXPECT_EQ(Json(e),
            "{\"thread\":\"main\",\"level\":\"WARN\",\"eventType\":\"stderr\",\"message\":\"\","
            "\"contexts\":{},\"loggerName\":\"L\",\"timestamp\":1609459199120,"
            "\"cause\":{\"message\":\"it \\\"broke\\\"\",\"suppressed\":[],\"stackTrace\":[],"
            "\"cause\":null}}\n");
}

TEST(FormatTest, TextEscapesControlCharactersButKeepsTabsAndUtf8) {
  EXPECT_EQ(Escaped("a\nb\rc\x1b[31md\te\x7f"), "a\\nb\\rc\\x1B[31md\te\\x7F");
  EXPECT_EQ(Escaped(std::string_view("nul\0here", 8)), "nul\\x00here");
  EXPECT_EQ(Escaped("\xC2\x85next"), "\\u0085next");               // C1 NEL
  EXPECT_EQ(Escaped("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"),  // é € 😀 stay
            "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80");
  EXPECT_EQ(Escaped("\xC2\xA0"), "\xC2\xA0");  // NBSP is not a control
  // Invalid UTF-8 becomes U+FFFD: a stray continuation, a truncated sequence, an overlong
  // encoding, a surrogate, and a code point past U+10FFFF.
  EXPECT_EQ(Escaped("a\x80z"), "a\xEF\xBF\xBDz");
  EXPECT_EQ(Escaped("a\xE2\x82"), "a\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(Escaped("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(Escaped("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(Escaped("\xF4\x90\x80\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(Escaped("back\\slash"), "back\\slash");  // display escaping only
}

// A plain byte-at-a-time statement of the escaping rules, to check the fast one against.
std::string ReferenceEscape(std::string_view s, bool json) {
  static const char* kHexDigits = "0123456789ABCDEF";
  auto hex = [](unsigned c) { return std::string{kHexDigits[c >> 4], kHexDigits[c & 0xF]}; };
  std::string out;
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '\t' && !json) {
      out += '\t';
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (json && c == '\t') {
      out += "\\t";
    } else if (json && c == '\b') {
      out += "\\b";
    } else if (json && c == '\f') {
      out += "\\f";
    } else if (c < 0x20 || c == 0x7F) {
      out += (json ? "\\u00" : "\\x") + hex(c);
    } else if (json && (c == '"' || c == '\\')) {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x80) {
      out += static_cast<char>(c);
    } else {
      // Decode one sequence; well-formed means the shortest form of a scalar value.
      size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
      uint32_t cp = len == 4 ? c & 0x07 : len == 3 ? c & 0x0F : c & 0x1F;
      bool ok = len != 0 && i + len <= s.size();
      for (size_t k = 1; ok && k < len; ++k) {
        const auto cc = static_cast<unsigned char>(s[i + k]);
        ok = (cc & 0xC0) == 0x80;
        cp = (cp << 6) | (cc & 0x3F);
      }
      const uint32_t min = len == 2 ? 0x80 : len == 3 ? 0x800 : 0x10000;
      ok = ok && cp >= min && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
      if (!ok) {
        out += "\xEF\xBF\xBD";
        ++i;
        continue;
      }
      if (cp <= 0x9F) {
        out += "\\u00" + hex(cp);
      } else {
        out += s.substr(i, len);
      }
      i += len;
      continue;
    }
    ++i;
  }
  return out;
}

TEST(FormatTest, FastEscapingAgreesWithTheRulesOnRandomText) {
  std::mt19937 rng(20260101);
  // Mostly printable text with the bytes that matter mixed in at every alignment.
  const std::vector<std::string> pieces = {"a",
                                           "hello world ",
                                           "\t",
                                           "\n",
                                           "\r",
                                           "\x1b[0m",
                                           "\"",
                                           "\\",
                                           "\x7f",
                                           "\xc3\xa9",
                                           "\xe2\x82\xac",
                                           "\xf0\x9f\x98\x80",
                                           "\xc2\x85",
                                           "\xc2\xa0",
                                           "\x80",
                                           "\xff",
                                           "\xe2\x82",
                                           "\xed\xa0\x80",
                                           "\xc0\xaf",
                                           "\xf4\x90\x80\x80",
                                           std::string(1, '\0'),
                                           "0123456789abcdef"};
  for (int round = 0; round < 3000; ++round) {
    std::string text;
    const int n = static_cast<int>(rng() % 24);
    for (int i = 0; i < n; ++i) text += pieces[rng() % pieces.size()];
    std::string fast_text, fast_json;
    AppendEscapedText(fast_text, text);
    AppendJsonString(fast_json, text);
    ASSERT_EQ(fast_text, ReferenceEscape(text, false)) << round;
    ASSERT_EQ(fast_json, "\"" + ReferenceEscape(text, true) + "\"") << round;
  }
}

TEST(FormatTest, EveryEventIsOneLineInBothLayouts) {
  std::string hostile;
  for (int c = 0; c < 256; ++c) hostile += static_cast<char>(c);
  const KeyValue ctx[] = {{hostile, hostile}};
  Event e;
  e.logger = hostile;
  e.event_type = hostile;
  e.message = hostile;
  e.thread = hostile;
  e.contexts = ctx;
  e.cause = hostile;
  for (const std::string& line : {Text(e), Json(e)}) {
    EXPECT_EQ(std::count(line.begin(), line.end(), '\n'), 1);
    EXPECT_EQ(line.back(), '\n');
    EXPECT_EQ(line.find('\r'), std::string::npos);
    EXPECT_EQ(line.find('\0'), std::string::npos);
  }
  // JSON stays valid JSON and carries the text (invalid bytes replaced).
  auto j = nlohmann::json::parse(Json(e));
  std::string expected;
  for (int c = 0; c < 256; ++c) {
    if (c < 0x80) {
      expected += static_cast<char>(c);
    } else {
      expected += "\xEF\xBF\xBD";  // lone high bytes are never well-formed
    }
  }
  EXPECT_EQ(j["message"].get<std::string>(), expected);
  EXPECT_EQ(j["contexts"][expected].get<std::string>(), expected);
  EXPECT_EQ(j["cause"]["message"].get<std::string>(), expected);
}

TEST(FormatTest, VeryLongLineStaysWholeAndSingle) {
  std::string message;
  for (int i = 0; i < 64 * 1024 / 64; ++i) message += std::string(63, 'x') + "\n";
  ASSERT_EQ(message.size(), 64u * 1024);
  Event e;
  e.logger = "C";
  e.message = message;
  const std::string text = Text(e);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1);
  const std::string prefix = "2020-12-31T23:59:59.120Z [INFO] (main) C: ";
  // Every newline became the two characters "\n".
  EXPECT_EQ(text.size(), prefix.size() + message.size() + 1024 + std::string(". {}\n").size());
  const std::string json = Json(e);
  EXPECT_EQ(std::count(json.begin(), json.end(), '\n'), 1);
  EXPECT_EQ(nlohmann::json::parse(json)["message"].get<std::string>(), message);
}

TEST(FormatTest, ParsesLevelAndFormatNames) {
  EXPECT_EQ(*ParseLevel("debug"), Level::kDebug);
  EXPECT_EQ(*ParseLevel("WARN"), Level::kWarn);
  EXPECT_FALSE(ParseLevel("FATAL"));
  EXPECT_FALSE(ParseLevel("WARNING"));
  EXPECT_EQ(*ParseFormat("json"), Format::kJson);
  EXPECT_EQ(*ParseFormat("TEXT"), Format::kText);
  EXPECT_FALSE(ParseFormat("xml"));
  EXPECT_STREQ(ToString(Level::kTrace), "TRACE");
}

}  // namespace
}  // namespace lichen::logs
