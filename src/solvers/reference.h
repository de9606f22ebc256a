// Float64 CPU references for the GPTQ solve, the AWQ scale search and the AWQ clip search.
//
// CONTRACT
//   Plain, slow, straightforward code written independently of the production path (no lazy
//   blocks, no batching, every quantity in double on the CPU); they exist only so tests can
//   compare the production solvers against them with named tolerances. Same inputs and the
//   same canonical outputs (QuantizedLinear: codes/zeros/g_idx int32, scales/dequant float64).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "solvers/awq.h"
#include "solvers/gptq.h"
#include "solvers/quant_grid.h"

namespace sq::solvers::reference {

// Column-by-column GPTQ in float64 (damping escalation included; no diagonal floor / RTN).
QuantizedLinear gptq_quantize_f64(const at::Tensor& w, const at::Tensor& h,
                                  const QuantScheme& scheme, const GptqOptions& opts);

// AWQ pseudo-quantize (zero point or symmetric) in float64, fp16-rounded scales: [N, K].
at::Tensor awq_pseudo_quantize_f64(const at::Tensor& w, const QuantScheme& scheme);

// The scale search in double: candidates computed element by element, loss_fn called per α.
AwqSearchResult awq_search_f64(const at::Tensor& x_mean, const at::Tensor& w_mean, int n_grid,
                               bool duo, const AwqLossFn& loss_fn);

// The clip search in double, one (row, group) at a time over all subsampled tokens.
AwqClipResult awq_clip_f64(const at::Tensor& w, const at::Tensor& x, const QuantScheme& scheme,
                           const AwqClipOptions& opts);

}  // namespace sq::solvers::reference
