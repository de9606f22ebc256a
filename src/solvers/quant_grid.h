// Quantization grids and the canonical quantized-linear result shared by every solver and by
// the packers (io/format/pack.h).
//
// CONTRACT
//   Shapes: W is [N, K] (N = out_features, K = in_features), G = scheme.group_for(K),
//   n_groups = ceil(K / G). Functions take any floating dtype on any device and return float32
//   (codes/zeros/g_idx int32) on the input's device.
//   Two grids (REFERENCE.md):
//     GridKind::kAwq  — AutoAWQ pseudo-quantize (§1.6). zero point: scale = max(max−min,1e-5)/maxq,
//                       zero = clamp(−round(min/scale), 0, maxq). symmetric: scale =
//                       max(max|w|,1e-5)/(2^(b−1)−1), stored zero 2^(b−1).
//     GridKind::kGptq — the GPTQ quantizer (§2): range always includes 0; sym: zero = 2^(b−1),
//                       scale = 2·max|w|/maxq; asym: scale = (max−min)/maxq, zero =
//                       round(−min/scale). With scheme.mse_norm > 0 the range [min, max] is
//                       searched per row over the shrinks 1 − i/100, i = 0..79 (MseGrid), keeping
//                       the first with the smallest Σ|dequant(quant(w)) − w|^mse_norm (fp16
//                       scales in every trial), never worse than the plain range under that norm.
//                       The AWQ grid ignores mse_norm (its clip search plays that role).
//   Every scale is rounded to fp16 (and kept in [2^-24, 65504]) BEFORE codes are computed, so
//   (codes − zeros)·scales with fp16 scales reproduces `dequant` bit for bit.
//   Rounding is round-half-to-even everywhere (at::round).
#pragma once

#include <cstdint>
#include <string>

#include <ATen/ATen.h>

#include "solvers/scheme.h"

namespace sq::solvers {

enum class GridKind { kAwq, kGptq };

// Counters a solver reports for one linear. Fallback counters are zero for RTN/AWQ.
struct SolveStats {
  double error = 0.0;             // GPTQ: Σ (w−q)²/Hinv[i,i]² / 2 (the reference's "loss");
                                  // RTN/AWQ: Σ (w−q)² over the weight.
  int damp_escalations = 0;       // GPTQ: extra Cholesky attempts with a larger damping
  double final_damp_percent = 0;  // GPTQ: the damping that succeeded (0 when none was used)
  bool diagonal_floor = false;    // GPTQ: the spectrum shift was needed after damping 1.0
  bool rtn_fallback = false;      // GPTQ: the linear fell back to plain RTN
  int64_t dead_columns = 0;       // GPTQ: columns with H[d,d] == 0 (weights zeroed)
};

// The canonical quantized linear. dequant[n,k] == (codes[n,k] − zeros[g_idx[k],n]) ·
// fp16(scales[g_idx[k],n]) exactly (scales already hold fp16-representable values).
struct QuantizedLinear {
  at::Tensor codes;    // int32 [N, K], values 0 .. 2^b − 1
  at::Tensor zeros;    // int32 [n_groups, N], true zero points (symmetric: 2^(b−1))
  at::Tensor scales;   // float32 [n_groups, N], fp16-representable
  at::Tensor g_idx;    // int32 [K], group of each input column
  at::Tensor dequant;  // float32 [N, K] fake-quantized weight
  SolveStats stats;
};

// Per-row quantization parameters of one group (a [R, C] slice, one group per row).
struct GroupParams {
  at::Tensor scale;  // float32 [R], fp16-representable
  at::Tensor zero;   // float32 [R], integral values in 0 .. maxq
};

// Parameters for w [R, C] treated as one group per row.
GroupParams find_group_params(const at::Tensor& w, const QuantScheme& scheme, GridKind grid);
// Integer codes (as float32, integral) of w [R, C] under per-row params.
at::Tensor quantize_with(const at::Tensor& w, const GroupParams& p, int64_t max_q);
// (codes − zero)·scale, per row.
at::Tensor dequantize_with(const at::Tensor& codes, const GroupParams& p);

// Group-wise fake quantization of W [N, K] (K % G == 0 required): float32 [N, K].
// The AWQ search and clip search call this on every trial; it is RTN on the grid.
at::Tensor pseudo_quantize(const at::Tensor& w, const QuantScheme& scheme, GridKind grid);

// Round-to-nearest of W [N, K] into the canonical representation (K % G == 0 required;
// InputError naming `name` and the shape otherwise). g_idx[c] = c / G.
QuantizedLinear quantize_rtn(const at::Tensor& w, const QuantScheme& scheme, GridKind grid,
                             const std::string& name = "linear");

// Rebuilds the float32 [N, K] weight from the canonical tensors (what a reader of the written
// file computes). Used by tests and by the packers' round-trip checks.
at::Tensor dequantize_canonical(const at::Tensor& codes, const at::Tensor& zeros,
                                const at::Tensor& scales, const at::Tensor& g_idx);

// Validates bits ∈ {2,3,4,8} and group size (−1 or > 0); InputError naming `name` otherwise.
void validate_scheme(const QuantScheme& scheme, const std::string& name);

}  // namespace sq::solvers
