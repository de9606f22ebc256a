// The fused AWQ trial-weight kernel (awq_trial_kernel.h) against the ATen reference
// awq_trial_weight(...).to(dtype): bit for bit, for every weight dtype, both AWQ grids, group
// 128 and per-row groups. Needs a CUDA build and device; skipped otherwise.
#include <gtest/gtest.h>

#include "solvers/awq.h"
#include "solvers/gptq_cuda.h"

using namespace sq::solvers;

// The clip search's use: fp32 weights, unit scales → exactly pseudo_quantize(W).
TEST(AwqTrialCuda, ClipUseWithUnitScales) {
  if (!gptq_cuda_built() || !at::hasCUDA()) GTEST_SKIP() << "no CUDA device in this build/machine";
  const at::Device dev(at::kCUDA, 0);
  at::manual_seed(6);
  const at::Tensor w = (at::randn({64, 384}) * 0.02).to(dev);
  for (bool zp : {true, false}) {
    const QuantScheme scheme{4, 128, zp};
    at::Tensor got = awq_trial_weight_as(w, at::ones({384}, w.options()), scheme, at::kFloat);
    EXPECT_TRUE(at::equal(got, pseudo_quantize(w, scheme, GridKind::kAwq))) << zp;
  }
}

TEST(AwqTrialCuda, KernelMatchesReferenceBitForBit) {
  if (!gptq_cuda_built() || !at::hasCUDA()) GTEST_SKIP() << "no CUDA device in this build/machine";
  const at::Device dev(at::kCUDA, 0);
  at::manual_seed(5);
  for (auto dt : {at::kBFloat16, at::kHalf, at::kFloat})
    for (bool zp : {true, false})
      for (int64_t group : {int64_t{128}, int64_t{-1}}) {
        const int64_t n = 96, k = 512;
        // Uneven magnitudes, a constant group (zero range) and an all-zero row.
        at::Tensor w = (at::randn({n, k}) * at::logspace(-3, 1, k).unsqueeze(0));
        w[3].fill_(0.25);
        w[4].zero_();
        w = w.to(dev, dt);
        at::Tensor s = (at::rand({k}) * 4 + 0.05).to(dev);
        const QuantScheme scheme{4, group, zp};
        at::Tensor ref = awq_trial_weight(w, s, scheme).to(dt);
        at::Tensor got = awq_trial_weight_as(w, s, scheme, dt);
        const int64_t differ = got.ne(ref).sum().item<int64_t>();
        EXPECT_EQ(differ, 0) << c10::toString(dt) << (zp ? " zero point" : " symmetric")
                             << ", group " << group << ": " << differ << " of " << got.numel()
                             << " values differ, max |diff| "
                             << (got.to(at::kFloat) - ref.to(at::kFloat)).abs().max().item<float>();
      }
}
