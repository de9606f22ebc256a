// Llama 4 pieces (rank/model/llama4.h) against hand-computed values: the chunked-attention mask,
// the NoPE attention temperature and the weight-free L2 norm. (The llama4_text fixture checks them,
// and the routed experts whose routing weight scales the input, against transformers.)
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "rank/model/llama4.h"

using namespace sq::rank;

namespace {

TEST(Llama4, ChunkedMaskIsCausalWithinChunks) {
  // T = 5, chunk 2: chunks {0,1} {2,3} {4}.
  const at::Tensor bias = llama4::chunked_attention_bias(1, 5, 2, at::Tensor(), at::kCPU);
  ASSERT_EQ(bias.sizes(), (std::vector<int64_t>{1, 1, 5, 5}));
  const int visible[5][5] = {
      {1, 0, 0, 0, 0}, {1, 1, 0, 0, 0}, {0, 0, 1, 0, 0}, {0, 0, 1, 1, 0}, {0, 0, 0, 0, 1}};
  const float lowest = std::numeric_limits<float>::lowest();
  for (int i = 0; i < 5; ++i)
    for (int j = 0; j < 5; ++j)
      EXPECT_EQ(bias[0][0][i][j].item<float>(), visible[i][j] ? 0.0f : lowest) << i << "," << j;
}

TEST(Llama4, ChunkedMaskHidesPaddedKeys) {
  const at::Tensor pad = at::tensor({0, 1, 1, 1}, at::kLong).view({1, 4});
  const at::Tensor bias = llama4::chunked_attention_bias(1, 4, 4, pad, at::kCPU);
  const float lowest = std::numeric_limits<float>::lowest();
  EXPECT_EQ(bias[0][0][3][0].item<float>(), lowest);
  EXPECT_EQ(bias[0][0][3][1].item<float>(), 0.0f);
}

TEST(Llama4, TemperatureScalesFollowFloorOfPosition) {
  // floor_scale 8, attn_scale 0.1: ⌊(p+1)/8⌋ = 0, 0, 1, 1, 2 for p = 0, 6, 7, 14, 15.
  const at::Tensor pos = at::tensor({0, 6, 7, 14, 15}, at::kLong).view({1, 5});
  const at::Tensor s = llama4::temperature_scales(pos, 8.0, 0.1);
  ASSERT_EQ(s.sizes(), (std::vector<int64_t>{1, 1, 5, 1}));
  const double want[5] = {1.0, 1.0, 1.0 + 0.1 * std::log(2.0), 1.0 + 0.1 * std::log(2.0),
                          1.0 + 0.1 * std::log(3.0)};
  for (int t = 0; t < 5; ++t) EXPECT_NEAR(s[0][0][t][0].item<float>(), want[t], 1e-6) << t;
}

TEST(Llama4, L2NormDividesByRootMeanSquare) {
  const at::Tensor x = at::tensor({3.0f, 4.0f}).view({1, 2});
  const at::Tensor y = llama4::l2_norm(x, 0.0);
  const double rms = std::sqrt((9.0 + 16.0) / 2.0);
  EXPECT_NEAR(y[0][0].item<float>(), 3.0 / rms, 1e-6);
  EXPECT_NEAR(y[0][1].item<float>(), 4.0 / rms, 1e-6);
}

}  // namespace
