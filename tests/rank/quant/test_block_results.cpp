// How a block's solves hold their results (issue 21, DeepSeek-V3's MoE blocks on one GPU):
//   * AWQ trial weights made member by member (AwqSettings::trial_budget below the group's size)
//     give the same scales, the same codes and the same next input as all members at once;
//   * solved linears stored compactly (ResultStore: uint8 codes, no dequant, optionally in host
//     memory) export to the same tensors as the solver's full results.
// Run on the MoE fixtures (hidden 32, 4–8 experts), whose expert groups are the case at stake.
#include <gtest/gtest.h>

#include "io/model/model_config.h"
#include "io/model/model_weights.h"
#include "io/safetensors/tensor.h"
#include "rank/arch_reference.h"
#include "rank/model/block.h"
#include "rank/quant/block_export.h"
#include "rank/quant/block_quant.h"
#include "rank/worker/block_step.h"
#include "test_paths.h"

namespace {

using namespace sq;

const rank::KeepFp keep_none = [](const std::string&) { return false; };

using BlockResults = test::ArchReference;

// --q-group-size 8 divides every fixture's widths (deepseek_v3's q_b input is 24).
solvers::QuantScheme scheme() {
  solvers::QuantScheme s;
  s.bits = 4;
  s.group_size = 8;
  return s;
}

void expect_same_result(const rank::BlockQuantResult& a, const rank::BlockQuantResult& b) {
  EXPECT_EQ(a.notes, b.notes);  // every group's α and loss, as text
  ASSERT_EQ(a.quantized.size(), b.quantized.size());
  for (const auto& [name, qa] : a.quantized) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(b.quantized.count(name));
    const auto& qb = b.quantized.at(name);
    EXPECT_TRUE(at::equal(qa.codes, qb.codes));
    EXPECT_TRUE(at::equal(qa.scales, qb.scales));
    EXPECT_TRUE(at::equal(qa.zeros, qb.zeros));
    EXPECT_TRUE(at::equal(qa.dequant, qb.dequant));
  }
  ASSERT_TRUE(a.next_input.defined() && b.next_input.defined());
  EXPECT_TRUE(at::equal(a.next_input, b.next_input));
}

TEST_P(BlockResults, AwqTrialsMemberByMemberAreBitIdentical) {
  const auto cfg = io::load_model_config(dir_);
  io::ModelWeights w(dir_);
  int lazy_groups_possible = 0;
  for (int64_t i = 0; i < cfg.num_hidden_layers; ++i) {
    SCOPED_TRACE("block " + std::to_string(i));
    rank::AwqSettings st;
    st.scheme = scheme();
    st.micro_batch = 1;  // two micro-batches: each makes its own trial weights
    st.propagate_fp = false;
    rank::BlockQuantResult r[2];
    for (int lazy = 0; lazy < 2; ++lazy) {
      st.trial_budget = lazy ? 1 : 0;  // 1 byte: every multi-forward group goes member by member
      rank::Block b(w, cfg, i, at::kCPU, at::kFloat);
      r[lazy] = rank::awq_quantize_block(b, input(i), at::Tensor(), cfg, w, st, keep_none);
    }
    for (const auto& n : r[0].notes) lazy_groups_possible += n.rfind("scaled ", 0) == 0;
    expect_same_result(r[0], r[1]);
  }
  EXPECT_GT(lazy_groups_possible, 0) << "no group was searched: the test compares nothing";
}

// The routed experts' up → down groups searched as one batch (solvers/awq_batched.h, forced on
// the CPU here; the GPU's default) against one by one (the CPU's direct forwards): the same groups
// scaled, the same α in nearly every group (the Gram loss is the exact loss, the direct one
// carries the block dtype's rounding: near-ties may differ), every linear quantized, and a block
// error within 1 % of the per-expert path's.
TEST_P(BlockResults, AwqExpertsBatchedMatchPerExpert) {
  const auto cfg = io::load_model_config(dir_);
  io::ModelWeights w(dir_);
  int expert_groups = 0, same_alpha = 0;
  for (int64_t i = 0; i < cfg.num_hidden_layers; ++i) {
    SCOPED_TRACE("block " + std::to_string(i));
    rank::AwqSettings st;
    st.scheme = scheme();
    rank::BlockQuantResult r[2];
    for (int batched = 0; batched < 2; ++batched) {
      st.expert_search = batched ? rank::ExpertSearch::kBatched : rank::ExpertSearch::kPerExpert;
      rank::Block b(w, cfg, i, at::kCPU, at::kFloat);
      r[batched] = rank::awq_quantize_block(b, input(i), at::Tensor(), cfg, w, st, keep_none);
    }
    ASSERT_EQ(r[0].notes.size(), r[1].notes.size());
    int block_groups = 0;
    for (size_t k = 0; k < r[0].notes.size(); ++k) {
      const std::string& a = r[0].notes[k];
      const std::string& b = r[1].notes[k];
      // "scaled <prev> -> <linear>: alpha=… loss=…": the same group in the same place.
      EXPECT_EQ(a.substr(0, a.find(':')), b.substr(0, b.find(':')));
      if (a.find(".experts.") == std::string::npos || a.rfind("scaled ", 0) != 0) continue;
      if (a.find("down") == std::string::npos && a.find("w2") == std::string::npos) continue;
      ++expert_groups;
      ++block_groups;
      same_alpha += a.substr(a.find("alpha="), a.find(" loss")) ==
                    b.substr(b.find("alpha="), b.find(" loss"));
    }
    // The batched path ran exactly where there were expert groups (deepseek_v3's block 0 is dense).
    EXPECT_EQ(r[1].phase_seconds.count("awq search/experts batched grid"),
              block_groups > 0 ? 1u : 0u);
    EXPECT_FALSE(r[0].phase_seconds.count("awq search/experts batched grid"));
    ASSERT_EQ(r[0].quantized.size(), r[1].quantized.size());
    EXPECT_NEAR(rank::mean_error(r[1]), rank::mean_error(r[0]), 0.01 * rank::mean_error(r[0]));
  }
  EXPECT_GT(expert_groups, 0) << "no expert group searched: the test compares nothing";
  EXPECT_GE(same_alpha * 10, expert_groups * 9) << same_alpha << " of " << expert_groups;
}

// Exported tensors of block i solved with `store` (AWQ or GPTQ).
rank::NamedTensors exported(const io::ModelConfig& cfg, const io::ModelWeights& w,
                            const at::Tensor& x, int64_t i, bool awq, rank::ResultStore store,
                            rank::BlockQuantResult* keep = nullptr) {
  rank::Block b(w, cfg, i, at::kCPU, at::kFloat);
  rank::BlockQuantResult r;
  if (awq) {
    rank::AwqSettings st;
    st.scheme = scheme();
    st.results = store;
    r = rank::awq_quantize_block(b, x, at::Tensor(), cfg, w, st, keep_none);
  } else {
    rank::GptqSettings st;
    st.scheme = scheme();
    st.results = store;
    r = rank::gptq_quantize_block(b, x, at::Tensor(), cfg, w, st, keep_none);
  }
  rank::ExportOptions eo;
  eo.format = awq ? io::Format::kAwqGemm : io::Format::kGptqV2;
  eo.scheme = scheme();
  auto out = rank::export_block(b, r.quantized, w, eo);
  if (keep) *keep = std::move(r);
  return out;
}

TEST_P(BlockResults, CompactStoresExportTheSameTensors) {
  const auto cfg = io::load_model_config(dir_);
  io::ModelWeights w(dir_);
  for (bool awq : {true, false}) {
    for (auto store : {rank::ResultStore::kCompact, rank::ResultStore::kCompactHost}) {
      SCOPED_TRACE(std::string(awq ? "awq" : "gptq") +
                   (store == rank::ResultStore::kCompact ? " compact" : " compact host"));
      const at::Tensor x = input(0);
      rank::BlockQuantResult compact;
      const auto want = exported(cfg, w, x, 0, awq, rank::ResultStore::kFull);
      const auto got = exported(cfg, w, x, 0, awq, store, &compact);
      // The store did what it says: no dequant, codes in a byte each.
      ASSERT_FALSE(compact.quantized.empty());
      for (const auto& [name, q] : compact.quantized) {
        EXPECT_FALSE(q.dequant.defined()) << name;
        EXPECT_EQ(q.codes.scalar_type(), at::kByte) << name;
      }
      ASSERT_EQ(want.size(), got.size());
      for (size_t k = 0; k < want.size(); ++k) {
        EXPECT_EQ(want[k].first, got[k].first);
        EXPECT_TRUE(want[k].second.scalar_type() == got[k].second.scalar_type() &&
                    at::equal(want[k].second, got[k].second))
            << want[k].first;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(MoeFixtures, BlockResults,
                         ::testing::Values("mixtral", "qwen3_moe", "qwen2_moe", "deepseek_v3"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
