// The fused CUDA paths of rank/model/fused.h against the ATen expressions they replace: gated SiLU
// and rotary embedding bit for bit (they reproduce every rounding step), the AWQ loss's sum of
// squared differences within kSumSqDiffRelTol (another summation order) and identical on a
// repeat. Needs CUDA (and a build with the kernels); skipped otherwise. The CPU paths are the
// references themselves, exercised by every forward test.
#include <gtest/gtest.h>

#include "rank/model/fused.h"
#include "rank/model/layers.h"

namespace {

using namespace sq::rank;

bool have_fused_cuda() {
  return at::hasCUDA() && fused_enabled();
}

const at::ScalarType kTypes[] = {at::kBFloat16, at::kHalf, at::kFloat};

TEST(Fused, GatedSiluBitIdentical) {
  if (!have_fused_cuda()) GTEST_SKIP() << "needs CUDA and the fused kernels";
  at::manual_seed(21);
  for (auto dt : kTypes) {
    // 1000 columns: the 16-byte vector path; 999: the scalar path.
    for (int64_t cols : {int64_t{1000}, int64_t{999}}) {
      auto o = at::TensorOptions().device(at::kCUDA).dtype(dt);
      // Wide range, including large |x| where exp over/underflows.
      at::Tensor g = at::randn({3, 77, cols}, o) * 6, u = at::randn({3, 77, cols}, o);
      g.view(-1)[0] = 90;
      g.view(-1)[1] = -90;
      const at::Tensor ref = layers::activate(g, Activation::Silu) * u;
      const at::Tensor got = gated_act(g, u, Activation::Silu);
      EXPECT_TRUE(at::equal(got, ref))
          << c10::toString(dt) << " cols " << cols << ": max |diff| "
          << (got.to(at::kFloat) - ref.to(at::kFloat)).abs().max().item<float>();
    }
  }
}

TEST(Fused, RotaryHalfBitIdenticalOnTransposedHeads) {
  if (!have_fused_cuda()) GTEST_SKIP() << "needs CUDA and the fused kernels";
  at::manual_seed(22);
  const int64_t B = 2, T = 37, H = 4, D = 64;
  for (auto dt : kTypes) {
    auto o = at::TensorOptions().device(at::kCUDA).dtype(dt);
    // [B,T,H·D] projections viewed as heads, as Block::attention does.
    at::Tensor x = at::randn({B, T, H * D}, o).view({B, T, H, D}).transpose(1, 2);
    layers::Rotary r;
    r.rot_dim = D;
    r.cos = at::randn({1, T, D}, o);  // broadcast over the batch
    r.sin = at::randn({1, T, D}, o);
    at::Tensor got;
    ASSERT_TRUE(rotary_half_fused(x, r.cos, r.sin, got)) << c10::toString(dt);
    // The reference: apply_rotary with the fused path off is not reachable from here (it
    // dispatches itself), so spell out its expression.
    at::Tensor x1 = x.narrow(-1, 0, D / 2), x2 = x.narrow(-1, D / 2, D / 2);
    at::Tensor rotated = at::cat({-x2, x1}, -1);
    at::Tensor ref = x * r.cos.unsqueeze(1) + rotated * r.sin.unsqueeze(1);
    EXPECT_TRUE(at::equal(got, ref)) << c10::toString(dt);
    EXPECT_EQ(got.strides(), x.strides()) << "output layout should follow the input's";
    EXPECT_TRUE(at::equal(layers::apply_rotary(x, r, RopeStyle::Half), ref));
  }
}

TEST(Fused, SumSqDiffWithinToleranceAndRepeatable) {
  if (!have_fused_cuda()) GTEST_SKIP() << "needs CUDA and the fused kernels";
  at::manual_seed(23);
  for (auto dt : kTypes) {
    for (int64_t n : {int64_t{1}, int64_t{1000}, int64_t{3} << 20}) {
      auto o = at::TensorOptions().device(at::kCUDA).dtype(dt);
      at::Tensor a = at::randn({n}, o), b = a + 0.01 * at::randn({n}, o);
      const double ref =
          at::linalg_vector_norm(a - b, 2, c10::nullopt, false, at::kFloat).pow(2).item<double>();
      const at::Tensor got = sum_sq_diff(a, b);
      EXPECT_EQ(got.dim(), 0);
      EXPECT_EQ(got.scalar_type(), at::kFloat);
      EXPECT_NEAR(got.item<double>(), ref, kSumSqDiffRelTol * ref)
          << c10::toString(dt) << " n " << n;
      EXPECT_TRUE(at::equal(got, sum_sq_diff(a, b))) << "not repeatable";
    }
  }
}

}  // namespace
