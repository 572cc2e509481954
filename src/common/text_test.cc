#include "common/text.h"

#include <gtest/gtest.h>

namespace lichen::text {
namespace {

TEST(Text, FoldsAndTrimsAsciiOnly) {
  EXPECT_EQ(Lower("Content-Length: ABC"), "content-length: abc");
  EXPECT_EQ(Lower("\xC3\x89t\xC3\xA9"), "\xC3\x89t\xC3\xA9");  // UTF-8 bytes stay as they are
  EXPECT_EQ(Trim(" \t value \r\n"), "value");
  EXPECT_EQ(Trim(" \t\r\n"), "");
  EXPECT_EQ(Trim(""), "");
}

TEST(Text, ComparesIgnoringCase) {
  EXPECT_TRUE(EqualsIgnoreCase("Transfer-Encoding", "transfer-encoding"));
  EXPECT_FALSE(EqualsIgnoreCase("Transfer-Encoding", "transfer-encodin"));
  EXPECT_TRUE(StartsWithIgnoreCase("DOCKER:busybox", "docker:"));
  EXPECT_FALSE(StartsWithIgnoreCase("dock", "docker:"));
  EXPECT_TRUE(ContainsIgnoreCase("gzip, Chunked", "chunked"));
  EXPECT_FALSE(ContainsIgnoreCase("gzip", "chunked"));
  EXPECT_TRUE(ContainsIgnoreCase("anything", ""));
  EXPECT_TRUE(Contains("no such image: x", "no such image"));
  EXPECT_FALSE(Contains("No such image: x", "no such image"));
}

}  // namespace
}  // namespace lichen::text
