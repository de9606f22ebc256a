// GPTQ: Hessian accumulation, production solve vs the float64 reference, quality vs RTN,
// dead columns, act order / static groups g_idx, fallbacks, sym/asym zeros, exact dequant.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "common/errors.h"
#include "solver_test_util.h"
#include "solvers/gptq.h"
#include "solvers/reference.h"

namespace sq::solvers {
namespace {

// Fraction of codes that must be identical between the fp32 production solve and the fp64
// reference: differences come only from rounding ties flipped by fp32 error accumulation.
constexpr double kGptqCodeAgreement = 0.999;
// Codes that differ may differ by one step at most.
constexpr int kGptqMaxCodeDelta = 1;
// Relative difference of group scales found on error-updated weights (fp16-rounded both).
constexpr double kGptqScaleRelTol = 2e-3;
// Relative difference of the output error ||(W−Q)Xᵀ||² between production and reference.
constexpr double kGptqOutputErrorRelTol = 1e-2;
// GPTQ must beat RTN on the output error for correlated inputs by at least this factor.
constexpr double kGptqVsRtnMaxRatio = 0.9;

at::Tensor hessian_of(const at::Tensor& x) {
  HessianAccumulator acc(x.size(1), at::kCPU);
  acc.add(x);
  return acc.finalize();
}

double output_error(const at::Tensor& w, const at::Tensor& q, const at::Tensor& x) {
  auto d = (w.to(at::kDouble) - q.to(at::kDouble)).mm(x.to(at::kDouble).t());
  return d.pow(2).sum().item<double>();
}

struct Case {
  const char* name;
  QuantScheme scheme;
  GptqOptions opts;
};

const Case kCases[] = {
    {"w4 g128 sym", {4, 128, false}, {}},
    {"w4 g32 asym", {4, 32, true}, {}},
    {"w3 row sym", {3, -1, false}, {}},
    {"w4 g64 act-order", {4, 64, false, true}, {0.01, 128, false}},
    {"w4 g64 act-order static", {4, 64, false, true}, {0.01, 128, true}},
    {"w8 g128 asym blocks 32", {8, 128, true, false}, {0.01, 32, false}},
};

TEST(Hessian, MaskedSumAndScale) {
  auto x = test::correlated_inputs(40, 8, 1, at::kDouble).reshape({4, 10, 8});
  auto mask = at::ones({4, 10}, at::kBool);
  mask.slice(1, 7).fill_(false);  // padding: last 3 tokens of each sample
  HessianAccumulator a(8, at::kCPU), b(8, at::kCPU);
  a.add(x.slice(0, 0, 2), mask.slice(0, 0, 2));
  b.add(x.slice(0, 2), mask.slice(0, 2));
  a.merge(b);
  EXPECT_EQ(a.tokens(), 28);
  EXPECT_EQ(a.sum().scalar_type(), at::kDouble);
  auto kept = x.slice(1, 0, 7).reshape({-1, 8});
  auto expect = kept.t().mm(kept) * (2.0 / 28.0);
  EXPECT_TRUE(at::allclose(a.finalize(), expect, 1e-12, 1e-12));
  EXPECT_THROW(a.add(at::zeros({3, 9})), InputError);
}

TEST(Gptq, MatchesFloat64Reference) {
  const auto x = test::correlated_inputs(1024, 256, 2);
  const auto w = at::randn({64, 256}, test::rng(3)) * 0.02;
  const auto h = hessian_of(x);
  for (const auto& c : kCases) {
    auto prod = gptq_quantize(w, h, c.scheme, c.opts, c.name);
    auto ref = reference::gptq_quantize_f64(w, h, c.scheme, c.opts);
    ASSERT_FALSE(prod.stats.rtn_fallback) << c.name;
    EXPECT_TRUE(at::equal(prod.g_idx, ref.g_idx)) << c.name;
    const double agree = (prod.codes == ref.codes).to(at::kDouble).mean().item<double>();
    EXPECT_GE(agree, kGptqCodeAgreement) << c.name;
    EXPECT_LE((prod.codes - ref.codes).abs().max().item<int>(), kGptqMaxCodeDelta) << c.name;
    const double zero_agree = (prod.zeros == ref.zeros).to(at::kDouble).mean().item<double>();
    EXPECT_GE(zero_agree, kGptqCodeAgreement) << c.name;
    auto rel = ((prod.scales.to(at::kDouble) - ref.scales) / ref.scales).abs().max();
    EXPECT_LE(rel.item<double>(), kGptqScaleRelTol) << c.name;
    const double e_prod = output_error(w, prod.dequant, x);
    const double e_ref = output_error(w, ref.dequant, x);
    EXPECT_NEAR(e_prod / e_ref, 1.0, kGptqOutputErrorRelTol) << c.name;
  }
}

// With the range search (--mse) a group's scale is an argmin over 80 shrinks: fp32 and fp64
// may pick neighbouring shrinks where two trials are within rounding of each other, which moves
// that whole group's scale by one grid step (1 %) and its codes by one step.
constexpr double kGptqMseScaleAgreement = 0.98;  // (group, row) scales equal within 2e-3
constexpr int kGptqMseMaxCodeDelta = 1;          // ... codes still at most one step apart
constexpr double kGptqMseOutputErrorRelTol = 2e-2;

TEST(Gptq, MseMatchesFloat64Reference) {
  const auto x = test::correlated_inputs(1024, 256, 2);
  const auto w = at::randn({64, 256}, test::rng(3)) * 0.02;
  const auto h = hessian_of(x);
  const Case cases[] = {
      {"w4 g32 asym mse", {4, 32, true, false, 2.4}, {}},
      {"w3 g64 sym mse", {3, 64, false, false, 2.4}, {}},
      {"w4 g64 asym act-order mse", {4, 64, true, true, 2.4}, {0.01, 128, false}},
      {"w4 g64 asym act-order static mse", {4, 64, true, true, 2.4}, {0.01, 128, true}},
  };
  for (const auto& c : cases) {
    auto prod = gptq_quantize(w, h, c.scheme, c.opts, c.name);
    auto ref = reference::gptq_quantize_f64(w, h, c.scheme, c.opts);
    EXPECT_TRUE(at::equal(prod.g_idx, ref.g_idx)) << c.name;
    const auto rel = ((prod.scales.to(at::kDouble) - ref.scales) / ref.scales).abs();
    const double scale_agree = (rel <= 2e-3).to(at::kDouble).mean().item<double>();
    EXPECT_GE(scale_agree, kGptqMseScaleAgreement) << c.name;
    EXPECT_LE((prod.codes - ref.codes).abs().max().item<int>(), kGptqMseMaxCodeDelta) << c.name;
    const double e_prod = output_error(w, prod.dequant, x);
    const double e_ref = output_error(w, ref.dequant, x);
    EXPECT_NEAR(e_prod / e_ref, 1.0, kGptqMseOutputErrorRelTol) << c.name;
    // The search really ran: some group's scale is smaller than its plain min/max scale.
    QuantScheme plain = c.scheme;
    plain.mse_norm = 0;
    auto base = gptq_quantize(w, h, plain, c.opts, c.name);
    EXPECT_FALSE(at::equal(prod.scales, base.scales)) << c.name;
    std::printf(
        "[ measured ] %s: scale agreement %.4f, output error prod/ref %.4f, mse/plain %.4f\n",
        c.name, scale_agree, e_prod / e_ref, e_prod / output_error(w, base.dequant, x));
  }
}

TEST(Gptq, BeatsRtnOnCorrelatedInputs) {
  const auto x = test::correlated_inputs(2048, 256, 4);
  const auto w = at::randn({96, 256}, test::rng(5)) * 0.02;
  const auto h = hessian_of(x);
  for (const auto& c : kCases) {
    auto g = gptq_quantize(w, h, c.scheme, c.opts, c.name);
    auto r = quantize_rtn(w, c.scheme, GridKind::kGptq);
    EXPECT_LT(output_error(w, g.dequant, x), kGptqVsRtnMaxRatio * output_error(w, r.dequant, x))
        << c.name;
  }
}

TEST(Gptq, CanonicalDequantizesExactly) {
  const auto x = test::correlated_inputs(512, 128, 6);
  const auto w = at::randn({32, 128}, test::rng(7)) * 0.02;
  const auto h = hessian_of(x);
  for (const auto& c : kCases) {
    auto g = gptq_quantize(w, h, c.scheme, c.opts, c.name);
    EXPECT_TRUE(at::equal(g.scales, g.scales.to(at::kHalf).to(at::kFloat))) << c.name;
    EXPECT_TRUE(at::equal(dequantize_canonical(g.codes, g.zeros, g.scales, g.g_idx), g.dequant))
        << c.name;
  }
}

TEST(Gptq, DeadColumnsAreZeroed) {
  auto x = test::correlated_inputs(512, 64, 8);
  x.select(1, 5).zero_();
  x.select(1, 40).zero_();
  const auto w = at::randn({16, 64}, test::rng(9)) * 0.02;
  auto g = gptq_quantize(w, hessian_of(x), {4, 32, true}, {}, "dead");
  EXPECT_EQ(g.stats.dead_columns, 2);
  EXPECT_EQ(g.dequant.select(1, 5).abs().max().item<float>(), 0.0f);
  EXPECT_EQ(g.dequant.select(1, 40).abs().max().item<float>(), 0.0f);
  EXPECT_GT(g.dequant.select(1, 6).abs().max().item<float>(), 0.0f);
}

TEST(Gptq, ActOrderGroupIndex) {
  // diag H increases with the column index, so act order processes columns K−1 … 0:
  // without static groups g_idx[c] = (K−1−c)/G; with static groups g_idx[c] = c/G.
  const int64_t k = 64, gs = 16;
  auto h = at::diag(at::arange(1, k + 1, at::kDouble));
  const auto w = at::randn({8, k}, test::rng(10));
  auto c = at::arange(k, at::kLong);
  auto dyn = gptq_quantize(w, h, {4, gs, false, true}, {0.01, 128, false});
  EXPECT_TRUE(at::equal(dyn.g_idx, at::div(k - 1 - c, gs, "floor").to(at::kInt)));
  auto stat = gptq_quantize(w, h, {4, gs, false, true}, {0.01, 128, true});
  EXPECT_TRUE(at::equal(stat.g_idx, at::div(c, gs, "floor").to(at::kInt)));
  // With a diagonal H there is no error feedback, so both equal RTN on the GPTQ grid.
  auto rtn = quantize_rtn(w, {4, gs, false}, GridKind::kGptq);
  EXPECT_TRUE(at::equal(stat.codes, rtn.codes));
}

TEST(Gptq, SymmetricAndAsymmetricZeros) {
  const auto x = test::correlated_inputs(256, 64, 11);
  auto w = at::randn({16, 64}, test::rng(12)) * 0.02;
  w.select(0, 3).abs_();  // an all-positive row: its asymmetric range starts at 0 → zero 0
  const auto h = hessian_of(x);
  auto sym = gptq_quantize(w, h, {4, 32, false});
  EXPECT_TRUE(at::equal(sym.zeros, at::full_like(sym.zeros, 8)));
  auto asym = gptq_quantize(w, h, {4, 32, true});
  EXPECT_GE(asym.zeros.min().item<int>(), 0);
  EXPECT_LE(asym.zeros.max().item<int>(), 15);
  EXPECT_GT(asym.zeros.max().item<int>(), asym.zeros.min().item<int>());
  EXPECT_EQ(asym.zeros[0][3].item<int>(), 0);
}

TEST(Gptq, FallbacksAreCounted) {
  const int64_t k = 32;
  const auto w = at::randn({8, k}, test::rng(13));
  // Indefinite H: I − 3·vvᵀ has eigenvalue −2, which damping up to 1.0·mean(diag) cannot fix.
  auto v = at::ones({k, 1}, at::kDouble) / std::sqrt(double(k));
  auto h = at::eye(k, at::kDouble) - 3.0 * v.mm(v.t());
  auto g = gptq_quantize(w, h, {4, 16, false}, {}, "indefinite");
  EXPECT_EQ(g.stats.damp_escalations, 2);  // 0.01 → 0.1 → 1.0
  EXPECT_TRUE(g.stats.diagonal_floor);
  EXPECT_FALSE(g.stats.rtn_fallback);
  EXPECT_TRUE(at::isfinite(g.dequant).all().item<bool>());
  // Non-finite H: nothing helps, RTN on the GPTQ grid.
  auto bad = at::eye(k, at::kDouble);
  bad[0][1] = std::nan("");
  auto r = gptq_quantize(w, bad, {4, 16, false}, {}, "nan");
  EXPECT_TRUE(r.stats.rtn_fallback);
  EXPECT_TRUE(at::equal(r.codes, quantize_rtn(w, {4, 16, false}, GridKind::kGptq).codes));
  // A rank-deficient but PSD H (fewer tokens than columns) needs no escalation.
  auto few = test::correlated_inputs(8, k, 14);
  auto ok = gptq_quantize(w, hessian_of(few), {4, 16, false});
  EXPECT_EQ(ok.stats.damp_escalations, 0);
  EXPECT_FALSE(ok.stats.diagonal_floor);
}

TEST(Gptq, RejectsMismatchedHessian) {
  EXPECT_THROW(gptq_quantize(at::zeros({4, 32}), at::eye(16), {4, 16, false}), InputError);
}

}  // namespace
}  // namespace sq::solvers
