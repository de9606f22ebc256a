// The data-parallel pieces of the AWQ clip search (solvers/awq_clip.h): on one "rank" they
// reproduce awq_clip_search bit for bit; split over ranks, the samples are the single process's
// sample, the error sums add up to the whole's, and the chosen clips agree.
#include <gtest/gtest.h>

#include "common/errors.h"
#include "solvers/awq.h"
#include "solvers/awq_clip.h"

namespace {

using namespace sq::solvers;

struct Problem {
  at::Tensor w, x;
};

Problem make_problem(int64_t tokens) {
  at::manual_seed(7);
  Problem p;
  p.w = at::randn({48, 128}, at::kFloat);
  p.x = at::randn({tokens, 128}, at::kFloat) * (1 + at::arange(128, at::kFloat) / 32);
  return p;
}

const QuantScheme kScheme{4, 32, true};

void expect_bitwise(const at::Tensor& a, const at::Tensor& b, const char* what) {
  ASSERT_EQ(a.sizes(), b.sizes()) << what;
  EXPECT_TRUE(at::equal(a, b)) << what << ": max diff " << (a - b).abs().max().item<double>();
}

TEST(AwqClipParts, OneRankIsTheSingleProcessSearchBitForBit) {
  for (int64_t tokens : {300, 1500}) {  // stride 1 and stride 2 (n_sample_tokens 512)
    const Problem p = make_problem(tokens);
    const AwqClipResult whole = awq_clip_search(p.w, p.x, kScheme);
    const at::Tensor xs = awq_clip_sample(p.x, 0, tokens);
    EXPECT_EQ(xs.size(0), tokens >= 1024 ? (tokens + 1) / 2 : tokens);
    const at::Tensor sums = awq_clip_error_sums(p.w, xs, kScheme);
    EXPECT_EQ(sums.sizes(), (std::vector<int64_t>{10, 48, 4}));
    const AwqClipResult parts = awq_clip_pick(p.w, sums, xs.size(0), kScheme);
    expect_bitwise(parts.max_val, whole.max_val, "max_val");
    expect_bitwise(parts.shrink, whole.shrink, "shrink");
    expect_bitwise(parts.min_error, whole.min_error, "min_error");
  }
}

// --clip-asym: one sum per (upper, lower) pair, and the pick from them is the search.
TEST(AwqClipParts, AsymSumsThenPickIsTheSearch) {
  const Problem p = make_problem(900);
  AwqClipOptions opts;
  opts.asym = true;
  const AwqClipResult whole = awq_clip_search(p.w, p.x, kScheme, opts);
  const at::Tensor xs = awq_clip_sample(p.x, 0, 900, opts);
  const at::Tensor sums = awq_clip_error_sums(p.w, xs, kScheme, opts);
  EXPECT_EQ(sums.sizes(), (std::vector<int64_t>{100, 48, 4}));
  const AwqClipResult parts = awq_clip_pick(p.w, sums, xs.size(0), kScheme, opts);
  expect_bitwise(parts.max_val, whole.max_val, "max_val");
  expect_bitwise(parts.min_val, whole.min_val, "min_val");
  expect_bitwise(parts.min_error, whole.min_error, "min_error");
  // Symmetric sums are the wrong shape for an asymmetric pick.
  EXPECT_THROW(awq_clip_pick(p.w, awq_clip_error_sums(p.w, xs, kScheme), xs.size(0), kScheme, opts),
               sq::InputError);
}

TEST(AwqClipParts, RanksSampleTheWholeSampleAndTheirSumsAddUp) {
  const int64_t tokens = 1537;  // stride 3 with the default 512 sampled tokens
  const Problem p = make_problem(tokens);
  const at::Tensor whole_sample = awq_clip_sample(p.x, 0, tokens);
  const at::Tensor whole_sums = awq_clip_error_sums(p.w, whole_sample, kScheme);
  // Uneven slices, one of them empty (an expert no token of this rank reached).
  const std::vector<int64_t> cuts = {0, 400, 401, 401, 1100, tokens};
  std::vector<at::Tensor> samples;
  at::Tensor sums = at::zeros_like(whole_sums);
  int64_t count = 0;
  for (size_t r = 0; r + 1 < cuts.size(); ++r) {
    const at::Tensor xs = awq_clip_sample(p.x.slice(0, cuts[r], cuts[r + 1]), cuts[r], tokens);
    samples.push_back(xs);
    sums += awq_clip_error_sums(p.w, xs, kScheme);
    count += xs.size(0);
  }
  expect_bitwise(at::cat(samples, 0), whole_sample, "concatenated samples");
  EXPECT_EQ(count, whole_sample.size(0));
  EXPECT_TRUE(at::allclose(sums, whole_sums, 1e-5, 1e-7));
  const AwqClipResult whole = awq_clip_search(p.w, p.x, kScheme);
  const AwqClipResult split = awq_clip_pick(p.w, sums, count, kScheme);
  const double same = split.shrink.eq(whole.shrink).to(at::kDouble).mean().item<double>();
  EXPECT_GE(same, 0.99) << "only " << same * 100 << " % of the clip choices agree";
}

TEST(AwqClipParts, BadInputsAreErrors) {
  const Problem p = make_problem(64);
  EXPECT_THROW(awq_clip_sample(p.x, 10, 64), sq::InputError);  // slice runs past the whole
  EXPECT_THROW(awq_clip_pick(p.w, at::zeros({10, 48, 4}), 0, kScheme), sq::InputError);
  EXPECT_THROW(awq_clip_pick(p.w, at::zeros({9, 48, 4}), 5, kScheme), sq::InputError);
  EXPECT_EQ(awq_clip_error_sums(p.w, p.x.slice(0, 0, 0), kScheme).abs().sum().item<double>(), 0);
}

}  // namespace
