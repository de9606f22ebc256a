// The Gram-form AWQ loss of a one-linear scope (solvers/awq_gram.h) against the direct form it
// replaces, Σ ‖X W_trialᵀ − X Wᵀ‖² computed in float64: the values within kAwqGramRelTol
// (float32 on CPU here; TF32 tensor cores on a GPU, the production path, in its own test, skipped
// without CUDA) and, over a whole 20-point α grid, the same choice up to near-ties.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "solvers/awq.h"
#include "solvers/awq_gram.h"

using namespace sq::solvers;

namespace {

const QuantScheme kScheme{4, 64, true};

double direct_loss64(const at::Tensor& x, const at::Tensor& wt, const at::Tensor& w) {
  const at::Tensor x64 = x.cpu().to(at::kDouble);
  const at::Tensor d = wt.cpu().to(at::kDouble) - w.cpu().to(at::kDouble);
  return at::mm(x64, d.t()).pow(2).sum().item<double>();
}

struct Problem {
  at::Tensor x, w, x_mean, w_mean;
};

Problem make(at::ScalarType dt, const at::Device& dev, int64_t rows, int64_t k, int64_t n) {
  at::manual_seed(31);
  Problem p;
  // Uneven activation magnitudes with a few outlier channels, as real inputs have.
  at::Tensor col = at::logspace(-1, 1, k).index_select(0, at::randperm(k));
  col.slice(0, 0, 4).mul_(8);
  p.x = (at::randn({rows, k}) * col).to(dt).to(dev);
  p.w = (at::randn({n, k}) * 0.05).to(dt).to(dev);
  p.x_mean = awq_x_mean(p.x);
  p.w_mean = awq_w_mean({p.w}, kScheme.group_for(k));
  return p;
}

TEST(AwqGram, MatchesTheDirectLossAndItsChoiceOnCpu) {
  const Problem p = make(at::kFloat, at::kCPU, 700, 192, 48);
  const AwqGramLoss gram(p.x, /*chunk_rows=*/256);
  EXPECT_EQ(gram.rows(), 700);
  std::vector<double> g, d;
  for (int i = 0; i < 20; ++i) {
    const at::Tensor s = awq_scale_candidates(p.x_mean, p.w_mean, i / 20.0, true);
    const at::Tensor wt = awq_trial_weight(p.w, s, kScheme);
    g.push_back(gram.loss(wt, p.w).item<double>());
    d.push_back(direct_loss64(p.x, wt, p.w));
    EXPECT_NEAR(g.back(), d.back(), 1e-5 * d.back()) << "grid point " << i;
  }
  const size_t gi = std::min_element(g.begin(), g.end()) - g.begin();
  const size_t di = std::min_element(d.begin(), d.end()) - d.begin();
  // The same α, or a near-tie: the Gram choice's exact loss within the tolerance of the best.
  EXPECT_LE(d[gi], d[di] * (1 + kAwqGramRelTol)) << "Gram picked " << gi << ", direct " << di;
}

TEST(AwqGram, ChunkingDoesNotChangeTheGram) {
  const Problem p = make(at::kFloat, at::kCPU, 333, 64, 8);
  const AwqGramLoss whole(p.x, 1 << 20), pieces(p.x, 7);
  // Relative Frobenius distance: entries near zero (cancelling sums) have no useful elementwise
  // relative error.
  auto rel = [](const at::Tensor& a, const at::Tensor& b) {
    return (a.to(at::kDouble) - b.to(at::kDouble)).norm().item<double>() /
           b.to(at::kDouble).norm().item<double>();
  };
  EXPECT_LT(rel(pieces.gram(), whole.gram()), 1e-6);
  const at::Tensor x64 = p.x.to(at::kDouble);
  EXPECT_LT(rel(whole.gram(), x64.t().mm(x64)), 1e-6);
}

TEST(AwqGram, TensorCoreLossWithinToleranceOnGpu) {
  if (!at::hasCUDA()) GTEST_SKIP() << "needs CUDA";
  const at::Device dev(at::kCUDA, 0);
  for (auto dt : {at::kBFloat16, at::kHalf}) {
    const Problem p = make(dt, dev, 4096, 512, 256);
    const AwqGramLoss gram(p.x);
    std::vector<double> g, d;
    for (int i = 0; i < 20; i += 3) {
      const at::Tensor s = awq_scale_candidates(p.x_mean, p.w_mean, i / 20.0, true);
      const at::Tensor wt = awq_trial_weight_as(p.w, s, kScheme, dt);
      g.push_back(gram.loss(wt, p.w).item<double>());
      d.push_back(direct_loss64(p.x, wt, p.w));
      EXPECT_NEAR(g.back(), d.back(), kAwqGramRelTol * d.back())
          << c10::toString(dt) << " grid point " << i;
    }
    EXPECT_FALSE(at::globalContext().allowTF32CuBLAS()) << "the TF32 switch was not restored";
  }
}

}  // namespace
