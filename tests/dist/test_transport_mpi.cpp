// The MPI transport under real mpirun (2–4 ranks, oversubscribed, as root): the contract, the
// timeout, and failure agreement with a fault injected through SHARDQUANT_FAULT. Every child is
// sq_transport_probe (tests/dist/tools); see its header for the scenarios.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "dist/shell.h"
#include "test_paths.h"

namespace {

using sq::test::Launch;

bool have_mpirun() {
  return std::system("command -v mpirun >/dev/null 2>&1") == 0;
}

// Runs the probe under mpirun; `timeout -s KILL` guarantees that a hang fails the test instead
// of blocking the suite.
Launch launch(int ranks, const std::string& args, const std::string& fault = "") {
  std::string cmd =
      "timeout -s KILL 100 mpirun --oversubscribe --allow-run-as-root --bind-to none "
      "--mca btl self,vader -n " +
      std::to_string(ranks);
  if (!fault.empty()) cmd += " -x SHARDQUANT_FAULT='" + fault + "'";
  cmd += " " + sq::test::tool("transport_probe") + " " + args;
  return sq::test::run_shell(cmd);
}

int count(const std::string& text, const std::string& needle) {
  int k = 0;
  for (size_t p = text.find(needle); p != std::string::npos; p = text.find(needle, p + 1)) ++k;
  return k;
}

class MpiTransport : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have_mpirun()) GTEST_SKIP() << "mpirun not found";
    if (std::system(("test -x " + sq::test::tool("transport_probe")).c_str()) != 0)
      GTEST_SKIP() << "sq_transport_probe not built";
  }
};

class MpiContract : public MpiTransport, public ::testing::WithParamInterface<int> {};

TEST_P(MpiContract, EveryOperationOnEveryRank) {
  const int n = GetParam();
  const Launch l = launch(n, "contract 60");
  EXPECT_EQ(l.rc, 0) << l.output;
  for (int r = 0; r < n; ++r)
    EXPECT_EQ(count(l.output, "rank " + std::to_string(r) + "/" + std::to_string(n) + ": PASS"), 1)
        << l.output;
}

INSTANTIATE_TEST_SUITE_P(Ranks, MpiContract, ::testing::Values(2, 3, 4));

// --parallel data's owner broadcast: every rank's linear arrives bit for bit on every rank.
TEST_F(MpiTransport, OwnerSharesQuantizedLinearBitForBit) {
  const int n = 3;
  const Launch l = launch(n, "share 60");
  EXPECT_EQ(l.rc, 0) << l.output;
  for (int r = 0; r < n; ++r)
    EXPECT_EQ(count(l.output, "rank " + std::to_string(r) + "/3: SHARE PASS"), 1) << l.output;
}

TEST_F(MpiTransport, SilentRankMakesOthersTimeOutAndAbort) {
  // Rank 2 sleeps 60 s instead of joining; the 2 s deadline must fire and MPI_Abort kill it.
  const Launch l = launch(3, "timeout 2");
  EXPECT_NE(l.rc, 0) << l.output;
  EXPECT_LT(l.seconds, 40) << "the job was not aborted after the timeout:\n" << l.output;
  EXPECT_NE(l.output.find("mpi rank 0/3: all_reduce_sum (all ranks) timed out after"),
            std::string::npos)
      << l.output;
  EXPECT_NE(l.output.find("waiting for rank 2"), std::string::npos) << l.output;
  EXPECT_NE(l.output.find("rank 2 did not answer within --comm-timeout 2 s (dead or hung)"),
            std::string::npos)
      << l.output;
  // Rank 2 sleeps, it is not dead: nobody may claim otherwise.
  EXPECT_EQ(l.output.find(") died"), std::string::npos) << l.output;
}

TEST_F(MpiTransport, ThrowingRankFailsEveryRankWithItsMessage) {
  const Launch l = launch(3, "fault 30", "rank=1,step=after_plan");
  EXPECT_NE(l.rc, 0) << l.output;
  EXPECT_LT(l.seconds, 40) << l.output;
  // All three ranks report the same agreed error, naming rank 1 and the injected fault.
  const std::string agreed =
      "rank 1 failed in step 'plan': fault injected by SHARDQUANT_FAULT on rank 1 at step "
      "'after_plan'";
  EXPECT_EQ(count(l.output, agreed), 3) << l.output;
  for (int r = 0; r < 3; ++r)
    EXPECT_NE(l.output.find("[r" + std::to_string(r) + "] error (exit 4): " + agreed),
              std::string::npos)
        << l.output;
  EXPECT_EQ(count(l.output, "step plan ok"), 0) << l.output;
}

TEST_F(MpiTransport, HangingRankIsNamedByTheTimeout) {
  const Launch l = launch(2, "fault 2", "rank=1,step=before_plan,mode=hang");
  EXPECT_NE(l.rc, 0) << l.output;
  EXPECT_LT(l.seconds, 40) << l.output;
  EXPECT_NE(l.output.find("mpi rank 0/2: gather_bytes (root 0) timed out"), std::string::npos)
      << l.output;
  EXPECT_NE(l.output.find("waiting for rank 1"), std::string::npos) << l.output;
}

TEST_F(MpiTransport, NoFaultMeansEveryRankSucceeds) {
  const Launch l = launch(2, "fault 30");
  EXPECT_EQ(l.rc, 0) << l.output;
  EXPECT_EQ(count(l.output, "step plan ok"), 2) << l.output;
}

}  // namespace
