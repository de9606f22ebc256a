// write_exit_status (common/exit_status.h): which file each process writes, and what it holds.
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

size_t files_in(const std::string& dir) {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir)) ++n;
  return n;
}

// Sets and restores the variables the function reads.
class ExitStatus : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* v : kRankVars) unsetenv(v);
    setenv("SHARDQUANT_STATUS_DIR", dir_.path().c_str(), 1);
  }
  void TearDown() override {
    for (const char* v : kRankVars) unsetenv(v);
    unsetenv("SHARDQUANT_STATUS_DIR");
  }
  test::TempDir dir_;
};

TEST_F(ExitStatus, WithoutLauncherTheProcessIsRankZero) {
  write_exit_status(143);
  EXPECT_EQ(read_all(dir_ / "rank-0.status"), "143\n");
  EXPECT_EQ(files_in(dir_.path()), 1u);  // no temporary file left
  write_exit_status(0);                  // a later write replaces the earlier one
  EXPECT_EQ(read_all(dir_ / "rank-0.status"), "0\n");
}

TEST_F(ExitStatus, EachLauncherRankWritesItsOwnFile) {
  int code = 2;
  for (const char* v : kRankVars) {
    setenv(v, "3", 1);
    write_exit_status(code);
    EXPECT_EQ(read_all(dir_ / "rank-3.status"), std::to_string(code) + "\n") << v;
    unsetenv(v);
    ++code;
  }
  EXPECT_FALSE(std::filesystem::exists(dir_ / "rank-0.status"));
}

TEST_F(ExitStatus, UnsetOrUnwritableIsNotAnError) {
  unsetenv("SHARDQUANT_STATUS_DIR");
  write_exit_status(3);
  EXPECT_EQ(files_in(dir_.path()), 0u);
  setenv("SHARDQUANT_STATUS_DIR", (dir_ / "no-such-dir").c_str(), 1);
  testing::internal::CaptureStderr();
  write_exit_status(3);
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("could not write the exit status to"), std::string::npos) << err;
}

}  // namespace
}  // namespace sq
