// The fused GPTQ solver: the reference algorithm of gptq.h with the per-block column loop done
// by one kernel (gptq_cuda_kernel.h) for all rows at once, and several linears that share one
// Hessian (q,k,v; gate,up) solved as ONE problem — their rows stacked — so the Hessian's dead
// columns, act-order permutation, damping and Cholesky factorisation are computed once.
//
// CONTRACT
//   gptq_quantize_fused(ws, H, scheme, opts, names) → one QuantizedLinear per ws[i] (each
//   [N_i, K], same K), equal to gptq_quantize(ws[i], H, …) up to float rounding order
//   (tests/solvers/test_gptq_cuda*.cpp name the tolerance). The stats other than `error` (dead
//   columns, damping, floor, RTN fallback) are the shared Hessian's. Runs on ws' device: the
//   CUDA kernel on a CUDA device (CUDA builds only; BackendError otherwise), its host emulation
//   on the CPU. Configurations the kernel does not cover (block_size > 128, a group boundary
//   inside a block whose group ends past it, the range search of scheme.mse_norm > 0 with dynamic
//   groups) fall back to gptq_quantize per linear.
//   gptq_fused_supported(K, scheme, opts) tells whether the kernel path is taken.
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "solvers/gptq.h"
#include "solvers/quant_grid.h"

namespace sq::solvers {

// True in builds with the CUDA kernel compiled in (SQ_WITH_CUDA).
bool gptq_cuda_built();
bool gptq_fused_supported(int64_t k, const QuantScheme& scheme, const GptqOptions& opts);

std::vector<QuantizedLinear> gptq_quantize_fused(const std::vector<at::Tensor>& ws,
                                                 const at::Tensor& h, const QuantScheme& scheme,
                                                 const GptqOptions& opts,
                                                 const std::vector<std::string>& names);

}  // namespace sq::solvers
