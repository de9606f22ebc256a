// The fused attention fast path (layers::attention_fast, at::scaled_dot_product_attention)
// against the eager reference (attention_bias + attention_core) on random tensors. Needs CUDA
// and a LibTorch with scaled_dot_product_attention; skipped otherwise.
#include <gtest/gtest.h>

#include "rank/device/device.h"
#include "rank/model/layers.h"

using namespace sq::rank;

namespace {

struct Case {
  const char* name;
  at::ScalarType dtype;
  double tolerance;  // relative L2 error over the real query rows
  int64_t window;
  bool padded;
};

// fp32: the kernels differ from the eager path only in summation order (1e-5 would be tight
// for exp/softmax fused differently; 1e-4 is still far below any real defect). bf16: eager and
// fused both round to 8 mantissa bits at different points: 2e-2.
const Case kCases[] = {
    {"fp32 causal", at::kFloat, 1e-4, 0, false},   {"fp32 window", at::kFloat, 1e-4, 5, false},
    {"fp32 padded", at::kFloat, 1e-4, 0, true},    {"bf16 causal", at::kBFloat16, 2e-2, 0, false},
    {"bf16 padded", at::kBFloat16, 2e-2, 7, true},
};

TEST(AttentionFast, MatchesEagerReference) {
  if (!cuda_available()) GTEST_SKIP() << "needs CUDA";
  const at::Device dev(at::kCUDA, 0);
  auto probe = at::zeros({1}, at::TensorOptions().device(dev));
  if (!layers::fast_attention_usable(probe, 0.0))
    GTEST_SKIP() << "this LibTorch has no scaled_dot_product_attention (or SQ_EAGER_ATTENTION)";
  at::manual_seed(7);
  const int64_t B = 3, Hq = 8, Hkv = 2, T = 33, D = 64;
  for (const auto& c : kCases) {
    auto o = at::TensorOptions().device(dev).dtype(c.dtype);
    at::Tensor q = at::randn({B, Hq, T, D}, o), k = at::randn({B, Hkv, T, D}, o),
               v = at::randn({B, Hkv, T, D}, o);
    at::Tensor pad;
    if (c.padded) {  // left padding of 0, 4 and 9 tokens
      pad = at::ones({B, T}, at::TensorOptions().dtype(at::kBool).device(dev));
      pad.index_put_({1, at::indexing::Slice(0, 4)}, false);
      pad.index_put_({2, at::indexing::Slice(0, 9)}, false);
    }
    const double scaling = 1.0 / std::sqrt(double(D));
    at::Tensor ref = layers::attention_core(
        q, k, v, layers::attention_bias(B, T, c.window, pad, dev), scaling, 0.0);
    at::Tensor fast = layers::attention_fast(q, k, v, c.window, pad, scaling);
    ASSERT_EQ(fast.sizes(), ref.sizes()) << c.name;
    // Compare real query rows only ([B,H,T,D] → rows where pad is true).
    at::Tensor keep = pad.defined()
                          ? pad.view({B, 1, T}).expand({B, Hq, T})
                          : at::ones({B, Hq, T}, at::TensorOptions().dtype(at::kBool).device(dev));
    at::Tensor a = fast.to(at::kDouble).index({keep}), b = ref.to(at::kDouble).index({keep});
    const double err = (a - b).norm().item<double>() / b.norm().item<double>();
    EXPECT_LE(err, c.tolerance) << c.name;
    EXPECT_FALSE(at::isnan(fast).any().item<bool>()) << c.name << ": NaN in padded rows";
  }
}

}  // namespace
