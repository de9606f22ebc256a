// GPTQ's MoE steps in several Hessian passes (issue 21 point 3): the passes after the first
// replay the MoE input and routing recorded by the step's first forward (MoePasses::kReplay)
// instead of rerunning the block forward (kForward, the reference). The Hessian sums must be the
// same bit for bit, so every code, scale, zero and dequantized weight must be equal, and so
// must the next input. Run on the MoE fixtures (hidden 32, 4–8 experts; shared experts, sparsemixer
// routing in phimoe, the routing weight on the expert input in llama4_text, linear attention in
// qwen3_next) with a Hessian budget of one set per pass, several micro-batches and padding in
// the last sample (the shared expert's Hessians mask it).
#include <gtest/gtest.h>

#include "io/model/model_config.h"
#include "io/model/model_weights.h"
#include "io/safetensors/tensor.h"
#include "rank/arch_reference.h"
#include "rank/model/block.h"
#include "rank/quant/block_quant.h"
#include "test_paths.h"

namespace {

using namespace sq;

const rank::KeepFp keep_none = [](const std::string&) { return false; };

using GptqMoePasses = test::ArchReference;

// --q-group-size 8 divides every fixture's widths; act order exercises the permuted path too.
rank::GptqSettings settings(bool act_order) {
  rank::GptqSettings st;
  st.scheme.bits = 4;
  st.scheme.group_size = 8;
  st.scheme.act_order = act_order;
  st.micro_batch = 1;     // one micro-batch per sample: sums over several pieces
  st.hessian_budget = 1;  // 1 byte: one set per pass
  return st;
}

void expect_same(const rank::BlockQuantResult& a, const rank::BlockQuantResult& b) {
  EXPECT_EQ(a.notes, b.notes);
  ASSERT_EQ(a.quantized.size(), b.quantized.size());
  for (const auto& [name, qa] : a.quantized) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(b.quantized.count(name));
    const auto& qb = b.quantized.at(name);
    EXPECT_TRUE(at::equal(qa.codes, qb.codes));
    EXPECT_TRUE(at::equal(qa.scales, qb.scales));
    EXPECT_TRUE(at::equal(qa.zeros, qb.zeros));
    EXPECT_TRUE(at::equal(qa.dequant, qb.dequant));
    EXPECT_EQ(qa.g_idx.defined(), qb.g_idx.defined());
    if (qa.g_idx.defined()) EXPECT_TRUE(at::equal(qa.g_idx, qb.g_idx));
    EXPECT_EQ(qa.stats.error, qb.stats.error);
    EXPECT_EQ(qa.stats.rtn_fallback, qb.stats.rtn_fallback);
  }
  ASSERT_TRUE(a.next_input.defined() && b.next_input.defined());
  EXPECT_TRUE(at::equal(a.next_input, b.next_input));
}

TEST_P(GptqMoePasses, ReplayedPassesAreBitIdenticalToForwardPasses) {
  const auto cfg = io::load_model_config(dir_);
  io::ModelWeights w(dir_);
  int replayed_blocks = 0;
  for (int64_t i = 0; i < cfg.num_hidden_layers; ++i) {
    // One set per pass (several passes per MoE step), or every step in one pass (the down step
    // still replays the gate/up step's record).
    for (uint64_t budget : {uint64_t{1}, uint64_t{1} << 30}) {
      for (bool act_order : {false, true}) {
        SCOPED_TRACE("block " + std::to_string(i) + " budget " + std::to_string(budget) +
                     (act_order ? " act order" : ""));
        const at::Tensor x = input(i);
        // Padding at the end of the last sample: the shared expert's Hessians leave it out.
        at::Tensor mask = at::ones({x.size(0), x.size(1)}, at::kBool);
        mask[x.size(0) - 1].slice(0, x.size(1) / 2).fill_(false);
        rank::BlockQuantResult r[2];
        for (int k = 0; k < 2; ++k) {
          rank::GptqSettings st = settings(act_order);
          st.hessian_budget = budget;
          st.moe_passes = k ? rank::MoePasses::kReplay : rank::MoePasses::kForward;
          rank::Block b(w, cfg, i, at::kCPU, at::kFloat);
          r[k] = rank::gptq_quantize_block(b, x, mask, cfg, w, st, keep_none);
        }
        // The reference never replays; the new path replays exactly in MoE blocks (at least
        // the down step, after the gate/up step's forward).
        EXPECT_FALSE(r[0].phase_seconds.count("gptq moe replay + hessian"));
        const bool moe = rank::Block(w, cfg, i, at::kCPU, at::kFloat).router_name() != "";
        EXPECT_EQ(r[1].phase_seconds.count("gptq moe replay + hessian"), moe ? 1u : 0u);
        replayed_blocks += moe && !act_order && budget == 1;
        expect_same(r[0], r[1]);
      }
    }
  }
  EXPECT_GT(replayed_blocks, 0) << "no MoE block: the test compares nothing";
}

// The replayed passes also match one pass holding every Hessian (the default budget): passes
// change no result, replayed or not.
TEST_P(GptqMoePasses, ReplayedPassesMatchOnePass) {
  const auto cfg = io::load_model_config(dir_);
  io::ModelWeights w(dir_);
  for (int64_t i = 0; i < cfg.num_hidden_layers; ++i) {
    SCOPED_TRACE("block " + std::to_string(i));
    rank::BlockQuantResult r[2];
    for (int k = 0; k < 2; ++k) {
      rank::GptqSettings st = settings(false);
      st.hessian_budget = k ? 1 : uint64_t{1} << 30;
      rank::Block b(w, cfg, i, at::kCPU, at::kFloat);
      r[k] = rank::gptq_quantize_block(b, input(i), at::Tensor(), cfg, w, st, keep_none);
    }
    // Notes differ only by the passes line of the multi-pass run.
    for (const auto& n : r[1].notes)
      if (n.find(" passes (budget ") == std::string::npos)
        EXPECT_NE(std::find(r[0].notes.begin(), r[0].notes.end(), n), r[0].notes.end()) << n;
    r[1].notes = r[0].notes;
    expect_same(r[0], r[1]);
  }
}

INSTANTIATE_TEST_SUITE_P(MoeFixtures, GptqMoePasses,
                         ::testing::ValuesIn(test::kMoeFixtures),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
