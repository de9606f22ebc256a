#include <gtest/gtest.h>

#include "common/crash_report.h"

int main(int argc, char** argv) {
  // A crashing test prints its stack (there is no debugger on the GPU machine).
  sq::install_crash_report(argv[0]);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
