// Features of the one pipeline under mpirun (issue 18 point 2): the OOM back-off (made testable
// on the CPU by --gpu-mem-limit) halves seq_len on every rank — in --parallel blocks with the FP
// stream (AWQ: each rank backs off on its first block), in the relay of quantized activations
// (GPTQ: rank 0 backs off, rank 1 receives its halved activations and keeps their seq_len) and in
// --parallel data (the ranks agree to halve together); a calibration error on rank 0 stops every
// rank at once; and a 2-rank summary
// has what a single process's has: per-block phases_s, solve_phases_s, the per-phase timings and
// the end table in rank 0's log.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "dist/dist_util.h"
#include "io/model/model_config.h"
#include "rank/worker/oom.h"

namespace {

namespace fs = std::filesystem;
using namespace sq::test::dist;
using sq::test::Launch;

constexpr int64_t kSeqLen = 512;

class DistPipeline : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have_mpirun()) GTEST_SKIP() << "mpirun not found";
    if (!sq::test::have_shared("models/house-llama-13m"))
      GTEST_SKIP() << "house model not in " << sq::test::shared_dir();
    if (!sq::test::have_shared("data/corpus/brown-train.txt")) GTEST_SKIP() << "no Brown corpus";
    model_ = sq::test::shared("models/house-llama-13m");
    corpus_ = sq::test::shared("data/corpus/brown-train.txt");
  }
  // "--model_path M --output_dir OUT --calib-file CORPUS --force-cpu"
  std::string base(const std::string& out) const {
    return "--model_path " + model_ + " --output_dir " + out + " --calib-file " + corpus_ +
           " --force-cpu ";
  }
  // The --gpu-mem-limit estimate of one block when `samples` samples of kSeqLen tokens are cut
  // to seq_len t (default micro-batch, fp32 on the CPU).
  uint64_t estimate(int64_t samples, int64_t t, bool awq) const {
    const auto cfg = sq::io::load_model_config(model_);
    return sq::rank::estimate_block_bytes(
        cfg, {samples * kSeqLen / t, t, std::max<int64_t>(1, 16384 / t), awq, at::kFloat});
  }
  // A limit between the estimates at seq_len 128 and 256 for `samples` samples per rank: every
  // rank backs off from 512 to 128.
  uint64_t limit_for_128(int64_t samples, bool awq) const {
    const uint64_t lo = estimate(samples, 128, awq), hi = estimate(samples, 256, awq);
    EXPECT_LT(lo, hi);
    return (lo + hi) / 2;
  }
  Launch run(int ranks, const std::string& out, const std::string& args, int64_t samples) {
    return quantize(ranks,
                    base(out) + "--calib-size " + std::to_string(samples) + " --seq_len " +
                        std::to_string(kSeqLen) + " " + args,
                    "", 300, 2);
  }
  std::string model_, corpus_;
  sq::test::TempDir tmp_;
};

// Lines of the launch's output that rank r logged and that contain `text`.
int rank_lines_with(const std::string& output, int r, const std::string& text) {
  std::istringstream in(output);
  std::string line;
  int hits = 0;
  const std::string tag = "[r" + std::to_string(r) + "/";  // "[r1/2]"
  while (std::getline(in, line))
    if (line.find(tag) != std::string::npos && line.find(text) != std::string::npos) ++hits;
  return hits;
}

nlohmann::json summary_of(const std::string& out) {
  std::ifstream in(out + "/shardquant_summary.json");
  EXPECT_TRUE(in) << out;
  return in ? nlohmann::json::parse(in) : nlohmann::json();
}

struct BackoffCase {
  const char* name;
  const char* args;
  bool awq;
  int64_t samples;           // --calib-size
  int64_t samples_per_rank;  // what each rank holds (data mode: its share)
  bool relay = false;        // rank 1 receives rank 0's halved activations: it retries nothing
};

class DistBackoff : public DistPipeline, public ::testing::WithParamInterface<BackoffCase> {};

TEST_P(DistBackoff, EveryRankHalvesSeqLenAndTheSummarySaysSo) {
  const BackoffCase& c = GetParam();
  const uint64_t limit = limit_for_128(c.samples_per_rank, c.awq);
  const std::string out = tmp_ / "out";
  const Launch l =
      run(2, out, std::string(c.args) + " --gpu-mem-limit " + std::to_string(limit), c.samples);
  ASSERT_EQ(l.rc, 0) << l.output;
  for (int r = 0; r < 2; ++r) {
    SCOPED_TRACE("rank " + std::to_string(r));
    if (c.relay && r == 1) {
      EXPECT_GE(rank_lines_with(l.output, r, "relay from rank 0 arrives at seq_len 128"), 1)
          << l.output;
    } else {
      EXPECT_GE(rank_lines_with(l.output, r, "retrying with seq_len 256"), 1) << l.output;
      EXPECT_GE(rank_lines_with(l.output, r, "retrying with seq_len 128"), 1) << l.output;
    }
    EXPECT_GE(rank_lines_with(l.output, r, "seq_len finally used: 128"), 1) << l.output;
  }
  const auto j = summary_of(out);
  EXPECT_EQ(j["calibration"]["seq_len_used"], 128) << j.dump(1);
  EXPECT_EQ(j["calibration"]["samples_used"], c.samples * 4) << j.dump(1);
  EXPECT_EQ(j["settings"]["seq_len_requested"], kSeqLen);
}

INSTANTIATE_TEST_SUITE_P(
    Modes, DistBackoff,
    ::testing::Values(
        BackoffCase{"awq_blocks_fp_stream", "--awq --n_grid 2 --parallel blocks", true, 2, 2},
        BackoffCase{"gptq_blocks_relay", "--gptq --parallel blocks", false, 2, 2, true},
        BackoffCase{"gptq_data", "--gptq --parallel data", false, 4, 2}),
    [](const auto& info) { return std::string(info.param.name); });

// A 2-rank summary has the single process's timing detail and end table.
TEST_F(DistPipeline, TwoRankSummaryHasPhasesAndTheEndTable) {
  const std::string out = tmp_ / "out";
  const Launch l = quantize(
      2, base(out) + "--calib-size 4 --seq_len 64 --awq --n_grid 2 --parallel blocks", "", 240, 2);
  ASSERT_EQ(l.rc, 0) << l.output;
  const auto j = summary_of(out);
  ASSERT_TRUE(j.contains("blocks")) << j.dump(1);
  ASSERT_FALSE(j["blocks"].empty());
  for (size_t i = 0; i < j["blocks"].size(); ++i) {
    const auto& b = j["blocks"][i];
    EXPECT_EQ(b["index"].get<size_t>(), i);
    ASSERT_TRUE(b.contains("phases_s")) << b.dump(1);
    EXPECT_FALSE(b["phases_s"].empty()) << b.dump(1);
    EXPECT_FALSE(b["linears"].empty()) << b.dump(1);
  }
  ASSERT_TRUE(j.contains("solve_phases_s")) << j.dump(1);
  EXPECT_FALSE(j["solve_phases_s"].empty());
  for (const char* phase : {"calibration", "quantize blocks", "block load", "quantization only",
                            "export", "write", "total"})
    EXPECT_TRUE(j["timings_s"].contains(phase)) << phase << "\n" << j["timings_s"].dump(1);
  EXPECT_EQ(j["distributed"]["ranks"].size(), 2u);
  // The end table (RunSummary::table) in rank 0's log, solve phases included.
  std::ifstream log(out + "/quantize.log");
  std::stringstream text;
  text << log.rdbuf();
  for (const char* line : {"summary", "quantization only", "mean error  (over blocks)",
                           "fallbacks to RTN: ", "calibration: 4 samples x seq_len 64"})
    EXPECT_NE(text.str().find(line), std::string::npos) << line << "\n" << text.str();
  for (auto it = j["solve_phases_s"].begin(); it != j["solve_phases_s"].end(); ++it)
    EXPECT_NE(text.str().find("    " + it.key()), std::string::npos) << it.key();
}

// A calibration error on rank 0 stops every rank at once with rank 0's message (the calibration is
// an agreed step), well before --comm-timeout.
TEST_F(DistPipeline, CalibrationErrorOnRankZeroFailsEveryRankAtOnce) {
  const std::string out = tmp_ / "out";
  const Launch l = quantize(2,
                            "--model_path " + model_ + " --output_dir " + out + " --calib-file " +
                                (tmp_ / "no-such-corpus.txt") +
                                " --force-cpu --calib-size 4 --seq_len 64 --comm-timeout 120",
                            "", 200, 2);
  EXPECT_NE(l.rc, 0) << l.output;
  EXPECT_LT(l.seconds, 60) << l.output;
  for (int r = 0; r < 2; ++r)
    EXPECT_GE(rank_lines_with(l.output, r, "rank 0 failed in step 'calibration'"), 1)
        << "rank " << r << "\n"
        << l.output;
  EXPECT_FALSE(fs::exists(out)) << "a failed run must not commit its output";
}

}  // namespace
