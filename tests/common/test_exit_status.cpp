// write_exit_status (common/exit_status.h): which process writes the file, and what it holds.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "common/exit_status.h"
#include "test_paths.h"

namespace sq {
namespace {

const char* const kRankVars[] = {"PMIX_RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK", "SLURM_PROCID"};

std::string read_all(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Sets and restores the variables the function reads.
class ExitStatus : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* v : kRankVars) unsetenv(v);
    path_ = dir_ / "status";
    setenv("SHARDQUANT_STATUS_FILE", path_.c_str(), 1);
  }
  void TearDown() override {
    for (const char* v : kRankVars) unsetenv(v);
    unsetenv("SHARDQUANT_STATUS_FILE");
  }
  test::TempDir dir_;
  std::string path_;
};

TEST_F(ExitStatus, WithoutLauncherTheProcessWritesItsCode) {
  write_exit_status(143);
  EXPECT_EQ(read_all(path_), "143\n");
  EXPECT_FALSE(std::filesystem::exists(path_ + ".tmp"));
  write_exit_status(0);  // a later write replaces the earlier one
  EXPECT_EQ(read_all(path_), "0\n");
}

TEST_F(ExitStatus, OnlyRankZeroWritesUnderEachLauncher) {
  for (const char* v : kRankVars) {
    setenv(v, "1", 1);
    write_exit_status(2);
    EXPECT_FALSE(std::filesystem::exists(path_)) << v << "=1 wrote the file";
    setenv(v, "0", 1);
    write_exit_status(2);
    EXPECT_EQ(read_all(path_), "2\n") << v << "=0";
    std::filesystem::remove(path_);
    unsetenv(v);
  }
}

TEST_F(ExitStatus, UnsetOrUnwritableIsNotAnError) {
  unsetenv("SHARDQUANT_STATUS_FILE");
  write_exit_status(3);
  EXPECT_FALSE(std::filesystem::exists(path_));
  setenv("SHARDQUANT_STATUS_FILE", (dir_ / "no-such-dir/status").c_str(), 1);
  testing::internal::CaptureStderr();
  write_exit_status(3);
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("could not write the exit status to"), std::string::npos) << err;
}

}  // namespace
}  // namespace sq
