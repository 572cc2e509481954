#include "ipc/canonical_json.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>
#include <string>

namespace lichen::ipc {
namespace {

using Json = nlohmann::ordered_json;  // what the IPC server parses requests into

std::string Redump(const std::string& text) {
  return Json::parse(text).dump(-1, ' ', false, Json::error_handler_t::replace);
}

TEST(CanonicalJsonTest, AcceptsWhatDumpWrites) {
  for (const std::string text : {
           R"({})",
           R"([])",
           R"("")",
           R"(0)",
           R"(-1)",
           R"(123456789012345678)",
           R"(true)",
           R"(false)",
           R"(null)",
           R"({"a":1,"b":[1,2,{"c":null}],"d":"x\"y\\z\n\t\r\b\f"})",
           R"({"topic":"bench/t","publishMessage":{"jsonMessage":{"message":{"s":1,"t":2}}}})",
           R"([[[[]]],{},"~ DEL:)"
           "\x7f"
           R"("])",
       }) {
    EXPECT_TRUE(IsCanonicalJson(text)) << text;
    EXPECT_EQ(Redump(text), text);
  }
}

TEST(CanonicalJsonTest, RefusesWhatDumpWouldRewriteOrWhatIsNotJson) {
  for (const std::string text : {
           // dump() writes these differently
           R"({ "a":1})",
           R"({"a": 1})",
           R"([1, 2])",
           " 1",
           "1 ",
           R"(1.0)",
           R"(1e3)",
           R"(1E3)",
           R"(-0)",
           R"(01)",
           R"(1234567890123456789)",
           R"("\/")",
           R"("\u0041")",
           R"("é")",
           R"({"a":1,"a":2})",
           // not JSON at all
           "",
           "{",
           "}",
           R"({"a"})",
           R"({"a":})",
           R"({"a":1,})",
           R"([1,])",
           R"({a:1})",
           "nul",
           "tru",
           R"("abc)",
           "\"a\x01\"",
           R"("\x")",
           "-",
           "--1",
           "+1",
           R"({"a":1}x)",
           "[]]",
           R"({"a":1}{})",
           "'a'",
       }) {
    EXPECT_FALSE(IsCanonicalJson(text)) << text;
  }
  EXPECT_FALSE(IsCanonicalJsonObject("[]"));
  EXPECT_FALSE(IsCanonicalJsonObject(""));
  EXPECT_TRUE(IsCanonicalJsonObject("{}"));
}

TEST(CanonicalJsonTest, BoundsDepthAndMembers) {
  EXPECT_TRUE(IsCanonicalJson(std::string(128, '[') + std::string(128, ']')));
  EXPECT_FALSE(IsCanonicalJson(std::string(129, '[') + std::string(129, ']')));
  std::string wide = "{";
  for (int i = 0; i < 33; ++i) wide += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":" + "0";
  wide += "}";
  EXPECT_FALSE(IsCanonicalJson(wide));  // valid, and left to the parser
  EXPECT_EQ(Redump(wide), wide);
}

TEST(CanonicalJsonTest, FindsMembersOfAnObject) {
  const std::string text = R"({"a":{"b":[1,"}"]},"topic":"t/1","n":null,"s":"x,y"})";
  ASSERT_TRUE(IsCanonicalJsonObject(text));
  EXPECT_EQ(CanonicalMember(text, "a"), R"({"b":[1,"}"]})");
  EXPECT_EQ(CanonicalMember(text, "topic"), R"("t/1")");
  EXPECT_EQ(CanonicalMember(text, "n"), "null");
  EXPECT_EQ(CanonicalMember(text, "s"), R"("x,y")");
  EXPECT_EQ(CanonicalMember(text, "b"), std::nullopt);  // nested members are not members
  EXPECT_EQ(CanonicalMember("{}", "a"), std::nullopt);
}

// Random JSON-ish text, compact or not: whatever is accepted must survive parse and dump
// byte for byte, and be valid JSON.
class Generator {
 public:
  explicit Generator(unsigned seed) : rng_(seed) {}

  std::string Value(int depth) {
    switch (Pick(depth > 4 ? 5 : 7)) {
      case 0:
        return Number();
      case 1:
        return String();
      case 2:
        return std::vector<std::string>{"true", "false", "null"}[Pick(3)];
      case 3:
        return Number();
      case 4:
        return String();
      case 5: {
        std::string out = "[";
        for (int i = 0, n = Pick(4); i < n; ++i) out += (i ? Comma() : "") + Value(depth + 1);
        return out + "]";
      }
      default: {
        std::string out = "{";
        for (int i = 0, n = Pick(4); i < n; ++i) {
          out += (i ? Comma() : "") + Key() + (Pick(10) == 0 ? ": " : ":") + Value(depth + 1);
        }
        return out + "}";
      }
    }
  }

 private:
  int Pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }
  std::string Comma() { return Pick(10) == 0 ? ", " : ","; }
  std::string Key() { return "\"" + std::string(1, static_cast<char>('a' + Pick(3))) + "\""; }
  std::string Number() {
    static const std::vector<std::string> kNumbers = {"0",
                                                      "-0",
                                                      "7",
                                                      "-12",
                                                      "00",
                                                      "1.5",
                                                      "2e3",
                                                      "1.0",
                                                      "999999999999999999",
                                                      "9999999999999999999",
                                                      "18446744073709551616",
                                                      "-9223372036854775808",
                                                      "1E2",
                                                      "0.0"};
    return kNumbers[Pick(static_cast<int>(kNumbers.size()))];
  }
  std::string String() {
    static const std::vector<std::string> kPieces = {
        "a",        " ", "\\\"", "\\\\", "\\n", "\\t", "\\/", "\\u0041", "\\u00e9",
        "\xc3\xa9", "/", "\x7f", "\\b",  "\\f", "\\r", "#",   "+",       "\xff"};
    std::string out = "\"";
    for (int i = 0, n = Pick(5); i < n; ++i) out += kPieces[Pick(static_cast<int>(kPieces.size()))];
    return out + "\"";
  }

  std::mt19937 rng_;
};

TEST(CanonicalJsonTest, AcceptedTextSurvivesParseAndDump) {
  Generator generator(42);
  int accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    const std::string text = generator.Value(0);
    if (!IsCanonicalJson(text)) continue;
    ++accepted;
    const Json parsed = Json::parse(text, nullptr, /*allow_exceptions=*/false);
    ASSERT_FALSE(parsed.is_discarded()) << text;
    ASSERT_EQ(parsed.dump(-1, ' ', false, Json::error_handler_t::replace), text);
    if (parsed.is_object()) {
      for (const auto& [key, value] : parsed.items()) {
        ASSERT_EQ(CanonicalMember(text, key), value.dump()) << text;
      }
    }
  }
  EXPECT_GT(accepted, 1000);  // the generator does produce canonical text
}

}  // namespace
}  // namespace lichen::ipc
