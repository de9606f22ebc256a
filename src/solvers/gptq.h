// GPTQ (REFERENCE.md §2): Hessian accumulation and the per-linear solve.
//
// CONTRACT
//   HessianAccumulator keeps the raw sum Σ x xᵀ (float64 on every device) and the token
//   count; rank/ adds batches (masked-out tokens — padding — never enter), all-reduces sum() and
//   tokens() across data-parallel ranks if needed, and calls finalize() once: H = (2/N)·Σ x xᵀ.
//   Linears that share an input (q,k,v; gate,up) share one accumulator / one H.
//   gptq_quantize(W [N,K], H [K,K] finalized, scheme, opts) → QuantizedLinear in the canonical
//   layout of quant_grid.h, on W's device. It never modifies its inputs. Steps: dead columns
//   (H[d,d]==0 → H[d,d]=1, W[:,d]=0), act order (columns by descending diag H), damping
//   H += p·mean(diag H)·I with p = damp_percent, ×10 on Cholesky failure up to 1.0, then a
//   diagonal floor (spectrum shifted to ≥ mean(diag H)), then RTN on the GPTQ grid; each
//   counted in stats. Hinv = upper Cholesky of H⁻¹; lazy blocks of block_size columns.
//   g_idx: static groups or no act order → c / G; act order without static groups → pos(c) / G.
//   Group parameters come from the current (error-updated) weights at each group boundary;
//   static groups take them from the original weights (dead columns zeroed) up front;
//   group_size −1 takes one set of parameters per row from the whole (permuted) weight.
#pragma once

#include <cstdint>
#include <string>

#include <ATen/ATen.h>

#include "solvers/quant_grid.h"
#include "solvers/scheme.h"

namespace sq::solvers {

class HessianAccumulator {
 public:
  HessianAccumulator() = default;
  // The running sum is float64 on every device. Per-batch products: float64 on CPU; float32 on
  // other devices (solvers/gram.h gram_f32: tensor cores, exact products for bf16/fp16 inputs),
  // added into the float64 sum — so the total is independent of batch and rank order.
  HessianAccumulator(int64_t in_features, at::Device device);

  // x [..., K]; mask (optional, bool or integral, shape x.shape[:-1]) selects the tokens
  // that count (non-zero = keep). InputError on a K mismatch naming both sizes.
  void add(const at::Tensor& x, const at::Tensor& mask = at::Tensor());
  // Adds another accumulator's sum and count (same K).
  void merge(const HessianAccumulator& other);

  int64_t in_features() const { return k_; }
  int64_t tokens() const { return tokens_; }
  // The raw sum, for in-place cross-rank reduction; set_tokens() after reducing the counts.
  at::Tensor& sum() { return sum_; }
  const at::Tensor& sum() const { return sum_; }
  void set_tokens(int64_t n) { tokens_ = n; }

  // (2 / tokens) · Σ x xᵀ as a new tensor: float64 on CPU, float32 elsewhere (the solvers' work
  // type). InternalError if no token was added.
  at::Tensor finalize() const;

 private:
  int64_t k_ = 0;
  int64_t tokens_ = 0;
  // Per-batch product and finalize() dtype: float64 on CPU, float32 elsewhere.
  at::ScalarType work_type() const { return sum_.is_cpu() ? at::kDouble : at::kFloat; }
  at::Tensor sum_;  // float64
};

struct GptqOptions {
  double damp_percent = 0.01;
  int64_t block_size = 128;
  bool static_groups = false;  // --static-groups (act order itself: QuantScheme::act_order)
};

// Upper Cholesky factor of (H + damp·mean(diag H)·I)⁻¹ with the damping ladder of REFERENCE.md
// §2: damp ×10 per Cholesky failure up to 1.0, then a spectrum shift to ≥ mean(diag H) (the
// "diagonal floor"). Records the escalations, the final damp and the floor in `stats`. Returns an
// undefined tensor when H is non-finite or even the floor fails (the caller falls back to RTN).
// Shared by the per-linear solver and the fused CUDA driver.
at::Tensor damped_inverse_factor(const at::Tensor& h, double damp_percent, SolveStats& stats);

// `name` only labels error messages.
QuantizedLinear gptq_quantize(const at::Tensor& w, const at::Tensor& h, const QuantScheme& scheme,
                              const GptqOptions& opts = {}, const std::string& name = "linear");

}  // namespace sq::solvers
