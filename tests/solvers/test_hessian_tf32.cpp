// Hessian accumulation on tensor cores (issue 7 point 2): bf16/fp16 activations go through
// solvers/gram.h (a half-precision GEMM with float32 output, or TF32 on a float32 copy; the
// products are exact either way). The tensor cores' fp32 accumulation is a little looser than
// fp32 FMA GEMMs (H100, fp16 case: 3.1e-6 vs 7.9e-7 relative to float64), so the bar is
// kHessianRelTol = 1e-5 against float64 — a thousand times below the 1 % diagonal damping every
// solve adds, while a GEMM that rounded to bf16/fp16 (about 1e-3) fails it. fp32 activations
// (not exact in TF32) must keep full fp32 GEMMs. Needs CUDA; skipped otherwise.
#include <gtest/gtest.h>

#include <iostream>

#include "solvers/gptq.h"
#include "solvers/gram.h"

using namespace sq::solvers;

namespace {

constexpr double kHessianRelTol = 1e-5;

// Relative Frobenius error of H against the float64 CPU sum.
double rel_err(const at::Tensor& h, const at::Tensor& ref64) {
  return (h.cpu().to(at::kDouble) - ref64).norm().item<double>() / ref64.norm().item<double>();
}

// Σ xᵀx by a plain fp32 GEMM on the GPU with TF32 explicitly off (the accuracy to match).
at::Tensor fp32_sum(const at::Tensor& x) {
  const bool saved = at::globalContext().allowTF32CuBLAS();
  at::globalContext().setAllowTF32CuBLAS(false);
  auto xf = x.to(at::kFloat);
  at::Tensor h = xf.t().mm(xf);
  at::globalContext().setAllowTF32CuBLAS(saved);
  return h;
}

TEST(HessianTf32, HalfInputsWithinTolerance) {
  if (!at::hasCUDA()) GTEST_SKIP() << "needs CUDA";
  const at::Device dev(at::kCUDA, 0);
  at::manual_seed(11);
  const int64_t n = 8192, k = 768;
  // Uneven column magnitudes, as real activations have.
  auto base = at::randn({n, k}) * at::logspace(-2, 2, k).unsqueeze(0);
  for (auto dt : {at::kBFloat16, at::kHalf}) {
    auto x = base.to(dt).to(dev);
    auto ref = x.cpu().to(at::kDouble).t().mm(x.cpu().to(at::kDouble));
    HessianAccumulator acc(k, dev);
    acc.add(x.slice(0, 0, n / 2));
    acc.add(x.slice(0, n / 2));
    const double e_acc = rel_err(acc.sum(), ref), e_fp32 = rel_err(fp32_sum(x), ref);
    std::cout << c10::toString(dt) << ": accumulator " << e_acc << " (" << gram_f32_path()
              << "), fp32 GEMM " << e_fp32 << " (relative to float64)\n";
    EXPECT_LE(e_acc, kHessianRelTol) << c10::toString(dt);
  }
  EXPECT_FALSE(at::globalContext().allowTF32CuBLAS()) << "the TF32 switch was not restored";
}

TEST(HessianTf32, Fp32InputsKeepFullPrecision) {
  if (!at::hasCUDA()) GTEST_SKIP() << "needs CUDA";
  const at::Device dev(at::kCUDA, 0);
  at::manual_seed(12);
  auto x = at::randn({4096, 512}, at::TensorOptions().device(dev));  // not exact in TF32
  auto ref = x.cpu().to(at::kDouble).t().mm(x.cpu().to(at::kDouble));
  HessianAccumulator acc(512, dev);
  acc.add(x);
  // TF32 would round every operand to 10 mantissa bits (~1e-4 relative error here).
  EXPECT_LE(rel_err(acc.sum(), ref), 2 * rel_err(fp32_sum(x), ref) + 1e-7);
}

// Data-parallel GPTQ (issue 6 point 7): ranks add their own batches and the partial sums are
// added across ranks, so the order of the float32 per-batch products differs from the single
// process. The float64 running sum makes the finalized H bit-identical anyway (float32 values add
// exactly in float64 at these magnitudes), which GPTQ with quantized propagation needs: one flipped
// last bit of H re-rounds codes that then change the next block's inputs.
TEST(HessianOrder, BatchAndRankOrderKeepTheBits) {
  if (!at::hasCUDA()) GTEST_SKIP() << "needs CUDA";
  const at::Device dev(at::kCUDA, 0);
  at::manual_seed(13);
  const int64_t k = 512, batches = 8, rows = 1024;
  auto x = (at::randn({batches, rows, k}) * at::logspace(-2, 2, k)).to(at::kBFloat16).to(dev);
  HessianAccumulator forward(k, dev), backward(k, dev), rank0(k, dev), rank1(k, dev);
  for (int64_t b = 0; b < batches; ++b) forward.add(x[b]);
  for (int64_t b = batches - 1; b >= 0; --b) backward.add(x[b]);
  for (int64_t b = 0; b < 3; ++b) rank0.add(x[b]);
  for (int64_t b = 3; b < batches; ++b) rank1.add(x[b]);
  rank1.sum().add_(rank0.sum());  // what an all-reduce of two ranks does
  rank1.set_tokens(rank0.tokens() + rank1.tokens());
  const at::Tensor h = forward.finalize();
  EXPECT_EQ(h.scalar_type(), at::kFloat);
  EXPECT_TRUE(at::equal(h, backward.finalize())) << "reversed batch order changed H";
  EXPECT_TRUE(at::equal(h, rank1.finalize())) << "a two-rank split changed H";
}

}  // namespace
