// rank::import_quantized (issue 22): a resume recomputes the chain's activations from the written
// tensors, so a fresh block that imports a solved block's exported tensors must hold the weights
// the solver left in it, bit for bit, and forward to the solver's next input bit for bit
// (tolerance: none). The reference is the solver's own block and BlockQuantResult::next_input
// (GPTQ, --propagate quant); every output format's packing is undone, GPTQ's deferred zeros
// included, on dense, Conv1D (gpt2) and MoE fixtures, in float32 and bfloat16 blocks, on the CPU
// and (where there is one) on the GPU.
#include <gtest/gtest.h>

#include "io/format/format_registry.h"
#include "io/model/model_config.h"
#include "io/model/model_weights.h"
#include "rank/arch_reference.h"
#include "rank/model/block.h"
#include "rank/quant/block_export.h"
#include "rank/quant/block_quant.h"

namespace {

using namespace sq;

const rank::KeepFp keep_none = [](const std::string&) { return false; };

using BlockImport = test::ArchReference;

struct Case {
  const char* name;
  io::Format format;
  bool zero_point;
  bool act_order;
  bool defer_zeros;  // export_block's unpacked qzeros (what the run's fragments hold)
  at::ScalarType scale_dtype;
};

const Case kCases[] = {
    {"gptq v1 sym", io::Format::kGptqV1, false, false, false, at::kHalf},
    {"gptq v1 asym deferred", io::Format::kGptqV1, true, false, true, at::kHalf},
    {"gptq v1 act-order deferred", io::Format::kGptqV1, true, true, true, at::kHalf},
    {"gptq v2 asym", io::Format::kGptqV2, true, false, false, at::kHalf},
    {"awq gemm asym", io::Format::kAwqGemm, true, false, false, at::kHalf},
    {"compressed asym fp16 scales", io::Format::kCompressedPack, true, false, false, at::kHalf},
    {"compressed sym fp32 scales", io::Format::kCompressedPack, false, false, false, at::kFloat},
};

TEST_P(BlockImport, ImportedWeightsForwardToTheSolversNextInput) {
  const auto cfg = io::load_model_config(dir_);
  io::ModelWeights w(dir_);
  int compared = 0;
  std::vector<at::Device> devices{at::kCPU};
  if (at::hasCUDA()) devices.emplace_back(at::kCUDA, 0);  // the GPU solver and forward too
  for (const at::Device dev : devices)
    for (const at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
      for (const Case& c : kCases) {
        SCOPED_TRACE(std::string(c.name) + (dtype == at::kFloat ? " float32 " : " bfloat16 ") +
                     dev.str());
        const io::FormatRow& row = io::format_row(c.format);
        if (cfg.model_type == "gpt2" && row.conv1d_error != nullptr) continue;
        rank::GptqSettings st;
        st.scheme.bits = 4;
        st.scheme.group_size = 8;  // divides every fixture's widths
        st.scheme.zero_point = c.zero_point;
        st.scheme.act_order = c.act_order;
        st.propagate_fp = false;
        st.micro_batch = 1;
        rank::ExportOptions eo;
        eo.format = c.format;
        eo.scheme = st.scheme;
        eo.pack.scale_dtype = c.scale_dtype;
        if (!row.scheme_error(eo.scheme).empty()) continue;
        ASSERT_TRUE(rank::import_is_exact(eo));

        const at::Tensor x = input(0).to(dev).to(dtype);
        rank::Block solved(w, cfg, 0, dev, dtype);
        rank::BlockQuantResult r =
            rank::gptq_quantize_block(solved, x, at::Tensor(), cfg, w, st, keep_none);
        std::vector<std::string> unpacked;
        const auto tensors =
            rank::export_block(solved, r.quantized, w, eo, c.defer_zeros ? &unpacked : nullptr);
        if (c.defer_zeros) ASSERT_FALSE(unpacked.empty());

        rank::Block fresh(w, cfg, 0, dev, dtype);
        const auto names = rank::import_quantized(fresh, tensors, unpacked, eo);
        ASSERT_EQ(names.size(), r.quantized.size());
        for (const auto& name : names) {
          SCOPED_TRACE(name);
          ASSERT_TRUE(r.quantized.count(name));
          const at::Tensor& got = fresh.linear(name).weight;
          const at::Tensor& want = solved.linear(name).weight;
          EXPECT_EQ(got.scalar_type(), want.scalar_type());
          EXPECT_TRUE(at::equal(got, want));
        }
        const at::Tensor next = rank::run_block(fresh, x, at::Tensor(), st.micro_batch);
        ASSERT_TRUE(r.next_input.defined());
        EXPECT_TRUE(at::equal(next, r.next_input));
        ++compared;
      }
    }
  EXPECT_GT(compared, 4) << "too few formats compared";
}

// A bf16 model's compressed-tensors scales are stored rounded to bf16: those blocks do not
// import exactly, and the run keeps their chain's activations instead
// (coordinator/run/checkpoint.h).
TEST(BlockImportExact, CompressedWithBf16ScalesIsNotExact) {
  rank::ExportOptions eo;
  eo.format = io::Format::kCompressedPack;
  eo.pack.scale_dtype = at::kBFloat16;
  EXPECT_FALSE(rank::import_is_exact(eo));
  eo.pack.scale_dtype = at::kHalf;
  EXPECT_TRUE(rank::import_is_exact(eo));
  eo.format = io::Format::kGptqV1;
  eo.pack.scale_dtype = at::kBFloat16;  // ignored: GPTQ stores fp16 scales
  EXPECT_TRUE(rank::import_is_exact(eo));
}

INSTANTIATE_TEST_SUITE_P(Fixtures, BlockImport,
                         ::testing::Values("llama", "gpt2", "phi3", "qwen3_moe", "deepseek_v3"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
