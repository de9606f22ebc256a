// Hessian accumulation on tensor cores (issue 7 point 2): bf16/fp16 activations go through TF32
// GEMMs, which must be as accurate as full-fp32 GEMMs because those inputs are exact in TF32;
// fp32 activations must keep full fp32 GEMMs. Needs CUDA; skipped otherwise.
#include <gtest/gtest.h>

#include "solvers/gptq.h"

using namespace sq::solvers;

namespace {

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

TEST(HessianTf32, HalfInputsAsAccurateAsFp32) {
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
    // Same operands, same fp32 accumulation: only summation order differs.
    EXPECT_LE(e_acc, 2 * e_fp32 + 1e-7)
        << c10::toString(dt) << " acc " << e_acc << " fp32 " << e_fp32;
    EXPECT_LE(e_acc, 1e-5) << c10::toString(dt);
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

}  // namespace
