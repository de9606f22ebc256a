// The AWQ search loss of a scope that is one linear layer (AutoAWQ's up → down and v → o groups)
// as a quadratic form: for inputs X and the weight change ΔW = W_trial − W,
//   Σ ‖X W_trialᵀ − X Wᵀ‖² = Σ_r ΔW_r H ΔW_rᵀ   with H = XᵀX,
// so one Gram matrix per group replaces a forward pass over every calibration token per grid
// point (llama-1b down_proj: 275 GFLOP instead of 2.2 TFLOP per point). Mathematically the loss
// of the direct path; numerically it is the exact loss (no rounding of the layer outputs to the
// block dtype, which the direct path adds as a nearly constant floor), computed on tensor cores.
//
// CONTRACT
//   * AwqGramLoss(x, chunk_rows): x [rows, K] in any floating dtype on any device; H = Σ x xᵀ in
//     float32 through solvers/gram.h gram_f32's fast path (tensor cores for bf16/fp16 on CUDA,
//     exact products, float32 accumulation), chunk_rows rows at a time (bounded temporaries).
//   * loss(w_trial, w) = Σ_r (w_trial − w)_r H (w_trial − w)_rᵀ as a 0-dim float64 tensor on the
//     device (no host sync); w_trial, w [N, K] any floating dtype. On CUDA the [N,K]·[K,K]
//     product runs in TF32 (ΔW and H rounded to 11 significant bits, round-to-nearest: the loss
//     moves by ~1e-6 relative; within kAwqGramRelTol of the float64 direct loss, which
//     tests/solvers/test_awq_gram.cpp checks on the GPU); on CPU in float32.
//   * rows() is the number of input rows (the direct path's loss divides by rows · N).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

namespace sq::solvers {

constexpr double kAwqGramRelTol = 1e-4;

class AwqGramLoss {
 public:
  explicit AwqGramLoss(const at::Tensor& x, int64_t chunk_rows = 8192);
  at::Tensor loss(const at::Tensor& w_trial, const at::Tensor& w) const;
  int64_t rows() const { return rows_; }
  const at::Tensor& gram() const { return h_; }

 private:
  at::Tensor h_;  // [K, K] float32
  int64_t rows_ = 0;
};

}  // namespace sq::solvers
