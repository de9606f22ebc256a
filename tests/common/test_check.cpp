// The check macro family (common/check.h): which error each macro throws and what it says.
#include <gtest/gtest.h>

#include <string>

#include "common/check.h"
#include "common/errors.h"

namespace sq {
namespace {

void check_or_require(bool from_input, int value) {
  SQ_CHECK_OR_REQUIRE(from_input, value < 3, "value " << value << " must be below 3");
}

TEST(Check, CheckOrRequireIsInputErrorForInputAndInternalErrorOtherwise) {
  EXPECT_NO_THROW(check_or_require(true, 2));
  EXPECT_NO_THROW(check_or_require(false, 2));
  try {
    check_or_require(true, 5);
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_STREQ(e.what(), "value 5 must be below 3");
  }
  try {
    check_or_require(false, 5);
    FAIL() << "no error";
  } catch (const InternalError& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind("value 5 must be below 3 [check `value < 3` failed at ", 0), 0u) << msg;
  }
}

}  // namespace
}  // namespace sq
