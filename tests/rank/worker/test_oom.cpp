// OOM-aware calibration: the sequence split, OOM detection, the back-off loop, and — through
// the built binary — --gpu-mem-limit forcing the back-off on the CPU with the final seq_len in
// the log, and a limit too small even at seq_len 64 failing with exit 3.
#include <c10/util/Exception.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli/run_binary.h"
#include "io/model/model_config.h"
#include "rank/worker/oom.h"
#include "test_paths.h"

namespace sq::rank {
namespace {

TEST(Oom, HalveSequencesKeepsTokensInOrder) {
  CalibActivations a{at::arange(2 * 8 * 3, at::kFloat).view({2, 8, 3}),
                     at::ones({2, 8}, at::kBool)};
  a.mask[1][7] = false;
  const auto before = a.x.clone();
  halve_sequences(a);
  ASSERT_EQ(a.x.sizes(), (at::IntArrayRef{4, 4, 3}));
  EXPECT_TRUE(at::equal(a.x.reshape({-1}), before.reshape({-1})));
  ASSERT_EQ(a.mask.sizes(), (at::IntArrayRef{4, 4}));
  EXPECT_FALSE(a.mask[3][3].item<bool>());
  EXPECT_EQ(a.mask.sum().item<int64_t>(), 15);
  // Odd lengths drop the last position; an undefined mask stays undefined.
  CalibActivations b{at::zeros({1, 5, 2}), at::Tensor()};
  halve_sequences(b);
  EXPECT_EQ(b.x.sizes(), (at::IntArrayRef{2, 2, 2}));
  EXPECT_FALSE(b.mask.defined());
}

TEST(Oom, DetectsCudaOomMessagesAndLimit) {
  EXPECT_TRUE(is_out_of_memory(MemoryLimitExceeded("x")));
  EXPECT_TRUE(is_out_of_memory(c10::Error(c10::SourceLocation{__func__, __FILE__, __LINE__},
                                          "CUDA out of memory. Tried to allocate 2.00 GiB")));
  EXPECT_FALSE(is_out_of_memory(
      c10::Error(c10::SourceLocation{__func__, __FILE__, __LINE__}, "shape mismatch")));
  EXPECT_FALSE(is_out_of_memory(BackendError("disk full")));
  EXPECT_FALSE(is_out_of_memory(std::runtime_error("out of memory")));  // not a c10 error
}

io::ModelConfig llama1b() {
  return io::parse_model_config(nlohmann::json{{"model_type", "llama"},
                                               {"hidden_size", 2048},
                                               {"intermediate_size", 8192},
                                               {"num_hidden_layers", 16},
                                               {"num_attention_heads", 32},
                                               {"num_key_value_heads", 8},
                                               {"vocab_size", 32000}},
                                "test");
}

TEST(Oom, EstimateShrinksWithSeqLenAtConstantTokens) {
  const auto cfg = llama1b();
  uint64_t prev = 0;
  for (int64_t t : {64, 128, 256, 512, 1024, 2048}) {
    MemoryEstimateInput in{128 * 2048 / t, t, 16384 / t, false, at::kBFloat16};
    const uint64_t b = estimate_block_bytes(cfg, in);
    EXPECT_GT(b, prev) << "seq_len " << t;
    prev = b;
  }
  // The fp32 attention scores of one micro-batch dominate growth: 4·B·heads·T² bytes.
  MemoryEstimateInput a{64, 2048, 8, true, at::kBFloat16}, b = a;
  b.seq_len = 1024;
  EXPECT_GE(estimate_block_bytes(llama1b(), a) - estimate_block_bytes(llama1b(), b),
            4ull * 8 * 32 * (2048ull * 2048 - 1024ull * 1024));
  EXPECT_NO_THROW(check_memory_limit(0, cfg, a, 0));
  EXPECT_THROW(check_memory_limit(1000, cfg, a, 0), MemoryLimitExceeded);
}

TEST(Oom, BackoffHalvesUntilItFitsThenStops) {
  CalibActivations a{at::zeros({2, 512, 4}), at::Tensor()};
  std::vector<std::pair<int64_t, int64_t>> halvings;
  int calls = 0;
  const int64_t used = with_seq_len_backoff<int64_t>(
      a, 3, at::kCPU,
      [&](const CalibActivations& c) -> int64_t {
        ++calls;
        if (c.seq_len() > 128) throw MemoryLimitExceeded("too big: out of memory");
        return c.seq_len();
      },
      [&](int64_t from, int64_t to, const std::string&) {
        halvings.push_back({from, to});
      });
  EXPECT_EQ(used, 128);
  EXPECT_EQ(calls, 3);
  ASSERT_EQ(halvings.size(), 2u);
  EXPECT_EQ(halvings[0], (std::pair<int64_t, int64_t>{512, 256}));
  EXPECT_EQ(a.samples(), 8);
  // Other errors pass through untouched.
  EXPECT_THROW(with_seq_len_backoff<int>(
                   a, 0, at::kCPU, [](const CalibActivations&) -> int { throw InputError("bad"); },
                   [](int64_t, int64_t, const std::string&) {}),
               InputError);
}

TEST(Oom, BackoffFailsBelowMinimum) {
  CalibActivations a{at::zeros({1, 256, 4}), at::Tensor()};
  try {
    with_seq_len_backoff<int>(
        a, 5, at::kCPU,
        [](const CalibActivations&) -> int { throw MemoryLimitExceeded("out of memory"); },
        [](int64_t, int64_t, const std::string&) {});
    FAIL() << "expected a BackendError";
  } catch (const MemoryLimitExceeded&) {
    FAIL() << "the final error must be a plain BackendError";
  } catch (const BackendError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("block 5"), std::string::npos) << m;
    EXPECT_NE(m.find("seq_len 64"), std::string::npos) << m;
    EXPECT_NE(m.find("minimum 64"), std::string::npos) << m;
  }
  EXPECT_EQ(a.seq_len(), 64);
}

// The real pipeline on the CPU: a limit between the estimates at seq_len 128 and 256 makes
// the run back off from 512 to 128 and say so; a limit below the seq_len-64 estimate fails.
class OomCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(test::binary())) GTEST_SKIP() << "shardquant not built";
    if (!test::have_shared("models/house-llama-13m")) GTEST_SKIP() << "house model absent";
    model_ = test::shared("models/house-llama-13m");
  }
  uint64_t estimate(int64_t t) const {
    const auto cfg = io::load_model_config(model_);
    return estimate_block_bytes(
        cfg, {kSamples * 512 / t, t, std::max<int64_t>(1, 16384 / t), true, at::kFloat});
  }
  test::RunResult run(uint64_t limit) {
    return test::run_shardquant({"--model_path", model_, "--output_dir", tmp_ / "out", "--awq",
                                 "--calib_size", std::to_string(kSamples), "--seq_len", "512",
                                 "--n_grid", "2", "--force_cpu", "--gpu-mem-limit",
                                 std::to_string(limit)});
  }
  static constexpr int64_t kSamples = 2;
  test::TempDir tmp_;
  std::string model_;
};

TEST_F(OomCli, MemLimitBacksOffAndLogsFinalSeqLen) {
  const uint64_t limit = (estimate(128) + estimate(256)) / 2;
  ASSERT_LT(estimate(128), limit);
  auto r = run(limit);
  ASSERT_EQ(r.code, 0) << r.all();
  EXPECT_NE(r.all().find("retrying with seq_len 256"), std::string::npos) << r.all();
  EXPECT_NE(r.all().find("seq_len finally used: 128"), std::string::npos) << r.all();
  std::ifstream in(tmp_ / "out/shardquant_summary.json");
  ASSERT_TRUE(in) << r.all();
  auto j = nlohmann::json::parse(in);
  EXPECT_EQ(j["calibration"]["seq_len_used"], 128);
  EXPECT_EQ(j["calibration"]["samples_used"], kSamples * 4);
}

TEST_F(OomCli, TooSmallLimitFailsWithExit3) {
  auto r = run(estimate(64) / 2);
  EXPECT_EQ(r.code, 3) << r.all();
  EXPECT_NE(r.all().find("below the minimum 64"), std::string::npos) << r.all();
  EXPECT_FALSE(std::filesystem::exists(tmp_ / "out"));
}

}  // namespace
}  // namespace sq::rank
