// RTN / quantization grids against small examples whose codes, zeros and scales are worked out
// by hand in the comments (not produced by the code under test).
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "common/errors.h"
#include "solver_test_util.h"
#include "solvers/quant_grid.h"

namespace sq::solvers {
namespace {

at::Tensor row(std::vector<float> v) {
  return at::tensor(v, at::kFloat).reshape({1, -1});
}
std::vector<int> ints(const at::Tensor& t) {
  auto c = t.to(at::kInt).contiguous().reshape({-1});
  return std::vector<int>(c.data_ptr<int>(), c.data_ptr<int>() + c.numel());
}
std::vector<float> floats(const at::Tensor& t) {
  auto c = t.to(at::kFloat).contiguous().reshape({-1});
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

TEST(QuantGrid, AwqZeroPointTwoBitByHand) {
  // min −1, max 2 → scale 3/3 = 1, zero = −round(−1/1) = 1.
  // q = round(w) + 1: −1→0, −0.5→round half even 0→1, 0.25→1, 2→3; dequant (q−1)·1.
  auto r = quantize_rtn(row({-1.0f, -0.5f, 0.25f, 2.0f}), {2, 4, true}, GridKind::kAwq);
  EXPECT_EQ(ints(r.codes), (std::vector<int>{0, 1, 1, 3}));
  EXPECT_EQ(ints(r.zeros), (std::vector<int>{1}));
  EXPECT_EQ(floats(r.scales), (std::vector<float>{1.0f}));
  EXPECT_EQ(floats(r.dequant), (std::vector<float>{-1.0f, 0.0f, 0.0f, 2.0f}));
}

TEST(QuantGrid, RoundHalfToEven) {
  // min 0, max 3 → scale 1, zero 0: 1.5 → 2, 2.5 → 2 (half to even), 0.5 → 0.
  auto r = quantize_rtn(row({0.0f, 1.5f, 2.5f, 3.0f, 0.5f, 0.0f, 0.0f, 0.0f}), {2, 8, true},
                        GridKind::kAwq);
  EXPECT_EQ(ints(r.codes), (std::vector<int>{0, 2, 2, 3, 0, 0, 0, 0}));
}

TEST(QuantGrid, PerRowGroups) {
  // group −1: row 0 = 0..3 → scale 1; row 1 = 0,2,4,6 → scale 2; both zero 0, codes 0..3.
  auto w = at::tensor({0.0f, 1.0f, 2.0f, 3.0f, 0.0f, 2.0f, 4.0f, 6.0f}).reshape({2, 4});
  auto r = quantize_rtn(w, {2, -1, true}, GridKind::kAwq);
  EXPECT_EQ(r.scales.sizes(), (at::IntArrayRef{1, 2}));
  EXPECT_EQ(floats(r.scales), (std::vector<float>{1.0f, 2.0f}));
  EXPECT_EQ(ints(r.zeros), (std::vector<int>{0, 0}));
  EXPECT_EQ(ints(r.codes), (std::vector<int>{0, 1, 2, 3, 0, 1, 2, 3}));
  EXPECT_EQ(ints(r.g_idx), (std::vector<int>{0, 0, 0, 0}));
}

TEST(QuantGrid, EveryBitWidthRampIsExact) {
  // w = 0.5·(0 .. 2^b−1) → scale 0.5 (fp16 exact), zero 0, codes = the ramp itself.
  for (int bits : {2, 3, 4, 8}) {
    const int levels = 1 << bits;
    auto codes = at::arange(levels, at::kFloat).reshape({1, -1});
    auto r = quantize_rtn(codes * 0.5, {bits, -1, true}, GridKind::kAwq);
    EXPECT_TRUE(at::equal(r.codes, codes.to(at::kInt))) << "bits " << bits;
    EXPECT_EQ(floats(r.scales), (std::vector<float>{0.5f})) << "bits " << bits;
    EXPECT_TRUE(at::equal(r.dequant, codes * 0.5)) << "bits " << bits;
  }
}

TEST(QuantGrid, GroupSizes) {
  // K = 256; in group g the values are (c % 16)·(1 + g): min 0, max 15·(1+g) → 4-bit scale 1+g,
  // zero 0, code c % 16; g_idx[c] = c / G.
  for (int64_t gs : {32, 64, 128}) {
    auto c = at::arange(256, at::kLong);
    auto w = (at::remainder(c, 16) * (1 + at::div(c, gs, "floor"))).to(at::kFloat).reshape({1, -1});
    auto r = quantize_rtn(w, {4, gs, true}, GridKind::kAwq);
    ASSERT_EQ(r.scales.size(0), 256 / gs);
    for (int64_t g = 0; g < 256 / gs; ++g) EXPECT_EQ(r.scales[g][0].item<float>(), float(1 + g));
    EXPECT_TRUE(at::equal(r.codes.reshape({-1}), at::remainder(c, 16).to(at::kInt)));
    EXPECT_TRUE(at::equal(r.g_idx, at::div(c, gs, "floor").to(at::kInt)));
    EXPECT_EQ(r.zeros.max().item<int>(), 0);
  }
}

TEST(QuantGrid, AwqSymmetricByHand) {
  // 4-bit symmetric: max|w| = 7 → scale 7/7 = 1, stored zero 8.
  // −7→1, 3.5→round 4 →12, −2.5→round −2 →6, 7→15.
  auto r = quantize_rtn(row({-7.0f, 3.5f, -2.5f, 7.0f}), {4, 4, false}, GridKind::kAwq);
  EXPECT_EQ(ints(r.codes), (std::vector<int>{1, 12, 6, 15}));
  EXPECT_EQ(ints(r.zeros), (std::vector<int>{8}));
  EXPECT_EQ(floats(r.dequant), (std::vector<float>{-7.0f, 4.0f, -2.0f, 7.0f}));
}

TEST(QuantGrid, GptqSymmetricByHand) {
  // 2-bit sym: max|w| = 1.5 → scale 2·1.5/3 = 1, zero 2.
  // −1.5→round −2 (half even)→0, 0.4→2, 1.0→3, 0.6→round 1→3.
  auto r = quantize_rtn(row({-1.5f, 0.4f, 1.0f, 0.6f}), {2, 4, false}, GridKind::kGptq);
  EXPECT_EQ(ints(r.codes), (std::vector<int>{0, 2, 3, 3}));
  EXPECT_EQ(ints(r.zeros), (std::vector<int>{2}));
  EXPECT_EQ(floats(r.dequant), (std::vector<float>{-2.0f, 0.0f, 1.0f, 1.0f}));
}

TEST(QuantGrid, GptqAsymmetricRangeIncludesZero) {
  // all positive: GPTQ range [0, 3] → scale 1, zero 0, codes round(w): 0.5→0, 1, 2, 3.
  // The AWQ grid instead uses [0.5, 3]: scale 2.5/3.
  auto r = quantize_rtn(row({0.5f, 1.0f, 2.0f, 3.0f}), {2, 4, true}, GridKind::kGptq);
  EXPECT_EQ(ints(r.codes), (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(ints(r.zeros), (std::vector<int>{0}));
  EXPECT_EQ(floats(r.scales), (std::vector<float>{1.0f}));
  auto a = quantize_rtn(row({0.5f, 1.0f, 2.0f, 3.0f}), {2, 4, true}, GridKind::kAwq);
  EXPECT_NEAR(a.scales.item<float>(), 2.5f / 3.0f, 1e-3);
}

TEST(QuantGrid, CanonicalDequantizesExactly) {
  auto gen = test::rng(7);
  auto w = at::randn({48, 256}, gen) * 0.05;
  for (auto grid : {GridKind::kAwq, GridKind::kGptq}) {
    for (int bits : {2, 3, 4, 8}) {
      for (bool zp : {true, false}) {
        QuantScheme s{bits, 64, zp};
        auto r = quantize_rtn(w, s, grid);
        EXPECT_TRUE(at::equal(r.scales, r.scales.to(at::kHalf).to(at::kFloat)));
        EXPECT_TRUE(at::equal(dequantize_canonical(r.codes, r.zeros, r.scales, r.g_idx), r.dequant))
            << s.describe();
        EXPECT_GE(r.codes.min().item<int>(), 0);
        EXPECT_LE(r.codes.max().item<int>(), (1 << bits) - 1);
        EXPECT_TRUE(at::equal(pseudo_quantize(w, s, grid), r.dequant));
      }
    }
  }
}

// Σ|dequant(quant(x)) − x|^norm per row under params p.
at::Tensor norm_error(const at::Tensor& x, const GroupParams& p, int64_t max_q, double norm) {
  return (dequantize_with(quantize_with(x, p, max_q), p) - x).abs().pow(norm).sum(1);
}

// The range search (scheme.mse_norm > 0) tries the plain range first, so per row it is never
// worse than min/max under its norm; on heavy-tailed rows (one outlier per row) shrinking must
// win somewhere, or the search did nothing.
TEST(QuantGrid, GptqMseSearchNeverWorseThanMinMax) {
  auto gen = test::rng(21);
  auto x = at::randn({512, 128}, gen, at::kDouble).to(at::kFloat) * 0.02;
  x.select(1, 5).mul_(8.0);  // an outlier column
  for (bool zp : {true, false}) {
    for (int bits : {3, 4}) {
      const QuantScheme plain{bits, 128, zp};
      QuantScheme searched = plain;
      searched.mse_norm = 2.4;
      const auto p0 = find_group_params(x, plain, GridKind::kGptq);
      const auto p1 = find_group_params(x, searched, GridKind::kGptq);
      const auto e0 = norm_error(x, p0, plain.max_q(), 2.4);
      const auto e1 = norm_error(x, p1, plain.max_q(), 2.4);
      const std::string what = "w" + std::to_string(bits) + (zp ? " asym" : " sym");
      EXPECT_TRUE((e1 <= e0).all().item<bool>()) << what;
      EXPECT_GT((e1 < e0).to(at::kDouble).mean().item<double>(), 0.5) << what;
      // Scales stay fp16-representable and no larger than the plain range's; zeros integral.
      EXPECT_TRUE(at::equal(p1.scale, p1.scale.to(at::kHalf).to(at::kFloat))) << what;
      EXPECT_TRUE((p1.scale <= p0.scale).all().item<bool>()) << what;
      EXPECT_TRUE(at::equal(p1.zero, p1.zero.round())) << what;
      if (!zp) EXPECT_TRUE((p1.zero == double(1 << (bits - 1))).all().item<bool>()) << what;
    }
  }
}

// A row worked by hand: {−1, 0, 0.1, 0.2, 0.3, 4} at 2 bits asym, norm 2. Shrink p gives the
// range [−p, 4p], scale 5p/3, zero round(0.6) = 1, grid {−5p/3, 0, 5p/3, 10p/3}. The outlier 4
// always takes code 3 (error 4 − 10p/3); 0.1..0.3 take code 1 (errors² 0.14). For p ≥ 0.6, −1
// takes code 0 (error 5p/3 − 1): f(p) = (5p/3 − 1)² + 0.14 + (4 − 10p/3)², f(1) ≈ 1.03 and
// f'(p) = (10/3)(5p/3 − 1) − (20/3)(4 − 10p/3) < 0 on [0.6, 1], so every shrink is worse; for
// p < 0.6 the outlier alone costs (4 − 2)² = 4. The plain range must be kept.
TEST(QuantGrid, GptqMseKeepsThePlainRangeWhenShrinkingHurts) {
  auto x = row({-1.0f, 0.0f, 0.1f, 0.2f, 0.3f, 4.0f});
  QuantScheme s{2, 6, true};
  const auto plain = find_group_params(x, s, GridKind::kGptq);
  s.mse_norm = 2.0;
  const auto searched = find_group_params(x, s, GridKind::kGptq);
  EXPECT_EQ(floats(searched.scale), floats(plain.scale));
  EXPECT_EQ(floats(searched.zero), floats(plain.zero));
}

TEST(QuantGrid, RejectsBadSchemes) {
  auto w = at::zeros({2, 96});
  EXPECT_THROW(quantize_rtn(w, {4, 64, true}, GridKind::kAwq, "x"), InputError);
  EXPECT_THROW(quantize_rtn(w, {5, 32, true}, GridKind::kAwq, "x"), InputError);
  try {
    quantize_rtn(w, {4, 64, true}, GridKind::kAwq, "layers.0.mlp.up_proj");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("layers.0.mlp.up_proj"), std::string::npos);
  }
}

}  // namespace
}  // namespace sq::solvers
