// Fused CUDA paths of three elementwise steps of the calibration forwards and the AWQ loss, each
// with its ATen expression kept as the reference (tests/rank/model/test_fused.cpp compares them on
// a GPU). SQ_NO_FUSED=1 in the environment forces the references (A/B timing, bisecting).
//
// CONTRACT
//   * gated_act(g, u, act) = layers::activate(g, act) * u. Fused (bit-identical) for SiLU when
//     both are CUDA tensors of one floating dtype, same shape, contiguous; otherwise the ATen
//     expression.
//   * rotary_half_fused(x, cos, sin, out): x [B,H,T,D] CUDA, cos/sin broadcastable to [B,T,D]
//     (same dtype as x, any strides): returns true and sets `out` (same strides as x when x is
//     dense) to x·cos + rotate_half(x)·sin, bit-identical to layers::apply_rotary's "half" style
//     over the whole head; returns false (out untouched) when it cannot (CPU, other dtypes, odd
//     D, fused paths off).
//   * sum_sq_diff(a, b): Σ float(a − b)² with a − b rounded to the inputs' dtype, as a 0-dim
//     float32 tensor on their device; a and b same shape and dtype. Fused on CUDA (fixed summation
//     order: the same bits on every run; within kSumSqDiffRelTol of the reference's
//     linalg_vector_norm(a − b)², which sums in another order); ATen elsewhere.
#pragma once

#include <ATen/ATen.h>

#include "rank/model/layers.h"

namespace sq::rank {

constexpr double kSumSqDiffRelTol = 1e-5;

bool fused_enabled();
at::Tensor gated_act(const at::Tensor& g, const at::Tensor& u, Activation act);
bool rotary_half_fused(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                       at::Tensor& out);
at::Tensor sum_sq_diff(const at::Tensor& a, const at::Tensor& b);

}  // namespace sq::rank
