#include "recipe/source_tree.h"

#include <gtest/gtest.h>

namespace lichen::recipe {
namespace {

TEST(SourceTree, YamlScalarsFollowTheCoreSchema) {
  auto t = ParseSource(
      "a: 2020-01-25\nb: '900'\nc: 900\nd: true\ne: ~\nf: 1.5\ng: 'true'\nh: 0x1f\ni: yes\n",
      SourceFormat::kYaml);
  ASSERT_TRUE(t) << t.error().message;
  EXPECT_EQ(t->root["a"], "2020-01-25");  // a date-like plain scalar stays text
  EXPECT_EQ(t->root["b"], "900");
  EXPECT_EQ(t->root["c"], 900);
  EXPECT_EQ(t->root["d"], true);
  EXPECT_TRUE(t->root["e"].is_null());
  EXPECT_DOUBLE_EQ(t->root["f"].get<double>(), 1.5);
  EXPECT_EQ(t->root["g"], "true");
  EXPECT_EQ(t->root["h"], 31);
  EXPECT_EQ(t->root["i"], "yes");  // YAML 1.1 booleans are text in 1.2
}

TEST(SourceTree, YamlKeepsKeyOrderAndLocations) {
  auto t = ParseSource("z: 1\na:\n  - x: 1\n    y: 2\n", SourceFormat::kYaml);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->root.begin().key(), "z");
  EXPECT_EQ(t->LocationOf("a[0].y").line, 4);
  EXPECT_EQ(t->LocationOf("a[0].y").column, 5);
}

TEST(SourceTree, JsonIsStrictAndHasLocations) {
  auto bad = ParseSource("{\"a\": 1\n \"b\": 2}", SourceFormat::kJson);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("not valid JSON: 2:"), std::string::npos)
      << bad.error().message;

  const char* text = "{\n  \"a\": {\n    \"b\": \"x\"\n  }\n}";
  auto good = ParseSource(text, SourceFormat::kJson);
  ASSERT_TRUE(good);
  EXPECT_EQ(good->LocationOf("a.b").line, 0);  // not computed until asked for
  AddJsonLocations(text, &*good);
  EXPECT_EQ(good->LocationOf("a.b").line, 3);
  EXPECT_EQ(good->NearestLocation("a.b.c[2]").line, 3);
}

TEST(SourceTree, YamlErrorsCarryLineAndColumn) {
  auto bad = ParseSource("a:\n  - b: 1\n  c: 2\n", SourceFormat::kYaml);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message.rfind("not valid YAML: 3:", 0), 0u) << bad.error().message;
}

TEST(SourceTree, DuplicateKeysWarn) {
  auto t = ParseSource("a: 1\na: 2\n", SourceFormat::kYaml);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->root["a"], 2);
  ASSERT_EQ(t->warnings.size(), 1u);
}

TEST(SourceTree, DeepNestingIsRefusedNotRecursedInto) {
  std::string deep(5000, '[');
  deep += std::string(5000, ']');
  EXPECT_FALSE(ParseSource(deep, SourceFormat::kJson));
  EXPECT_FALSE(ParseSource(deep, SourceFormat::kYaml));
}

TEST(SourceTree, ComplexKeysAreRejected) {
  auto t = ParseSource("ComponentName: {{App}}\n", SourceFormat::kYaml);
  ASSERT_FALSE(t);
  EXPECT_NE(t.error().message.find("mapping keys"), std::string::npos) << t.error().message;
}

TEST(SourceTree, InvalidUtf8IsRefusedWithItsPosition) {
  auto t = ParseSource("a: 1\nb: \"x\xff\"\n", SourceFormat::kYaml);
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().message.rfind("not valid YAML: 2:6: ", 0), 0u) << t.error().message;
  EXPECT_FALSE(ParseSource("{\"a\": \"\xc0\xaf\"}", SourceFormat::kJson));
  EXPECT_TRUE(ParseSource("a: \"h\xc3\xa9\"\n", SourceFormat::kYaml));
  // An escape can also produce a lone surrogate, which is not UTF-8 either.
  EXPECT_FALSE(ParseSource("a: \"\\udc00\"\n", SourceFormat::kYaml));
}

TEST(SourceTree, HugeJsonNumbersAreErrorsNotCrashes) {
  auto t = ParseSource("{\"a\": 55555500000000E000000000011011968431394943}", SourceFormat::kJson);
  ASSERT_FALSE(t);
  EXPECT_NE(t.error().message.find("not valid JSON"), std::string::npos) << t.error().message;
}

TEST(SourceTree, FormatComesFromTheExtension) {
  EXPECT_EQ(FormatForPath("a/b/recipe.JSON"), SourceFormat::kJson);
  EXPECT_EQ(FormatForPath("recipe.yml"), SourceFormat::kYaml);
  EXPECT_EQ(FormatForPath("recipe"), SourceFormat::kYaml);
}

}  // namespace
}  // namespace lichen::recipe
