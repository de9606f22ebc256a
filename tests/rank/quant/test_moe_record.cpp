// MoeRecorder (rank/quant/moe_record.h): Hessian sums fed by replaying a recorded forward's MoE
// input and routing equal, bit for bit (at::equal on the float64 sums, same token counts), those a
// block forward feeds — for every MoE set of the GPTQ steps at once, while the recording forward
// captured one set only and stopped early, and after the experts' gate/up weights changed
// between recording and replay (as GPTQ's true-sequential steps change them). Several
// micro-batches and padding in the last sample (the shared expert's Hessians mask it).
#include <gtest/gtest.h>

#include "io/model/model_config.h"
#include "io/model/model_weights.h"
#include "io/safetensors/tensor.h"
#include "rank/arch_reference.h"
#include "rank/model/arch_table.h"
#include "rank/model/block.h"
#include "rank/quant/block_quant.h"
#include "rank/quant/capture.h"
#include "rank/quant/moe_record.h"
#include "test_paths.h"

namespace {

using namespace sq;

using MoeRecord = test::ArchReference;

using Sets = std::vector<std::vector<std::string>>;

// Every set of the block's GPTQ steps made of MoE linears only.
Sets moe_sets(const rank::Block& b, const io::ModelConfig& cfg, const io::ModelWeights& w) {
  Sets out;
  const auto moe = b.moe_linears();
  for (const auto& step : rank::gptq_steps(cfg, w, b.index()))
    for (const auto& set : step.input_sets) {
      bool all = true;
      for (const auto& n : set) all = all && moe.count(n);
      if (all) out.push_back(set);
    }
  return out;
}

std::map<std::string, int64_t> in_features(const rank::Block& b, const Sets& sets) {
  std::map<std::string, int64_t> out;
  for (const auto& set : sets)
    for (const auto& n : set) out[n] = b.linear(n).weight.size(1);
  return out;
}

void expect_same_sums(rank::HessianCapture& a, rank::HessianCapture& b, const Sets& sets) {
  for (const auto& set : sets) {
    SCOPED_TRACE(set.front());
    auto& x = a.accumulator(set.front());
    auto& y = b.accumulator(set.front());
    EXPECT_EQ(x.tokens(), y.tokens());
    EXPECT_TRUE(at::equal(x.sum(), y.sum()));
  }
}

TEST_P(MoeRecord, ReplayFeedsTheSameSumsAsAForward) {
  const auto cfg = io::load_model_config(dir_);
  io::ModelWeights w(dir_);
  int moe_blocks = 0;
  for (int64_t i = 0; i < cfg.num_hidden_layers; ++i) {
    SCOPED_TRACE("block " + std::to_string(i));
    rank::Block b(w, cfg, i, at::kCPU, at::kFloat);
    if (b.router_name().empty()) continue;
    const Sets sets = moe_sets(b, cfg, w);
    ASSERT_GT(sets.size(), 2u);
    ++moe_blocks;
    const auto k = in_features(b, sets);
    const at::Tensor x = input(i);
    at::Tensor mask = at::ones({x.size(0), x.size(1)}, at::kBool);
    mask[x.size(0) - 1].slice(0, x.size(1) / 2).fill_(false);
    auto forward = [&](rank::HessianCapture& hc) {
      rank::run_block(b, x, mask, 1, &hc, [&](const at::Tensor& m) { hc.begin_batch(m); });
    };
    for (bool host : {false, true}) {
      SCOPED_TRACE(host ? "host" : "device");
      // Record while capturing the first set only, stopping each forward early.
      rank::HessianCapture first({sets.front()}, k, b.device());
      first.set_stop_early(true);
      rank::MoeRecorder rec(first, b.router_name(), host);
      rank::run_block(b, x, mask, 1, &rec, [&](const at::Tensor& m) {
        first.begin_batch(m);
        rec.begin_batch(m);
      });
      ASSERT_TRUE(rec.complete());
      {
        rank::HessianCapture want(sets, k, b.device()), got(sets, k, b.device());
        forward(want);
        rec.replay(b, got);
        expect_same_sums(want, got, sets);
        // The recording forward's own capture is unchanged by the recorder.
        expect_same_sums(want, first, {sets.front()});
      }
      // Gate/up weights changed after the recording (a GPTQ step quantized them): the down
      // projections' inputs follow the block's current weights.
      rank::Block changed(w, cfg, i, at::kCPU, at::kFloat);
      for (const auto& set : sets)
        for (const auto& n : set)
          if (n.find("down") == std::string::npos && n.find("w2") == std::string::npos)
            changed.linear(n).weight = changed.linear(n).weight * 0.75 + 0.01;
      rank::HessianCapture want(sets, k, b.device()), got(sets, k, b.device());
      rank::run_block(changed, x, mask, 1, &want,
                      [&](const at::Tensor& m) { want.begin_batch(m); });
      rec.replay(changed, got);
      expect_same_sums(want, got, sets);
    }
  }
  EXPECT_GT(moe_blocks, 0) << "no MoE block: the test compares nothing";
}

INSTANTIATE_TEST_SUITE_P(MoeFixtures, MoeRecord,
                         ::testing::ValuesIn(test::kMoeFixtures),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
