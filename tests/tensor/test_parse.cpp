// gs::parse_double / parse_int64: a value only for text that is one number, blanks around it aside.
#include <gtest/gtest.h>

#include <cmath>

#include "tensor/parse.h"

namespace gs {
namespace {

TEST(Parse, DoubleTakesTheWholeTextOnly) {
  EXPECT_EQ(parse_double("2.5"), 2.5);
  EXPECT_EQ(parse_double(" 1e-3\t"), 1e-3);
  EXPECT_EQ(parse_double("-4"), -4.0);
  for (const char* bad : {"", " ", "3x", "x3", "1,5", "1 2", "--1", "0x10"}) EXPECT_FALSE(parse_double(bad)) << bad;
  // inf and nan are numbers to from_chars: callers that need finite values check.
  ASSERT_TRUE(parse_double("nan"));
  EXPECT_TRUE(std::isnan(*parse_double("nan")));
}

TEST(Parse, Int64TakesDigitsOnly) {
  EXPECT_EQ(parse_int64("42"), 42);
  EXPECT_EQ(parse_int64(" -7 "), -7);
  EXPECT_EQ(parse_int64("9223372036854775807"), INT64_MAX);
  for (const char* bad : {"", "1.5", "12e3", "7x", "9223372036854775808", "+3"}) EXPECT_FALSE(parse_int64(bad)) << bad;
}

}  // namespace
}  // namespace gs
