// A rank that dies mid-run (issue 24 point 4): SIGKILLed at its block step (SHARDQUANT_FAULT
// mode=kill) while the other ranks wait in a collective for its activations or reductions.
// Every other rank must end non-zero within --comm-timeout, the job's output must name the dead
// rank, and no final output directory may appear. Skipped (not passed) without mpirun.
#include <gtest/gtest.h>

#include <filesystem>

#include "dist/dist_util.h"

namespace {

namespace fs = std::filesystem;
using namespace sq::test::dist;

class DistFaults : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    if (!have_mpirun()) GTEST_SKIP() << "mpirun not found";
    if (!sq::test::have_shared("models/house-llama-13m"))
      GTEST_SKIP() << "house model not in " << sq::test::shared_dir();
  }
  sq::test::TempDir tmp_;
};

TEST_P(DistFaults, RankKilledMidCollectiveEndsEveryRankNamingIt) {
  const int timeout = 20;
  const std::string out = tmp_ / "out";
  const auto l =
      quantize(3,
               "--model_path " + sq::test::shared("models/house-llama-13m") + " --output_dir " +
                   out + " --calib-size 4 --seq_len 64 --q-group-size 64 --quiet " + GetParam() +
                   " --comm-timeout " + std::to_string(timeout),
               "rank=1,step=solve_block,mode=kill", 200);
  EXPECT_NE(l.rc, 0) << l.output;
  // Start-up and the plan take a few seconds; the others must not wait past the timeout.
  EXPECT_LT(l.seconds, timeout + 40) << l.output;
  // mpirun (or the surviving ranks' timeout) names rank 1.
  const bool named = l.output.find("rank 1") != std::string::npos;
  EXPECT_TRUE(named) << l.output;
  EXPECT_NE(l.output.find("signal 9"), std::string::npos) << l.output;
  EXPECT_FALSE(fs::exists(out)) << "a failed run must not commit its output";
}

INSTANTIATE_TEST_SUITE_P(Modes, DistFaults,
                         ::testing::Values("--awq --parallel blocks", "--gptq --parallel data"),
                         [](const auto& info) {
                           return std::string(info.param).find("blocks") != std::string::npos
                                      ? std::string("blocks")
                                      : std::string("data");
                         });

}  // namespace
