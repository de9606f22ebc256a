// The batched expert search (solvers/awq_batched.h) against the per-expert search it replaces:
// awq_search_scales with AwqGramLoss and awq_trial_weight_as, the path rank/quant/block_awq.cpp
// takes for one expert's up → down group. Candidates bit-identical, every loss within
// kAwqGramRelTol, the same α or a near-tie; chunking changes nothing beyond that tolerance. CPU
// always; the GPU (TF32 products, the trial kernel) where CUDA is present, skipped otherwise.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "solvers/awq.h"
#include "solvers/awq_batched.h"
#include "solvers/awq_gram.h"

using namespace sq::solvers;

namespace {

const QuantScheme kScheme{4, 32, true};
constexpr int kGrid = 20;

// E experts of [n, k] with their own routed rows (different counts, uneven channel scales).
AwqExpertInputs make(const at::Device& dev, at::ScalarType dt, int E, int64_t n, int64_t k) {
  at::manual_seed(7);
  AwqExpertInputs in;
  for (int e = 0; e < E; ++e) {
    at::Tensor col = at::logspace(-1, 1, k).index_select(0, at::randperm(k));
    col.slice(0, 0, 3).mul_(6);
    const int64_t rows = 40 + 37 * e;
    in.x.push_back((at::randn({rows, k}) * col).to(dt).to(dev));
    in.w.push_back((at::randn({n, k}) * 0.05).to(dt).to(dev));
    in.x_mean.push_back(awq_x_mean(in.x.back()));
    in.w_mean.push_back(awq_w_mean({in.w.back()}, kScheme.group_for(k)));
    in.names.push_back("expert " + std::to_string(e));
  }
  return in;
}

// The per-expert path of rank/quant/block_awq.cpp (gram scope).
AwqSearchResult per_expert(const AwqExpertInputs& in, size_t e, at::ScalarType dt) {
  const AwqGramLoss gram(in.x[e]);
  const double n_elements = static_cast<double>(gram.rows() * in.w[e].size(0));
  return awq_search_scales(
      in.x_mean[e], in.w_mean[e], kGrid, true,
      [&](const at::Tensor& s) {
        return gram.loss(awq_trial_weight_as(in.w[e], s, kScheme, dt), in.w[e]) / n_elements;
      },
      in.names[e]);
}

void check(const at::Device& dev, at::ScalarType dt) {
  const AwqExpertInputs in = make(dev, dt, 6, 48, 128);
  const auto one_chunk = awq_search_experts(in, kGrid, true, kScheme, dt, uint64_t{1} << 30);
  const auto per_chunk = awq_search_experts(in, kGrid, true, kScheme, dt, 1);  // 1 expert each
  ASSERT_EQ(one_chunk.size(), in.w.size());
  ASSERT_EQ(per_chunk.size(), in.w.size());
  for (size_t e = 0; e < in.w.size(); ++e) {
    SCOPED_TRACE(in.names[e]);
    const AwqSearchResult want = per_expert(in, e, dt);
    for (const auto* got : {&one_chunk[e], &per_chunk[e]}) {
      ASSERT_EQ(got->losses.size(), want.losses.size());
      for (size_t a = 0; a < want.losses.size(); ++a) {
        EXPECT_EQ(got->alphas[a], want.alphas[a]);
        EXPECT_NEAR(got->losses[a], want.losses[a], kAwqGramRelTol * want.losses[a])
            << "grid point " << a;
      }
      // The same α, or a near-tie whose per-expert loss is within the tolerance of the best.
      EXPECT_LE(want.losses[got->best_index], want.best_loss * (1 + kAwqGramRelTol));
      // The winning candidate is exactly the per-expert candidate of that α.
      const at::Tensor s = awq_scale_candidates(in.x_mean[e], in.w_mean[e], got->best_alpha, true);
      EXPECT_TRUE(at::equal(got->scales.cpu(), s.cpu()));
    }
  }
}

TEST(AwqBatched, MatchesThePerExpertSearchOnCpu) {
  check(at::kCPU, at::kFloat);
}

TEST(AwqBatched, MatchesThePerExpertSearchOnGpu) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
  check(at::Device(at::kCUDA, 0), at::kBFloat16);
}

TEST(AwqBatched, RejectsExpertsOfDifferentShapes) {
  AwqExpertInputs in = make(at::kCPU, at::kFloat, 2, 16, 64);
  in.w[1] = at::zeros({8, 64});
  EXPECT_THROW(awq_search_experts(in, kGrid, true, kScheme, at::kFloat, 1 << 20), std::exception);
}

}  // namespace
