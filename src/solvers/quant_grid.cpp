// Quantization grids (AWQ pseudo-quantize, GPTQ quantizer), RTN and the canonical result.
// Every function works in float32 on the input's device; the grid rules live in one table.
#include "solvers/quant_grid.h"

#include <algorithm>
#include <array>
#include <vector>

#include "common/check.h"

namespace sq::solvers {
namespace {

// fp16 is what the writers store; rounding here (and flooring at the smallest fp16 subnormal)
// keeps the fake-quantized weight identical to what a reader dequantizes.
constexpr double kFp16MinSubnormal = 5.9604644775390625e-08;  // 2^-24
constexpr double kFp16Max = 65504.0;

at::Tensor round_scale_to_fp16(const at::Tensor& s) {
  return s.to(at::kHalf).to(at::kFloat).clamp(kFp16MinSubnormal, kFp16Max);
}

using ParamFn = GroupParams (*)(const at::Tensor& x, const QuantScheme& scheme);

// §1.6: scale from the full range, zero point clamped into the code range.
GroupParams awq_zero_point(const at::Tensor& x, const QuantScheme& s) {
  const double max_q = static_cast<double>(s.max_q());
  auto mx = x.amax(1);
  auto mn = x.amin(1);
  auto scale = round_scale_to_fp16((mx - mn).clamp_min(1e-5) / max_q);
  auto zero = (-(mn / scale).round()).clamp(0.0, max_q);
  return {scale, zero};
}

// AutoAWQ symmetric: q ∈ [−2^(b−1), 2^(b−1)−1], stored with zero 2^(b−1).
GroupParams awq_symmetric(const at::Tensor& x, const QuantScheme& s) {
  const double half = static_cast<double>(int64_t{1} << (s.bits - 1));
  auto scale = round_scale_to_fp16(x.abs().amax(1).clamp_min(1e-5) / (half - 1.0));
  return {scale, at::full_like(scale, half)};
}

// §2 quantizer's parameters for the per-row range [xmin, xmax] (xmin ≤ 0 ≤ xmax).
GroupParams gptq_params_of_range(const at::Tensor& xmin, const at::Tensor& xmax,
                                 const QuantScheme& s) {
  const double max_q = static_cast<double>(s.max_q());
  auto scale = round_scale_to_fp16((xmax - xmin) / max_q);
  at::Tensor zero = s.zero_point
                        ? (-xmin / scale).round().clamp(0.0, max_q)
                        : at::full_like(scale, static_cast<double>(int64_t{1} << (s.bits - 1)));
  return {scale, zero};
}

// Trials of the range search per batch: bounds the [trials, R, C] temporaries to ~64 MiB.
constexpr int64_t kMseBatchElements = int64_t{1} << 24;

// The range search (scheme.mse_norm > 0): shrink the range by 1 − i/grid, keep per row the first
// trial with the smallest Σ|dequant(quant(x)) − x|^norm. Trial 0 is the plain range, so the
// result is never worse than it under that norm. Batched over trials; the first minimum wins, as
// in a sequential "strictly better" scan.
GroupParams gptq_mse_search(const at::Tensor& x, const at::Tensor& xmin, const at::Tensor& xmax,
                            const QuantScheme& s) {
  const int64_t rows = x.size(0), cols = x.size(1);
  const int64_t per_batch =
      std::max<int64_t>(1, kMseBatchElements / std::max<int64_t>(rows * cols, 1));
  const double max_q = static_cast<double>(s.max_q());
  std::vector<at::Tensor> errs, scales, zeros;
  for (int64_t t0 = 0; t0 < MseGrid::kSteps; t0 += per_batch) {
    const int64_t t1 = std::min<int64_t>(t0 + per_batch, MseGrid::kSteps);
    auto shrink = 1.0 - at::arange(t0, t1, x.options()) / static_cast<double>(MseGrid::kGrid);
    auto p = gptq_params_of_range(shrink.unsqueeze(1) * xmin, shrink.unsqueeze(1) * xmax, s);
    auto sc = p.scale.unsqueeze(2), z = p.zero.unsqueeze(2);  // [T, R, 1]
    auto q = ((x / sc).round() + z).clamp(0.0, max_q);
    errs.push_back(((q - z) * sc - x).abs().pow(s.mse_norm).sum(2));  // [T, R]
    scales.push_back(p.scale);
    zeros.push_back(p.zero);
  }
  auto err = at::cat(errs, 0);
  auto best = std::get<0>(err.min(0));
  auto trial = at::arange(err.size(0), x.options().dtype(at::kLong)).unsqueeze(1).expand_as(err);
  auto first = std::get<0>(
      at::where(err == best.unsqueeze(0), trial, at::full_like(trial, err.size(0))).min(0));
  auto pick = [&](const std::vector<at::Tensor>& v) {
    return at::cat(v, 0).gather(0, first.unsqueeze(0)).squeeze(0);
  };
  return {pick(scales), pick(zeros)};
}

// §2 quantizer: the range always includes 0; an all-zero row gets the range [−1, 1].
GroupParams gptq_range(const at::Tensor& x, const QuantScheme& s) {
  auto xmin = x.amin(1).clamp_max(0.0);
  auto xmax = x.amax(1).clamp_min(0.0);
  if (!s.zero_point) {
    xmax = at::maximum(xmin.abs(), xmax);
    xmin = -xmax;
  }
  auto empty = (xmin == 0) & (xmax == 0);
  xmin = at::where(empty, at::full_like(xmin, -1.0), xmin);
  xmax = at::where(empty, at::full_like(xmax, 1.0), xmax);
  if (s.mse_norm > 0) return gptq_mse_search(x, xmin, xmax, s);
  return gptq_params_of_range(xmin, xmax, s);
}

struct GridRow {
  GridKind grid;
  bool zero_point;
  ParamFn fn;
};
constexpr std::array<GridRow, 4> kGrids = {{
    {GridKind::kAwq, true, awq_zero_point},
    {GridKind::kAwq, false, awq_symmetric},
    {GridKind::kGptq, true, gptq_range},
    {GridKind::kGptq, false, gptq_range},
}};

ParamFn param_fn(GridKind grid, bool zero_point) {
  for (const auto& row : kGrids) {
    if (row.grid == grid && row.zero_point == zero_point) return row.fn;
  }
  SQ_CHECK(false, "no quantization grid row for this kind");
  return nullptr;
}

int64_t checked_group(const at::Tensor& w, const QuantScheme& scheme, const std::string& name) {
  SQ_REQUIRE(w.dim() == 2, name << ": expected a 2-D weight [out, in], got " << w.dim() << " dims");
  const int64_t k = w.size(1);
  const int64_t g = scheme.group_for(k);
  SQ_REQUIRE(k % g == 0, name << ": group size " << g << " does not divide in_features " << k
                              << " (weight shape [" << w.size(0) << ", " << k << "])");
  return g;
}

}  // namespace

void validate_scheme(const QuantScheme& scheme, const std::string& name) {
  constexpr std::array<int, 4> kBits = {2, 3, 4, 8};
  bool ok = false;
  for (int b : kBits) ok = ok || b == scheme.bits;
  SQ_REQUIRE(ok, name << ": bits must be 2, 3, 4 or 8, got " << scheme.bits);
  SQ_REQUIRE(scheme.group_size == -1 || scheme.group_size > 0,
             name << ": group size must be -1 (per row) or positive, got " << scheme.group_size);
}

GroupParams find_group_params(const at::Tensor& w, const QuantScheme& scheme, GridKind grid) {
  SQ_CHECK(w.dim() == 2, "find_group_params expects [rows, cols], got " << w.dim() << " dims");
  return param_fn(grid, scheme.zero_point)(w.to(at::kFloat), scheme);
}

at::Tensor quantize_with(const at::Tensor& w, const GroupParams& p, int64_t max_q) {
  auto x = w.to(at::kFloat);
  return ((x / p.scale.unsqueeze(1)).round() + p.zero.unsqueeze(1))
      .clamp(0.0, static_cast<double>(max_q));
}

at::Tensor dequantize_with(const at::Tensor& codes, const GroupParams& p) {
  return (codes - p.zero.unsqueeze(1)) * p.scale.unsqueeze(1);
}

at::Tensor pseudo_quantize(const at::Tensor& w, const QuantScheme& scheme, GridKind grid) {
  const int64_t g = checked_group(w, scheme, "pseudo_quantize");
  auto x = w.to(at::kFloat).reshape({-1, g});
  auto p = find_group_params(x, scheme, grid);
  return dequantize_with(quantize_with(x, p, scheme.max_q()), p).reshape(w.sizes());
}

QuantizedLinear quantize_rtn(const at::Tensor& w, const QuantScheme& scheme, GridKind grid,
                             const std::string& name) {
  validate_scheme(scheme, name);
  const int64_t g = checked_group(w, scheme, name);
  const int64_t n = w.size(0), k = w.size(1), n_groups = k / g;
  auto x = w.to(at::kFloat).reshape({n * n_groups, g});
  auto p = find_group_params(x, scheme, grid);
  auto codes = quantize_with(x, p, scheme.max_q());
  QuantizedLinear out;
  out.dequant = dequantize_with(codes, p).reshape({n, k});
  out.codes = codes.reshape({n, k}).to(at::kInt);
  out.scales = p.scale.reshape({n, n_groups}).t().contiguous();
  out.zeros = p.zero.reshape({n, n_groups}).t().contiguous().to(at::kInt);
  out.g_idx = at::div(at::arange(k, w.options().dtype(at::kLong)), g, "floor").to(at::kInt);
  out.stats.error = (w.to(at::kFloat) - out.dequant).pow(2).sum().item<double>();
  return out;
}

at::Tensor dequantize_canonical(const at::Tensor& codes, const at::Tensor& zeros,
                                const at::Tensor& scales, const at::Tensor& g_idx) {
  auto gi = g_idx.to(at::kLong);
  auto z = zeros.index_select(0, gi).t();  // [N, K]
  auto s = scales.to(at::kHalf).to(at::kFloat).index_select(0, gi).t();
  return (codes - z).to(at::kFloat) * s;
}

}  // namespace sq::solvers
