// AWQ: statistics and candidates by hand, the search's argmin, production vs float64 search,
// scale application invariance in fp64, and the clip search.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include <ATen/ATen.h>

#include "common/errors.h"
#include "solver_test_util.h"
#include "solvers/awq.h"
#include "solvers/reference.h"

namespace sq::solvers {
namespace {

// fp32 vs fp64 losses of the same grid point: only pseudo-quantization ties can differ.
constexpr double kAwqLossRelTol = 1e-3;
// The production argmin may be a near-tie of the reference's; its reference loss must be within
// this factor of the reference minimum.
constexpr double kAwqArgminRelTol = 1e-3;
// Scale application in fp64 must leave a composition unchanged up to rounding.
constexpr double kAwqApplyTol = 1e-12;
// Fraction of (row, group) clip choices identical between production and reference.
constexpr double kClipAgreement = 0.99;

TEST(AwqStats, MeansByHand) {
  auto x = at::tensor({1.0f, -2.0f, 3.0f, 4.0f}).reshape({1, 2, 2});
  EXPECT_TRUE(at::allclose(awq_x_mean(x), at::tensor({2.0f, 3.0f})));
  // group 2: row 0 [1,−2 | 3,0] → [0.5,1 | 1,0]; row 1 [2,2 | −1,4] → [1,1 | 0.25,1].
  auto a = at::tensor({1.0f, -2.0f, 3.0f, 0.0f}).reshape({1, 4});
  auto b = at::tensor({2.0f, 2.0f, -1.0f, 4.0f}).reshape({1, 4});
  EXPECT_TRUE(
      at::allclose(awq_w_mean({a, b}, 2), at::tensor({0.75f, 1.0f, 0.625f, 0.5f}), 1e-5, 1e-5));
}

// The by-member form (large MoE groups) against the by-hand values and the concatenated
// reference on many members of mixed heights: 1e-6 relative (float64 row sums vs float32 mean).
TEST(AwqWMean, ByMemberMatchesTheReference) {
  auto a = at::tensor({1.0f, -2.0f, 3.0f, 0.0f}).reshape({1, 4});
  auto b = at::tensor({2.0f, 2.0f, -1.0f, 4.0f}).reshape({1, 4});
  EXPECT_TRUE(at::allclose(awq_w_mean_by_member({a, b}, 2), at::tensor({0.75f, 1.0f, 0.625f, 0.5f}),
                           1e-6, 1e-6));
  at::manual_seed(3);
  std::vector<at::Tensor> members;
  for (int e = 0; e < 64; ++e) members.push_back(at::randn({16 + e % 5, 256}).to(at::kBFloat16));
  const at::Tensor ref = awq_w_mean(members, 128), by = awq_w_mean_by_member(members, 128);
  EXPECT_TRUE(at::allclose(by, ref, 1e-6, 0)) << (by - ref).abs().max().item<float>();
  EXPECT_FALSE(at::equal(by, at::zeros_like(by)));
}

TEST(AwqSearch, CandidateFormula) {
  const std::vector<double> xm = {0.5, 4.0, 2.0}, wm = {1.0, 0.25, 0.5};
  for (bool duo : {true, false}) {
    for (double a : {0.0, 0.35, 0.5, 0.95}) {
      std::vector<double> s(3);
      for (int i = 0; i < 3; ++i)
        s[i] = std::max(
            duo ? std::pow(xm[i], a) / (std::pow(wm[i], 1 - a) + 1e-4) : std::pow(xm[i], a), 1e-4);
      const double norm =
          std::sqrt(*std::max_element(s.begin(), s.end()) * *std::min_element(s.begin(), s.end()));
      auto got =
          awq_scale_candidates(at::tensor(xm, at::kFloat), at::tensor(wm, at::kFloat), a, duo);
      for (int i = 0; i < 3; ++i)
        EXPECT_NEAR(got[i].item<float>(), s[i] / norm, 1e-5 * s[i] / norm);
    }
  }
  auto bad =
      awq_scale_candidates(at::tensor({std::nanf(""), 1.0f, 4.0f}), at::ones({3}), 0.5, true);
  EXPECT_TRUE(at::equal(bad, at::ones({3})));
}

TEST(AwqSearch, PicksFirstFiniteArgmin) {
  const std::vector<double> table = {5, 3, std::nan(""), 1.5, 1.5, 9, 2, 7};
  const auto xm = at::tensor({0.5f, 4.0f, 2.0f}), wm = at::tensor({1.0f, 0.25f, 0.5f});
  size_t calls = 0;
  auto r = awq_search_scales_host(
      xm, wm, 8, true, [&](const at::Tensor&) { return table[calls++]; }, "layers.0.attn");
  EXPECT_EQ(calls, table.size());
  EXPECT_EQ(r.best_index, 3);
  EXPECT_DOUBLE_EQ(r.best_alpha, 3.0 / 8.0);
  EXPECT_TRUE(at::equal(r.scales, awq_scale_candidates(xm, wm, 3.0 / 8.0, true)));
  try {
    awq_search_scales_host(
        xm, wm, 4, true, [](const at::Tensor&) { return std::nan(""); }, "layers.7.mlp");
    FAIL() << "no finite loss must throw";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("layers.7.mlp"), std::string::npos);
  }
}

// The reduce hook sees the stacked losses before the pick (data-parallel ranks sum theirs
// there): the argmin must follow the rewritten values, not the local ones.
TEST(AwqSearch, ReduceHookDecidesTheArgmin) {
  const auto xm = at::tensor({0.5f, 4.0f, 2.0f}), wm = at::tensor({1.0f, 0.25f, 0.5f});
  int k = 0;
  auto local = [&](const at::Tensor&) { return at::scalar_tensor(double(k++), at::kFloat); };
  auto r = awq_search_scales(xm, wm, 5, true, local, "g", [](at::Tensor& l) {
    EXPECT_EQ(l.scalar_type(), at::kDouble);
    ASSERT_EQ(l.numel(), 5);
    l.copy_(at::tensor({4.0, 3.0, 0.5, 2.0, 1.0}, at::kDouble));
  });
  EXPECT_EQ(r.best_index, 2);
  EXPECT_DOUBLE_EQ(r.best_loss, 0.5);
  EXPECT_DOUBLE_EQ(r.losses[0], 4.0);
}

// --iter / --search-step: a loss with its minimum between grid points, α* = 0.537 (the grid of
// 20 can only reach 0.55). Bisection-like rounds (one point per side, spacing halved) must close
// in on α*; the loss is never worse than the grid's; the round count stops at the 1e-6 spacing.
TEST(AwqSearch, RefinementRoundsCloseInOnTheMinimum) {
  const auto xm = at::tensor({0.5f, 4.0f, 2.0f, 9.0f}), wm = at::tensor({1.0f, 0.25f, 0.5f, 0.1f});
  const double target = 0.537;
  const at::Tensor s_star = awq_scale_candidates(xm, wm, target, true);
  auto loss = [&](const at::Tensor& s) { return (s - s_star).pow(2).sum().item<double>(); };
  const auto grid = awq_search_scales_host(xm, wm, 20, true, loss, "g");
  EXPECT_DOUBLE_EQ(grid.best_alpha, 0.55);
  EXPECT_EQ(grid.rounds, 1);
  EXPECT_EQ(grid.losses.size(), 20u);

  const auto fine = awq_search_scales_host(xm, wm, 20, true, loss, "g", {12, 1});
  EXPECT_EQ(fine.rounds, 12);
  EXPECT_EQ(fine.losses.size(), 20u + 2u * 11u);
  EXPECT_NEAR(fine.best_alpha, target, 1e-4);  // the grid alone is 0.013 off
  EXPECT_LT(fine.best_loss, grid.best_loss);
  EXPECT_DOUBLE_EQ(fine.alphas[fine.best_index], fine.best_alpha);
  EXPECT_TRUE(at::equal(fine.scales, awq_scale_candidates(xm, wm, fine.best_alpha, true)));

  // --max_quality's --iter 40 --search-step 2: spacing 0.05 / 3^(r−1) falls below 1e-6 after
  // round 10 (0.05 / 3^10 = 8.5e-7), so round 11 is not run.
  const auto mq = awq_search_scales_host(xm, wm, 20, true, loss, "g", {40, 2});
  EXPECT_EQ(mq.rounds, 10);
  EXPECT_LE(mq.best_loss, fine.best_loss * 1.0001 + 1e-12);
  EXPECT_THROW(awq_search_scales_host(xm, wm, 20, true, loss, "g", {0, 1}), InputError);
}

// A refinement round can only replace the best with a strictly smaller loss: candidates that
// tie with the grid's winner leave it in place.
TEST(AwqSearch, RefinementNeverLeavesAnEqualBest) {
  const auto xm = at::tensor({0.5f, 4.0f, 2.0f}), wm = at::tensor({1.0f, 0.25f, 0.5f});
  int calls = 0;
  auto loss = [&](const at::Tensor&) {
    const int c = calls++;
    return c == 7 || c >= 10 ? 1.0 : 2.0;  // grid point 7 wins; every refinement ties with it
  };
  const auto r = awq_search_scales_host(xm, wm, 10, true, loss, "g", {3, 1});
  EXPECT_EQ(r.best_index, 7);
  EXPECT_DOUBLE_EQ(r.best_alpha, 0.7);
  EXPECT_EQ(calls, 10 + 2 + 2);
}

TEST(AwqSearch, MatchesFloat64Reference) {
  const int64_t k = 128, n = 64;
  const auto x = test::correlated_inputs(256, k, 21);
  const auto w = at::randn({n, k}, test::rng(22)) * 0.05;
  const QuantScheme s{4, 32, true};
  const auto xm = awq_x_mean(x), wm = awq_w_mean({w}, 32);
  auto x64 = x.to(at::kDouble), w64 = w.to(at::kDouble);
  auto y_fp = x.mm(w.t());
  auto y_fp64 = x64.mm(w64.t());
  auto prod = awq_search_scales_host(
      xm, wm, 20, true,
      [&](const at::Tensor& sc) {
        return (x.mm(awq_trial_weight(w, sc, s).t()) - y_fp).pow(2).mean().item<double>();
      },
      "test");
  auto ref = reference::awq_search_f64(xm, wm, 20, true, [&](const at::Tensor& sc) {
    auto q = reference::awq_pseudo_quantize_f64(w64 * sc, s) / sc;
    return (x64.mm(q.t()) - y_fp64).pow(2).mean().item<double>();
  });
  ASSERT_EQ(prod.losses.size(), ref.losses.size());
  for (size_t i = 0; i < ref.losses.size(); ++i)
    EXPECT_NEAR(prod.losses[i] / ref.losses[i], 1.0, kAwqLossRelTol) << "grid point " << i;
  EXPECT_LE(ref.losses[prod.best_index], ref.best_loss * (1 + kAwqArgminRelTol));
  EXPECT_LT(ref.best_loss, ref.losses[0]);  // scaling helps on these uneven activations
}

TEST(AwqApply, NormToLinearUnchanged) {
  const auto x = at::randn({10, 16}, test::rng(30), at::kDouble);
  auto g = at::rand({16}, test::rng(31), at::kDouble) + 0.5;
  auto b = at::randn({16}, test::rng(32), at::kDouble);
  auto w = at::randn({8, 16}, test::rng(33), at::kDouble);
  const auto s = at::rand({16}, test::rng(34), at::kDouble) + 0.2;
  for (auto kind : {NormKind::kPlain, NormKind::kOffsetOne}) {
    auto gk = g.clone(), bk = b.clone(), wk = w.clone();
    auto gain = [&](const at::Tensor& gw) { return kind == NormKind::kPlain ? gw : gw + 1.0; };
    auto before = (x * gain(gk) + bk).mm(wk.t());
    awq_apply_to_norm(gk, &bk, s, kind);
    awq_apply_to_member(wk, s);
    auto after = (x * gain(gk) + bk).mm(wk.t());
    EXPECT_TRUE(at::allclose(before, after, kAwqApplyTol, kAwqApplyTol));
    EXPECT_FALSE(at::allclose(gk, g));
  }
}

TEST(AwqApply, LinearToLinearUnchanged) {
  // prev: 12 output rows (e.g. fused qkv); the member reads only the last 8 (e.g. v).
  const auto x = at::randn({10, 6}, test::rng(40), at::kDouble);
  auto w1 = at::randn({12, 6}, test::rng(41), at::kDouble);
  auto b1 = at::randn({12}, test::rng(42), at::kDouble);
  auto w2 = at::randn({5, 8}, test::rng(43), at::kDouble);
  const auto s = at::rand({8}, test::rng(44), at::kDouble) + 0.2;
  auto run = [&] { return (x.mm(w1.t()) + b1).slice(1, 4).mm(w2.t()); };
  auto before = run();
  auto head = w1.slice(0, 0, 4).clone();
  awq_apply_to_prev_linear(w1, &b1, s);
  awq_apply_to_member(w2, s);
  EXPECT_TRUE(at::allclose(before, run(), kAwqApplyTol, kAwqApplyTol));
  EXPECT_TRUE(at::equal(head, w1.slice(0, 0, 4)));  // rows not feeding the member untouched
  auto xs = x.slice(1, 0, 6).mm(w1.t()).slice(1, 4).clone();
  awq_scale_inputs(xs, at::ones({8}, at::kDouble) * 2.0);
  EXPECT_TRUE(at::allclose(xs * 2.0, x.mm(w1.t()).slice(1, 4)));
}

TEST(AwqClip, ExclusionTable) {
  EXPECT_FALSE(awq_clip_applies("model.layers.0.self_attn.q_proj"));
  EXPECT_FALSE(awq_clip_applies("model.layers.0.self_attn.k_proj"));
  EXPECT_FALSE(awq_clip_applies("transformer.blocks.0.attn.Wqkv"));
  EXPECT_FALSE(awq_clip_applies("encoder.layer.0.attention.self.query"));
  EXPECT_TRUE(awq_clip_applies("model.layers.0.self_attn.v_proj"));
  EXPECT_TRUE(awq_clip_applies("model.layers.0.mlp.down_proj"));
}

TEST(AwqClip, ShrinksOnlyWhereItLowersError) {
  const int64_t n = 24, k = 128, gs = 32;
  const QuantScheme s{4, gs, true};
  auto x = test::correlated_inputs(600, k, 50);
  auto w = at::randn({n, k}, test::rng(51)) * 0.02;
  // Outliers on columns whose activations are tiny: clipping them is nearly free.
  x.select(1, 3).mul_(1e-3);
  w.select(1, 3).fill_(0.5);
  AwqClipOptions opts;
  opts.n_sample_tokens = 200;      // stride 3
  opts.max_chunk_elements = 5000;  // forces several row chunks
  auto r = awq_clip_search(w, x, s, opts);
  ASSERT_EQ(r.max_val.sizes(), (at::IntArrayRef{n, k / gs}));
  // Error of the unclipped weight, computed independently per (row, group).
  auto xs = x.slice(0, 0, 600, 3).to(at::kDouble);
  auto q = reference::awq_pseudo_quantize_f64(w, s);
  auto diff = (q - w.to(at::kDouble)).reshape({n, k / gs, gs});
  auto parts = at::einsum("tgj,ngj->ntg", {xs.reshape({-1, k / gs, gs}), diff});
  auto err1 = parts.pow(2).mean(1);  // [n, groups]
  auto shrunk = r.shrink < 1.0;
  EXPECT_TRUE((r.min_error.to(at::kDouble) <= err1 * (1 + 1e-4) + 1e-12).all().item<bool>());
  EXPECT_TRUE(((r.min_error.to(at::kDouble) < err1) | ~shrunk).all().item<bool>());
  EXPECT_TRUE(shrunk.select(1, 0).all().item<bool>()) << "outlier groups should be clipped";
  auto amax = w.abs().reshape({n, k / gs, gs}).amax(-1);
  EXPECT_TRUE(at::allclose(r.max_val, amax * r.shrink));

  auto ref = reference::awq_clip_f64(w, x, s, opts);
  const double agree =
      ((r.shrink.to(at::kDouble) - ref.shrink).abs() < 1e-6).to(at::kDouble).mean().item<double>();
  EXPECT_GE(agree, kClipAgreement);

  auto clipped = w.clone();
  awq_apply_clip(clipped, r.max_val);
  EXPECT_TRUE(
      (clipped.abs().reshape({n, k / gs, gs}).amax(-1) <= r.max_val + 1e-7).all().item<bool>());
}

// --clip-asym: the lower and upper bounds searched apart. In float64 the production search
// (Gram form) equals the plain per-(row, group) reference (reference::awq_clip_f64, direct form)
// in its choices; its error is never above the symmetric search's (the symmetric pairs are among
// the trials, computed the same way), and it is strictly below where a group is lopsided.
TEST(AwqClip, AsymmetricBoundsMatchTheReferenceAndNeverLoseToSymmetric) {
  const int64_t n = 20, k = 128, gs = 32;
  const QuantScheme s{4, gs, true};
  auto x = test::correlated_inputs(700, k, 60, at::kDouble);
  auto w = at::randn({n, k}, test::rng(61), at::kDouble) * 0.02;
  // Lopsided groups: one large positive entry per row in group 0 and a large negative one in
  // group 2, so the best clamp of one side is not the best of the other.
  w.select(1, 5).fill_(0.25);
  w.select(1, 70).fill_(-0.2);
  AwqClipOptions sym_opts;
  sym_opts.n_sample_tokens = 350;  // stride 2
  AwqClipOptions asym_opts = sym_opts;
  asym_opts.asym = true;
  const AwqClipResult sym = awq_clip_search(w, x, s, sym_opts);
  const AwqClipResult asym = awq_clip_search(w, x, s, asym_opts);
  const AwqClipResult ref = reference::awq_clip_f64(w, x, s, asym_opts);

  auto amax = w.abs().reshape({n, k / gs, gs}).amax(-1);
  EXPECT_TRUE(at::allclose(asym.max_val, amax * asym.shrink, 0, 0));
  EXPECT_TRUE(at::allclose(asym.min_val, -amax * asym.shrink_lower, 0, 0));
  EXPECT_TRUE(at::allclose(sym.min_val, -sym.max_val, 0, 0));
  EXPECT_TRUE(at::equal(sym.shrink_lower, sym.shrink));
  // Against the reference: identical choices, errors equal to rounding.
  EXPECT_TRUE(at::equal(asym.shrink, ref.shrink));
  EXPECT_TRUE(at::equal(asym.shrink_lower, ref.shrink_lower));
  EXPECT_TRUE(at::allclose(asym.min_error, ref.min_error, 1e-9, 1e-18));
  // Never worse than symmetric; strictly better somewhere, with different factors there.
  EXPECT_TRUE((asym.min_error <= sym.min_error).all().item<bool>());
  const auto better = asym.min_error < sym.min_error * (1 - 1e-9);
  EXPECT_GT(better.sum().item<int64_t>(), 0) << "asymmetric bounds never helped";
  EXPECT_TRUE((asym.shrink.ne(asym.shrink_lower) | ~better).all().item<bool>());

  auto clipped = w.clone();
  awq_apply_clip(clipped, asym.min_val, asym.max_val);
  auto g = clipped.reshape({n, k / gs, gs});
  EXPECT_TRUE((g.amax(-1) <= asym.max_val).all().item<bool>());
  EXPECT_TRUE((g.amin(-1) >= asym.min_val).all().item<bool>());
  auto sym_clipped = w.clone(), sym_clipped2 = w.clone();
  awq_apply_clip(sym_clipped, sym.max_val);
  awq_apply_clip(sym_clipped2, sym.min_val, sym.max_val);
  EXPECT_TRUE(at::equal(sym_clipped, sym_clipped2));
}

}  // namespace
}  // namespace sq::solvers
