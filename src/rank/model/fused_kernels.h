// Fused elementwise CUDA kernels for the calibration forwards and the AWQ loss, free of ATen so
// that the .cu compiles with plain nvcc. rank/model/fused.h wraps them for ATen tensors and keeps
// the ATen expressions they replace as the reference.
//
// CONTRACT (dtype codes: 0 fp32, 1 bf16, 2 fp16; every pointer on the current CUDA device)
//   * gated_silu_cuda: out[i] = silu(g[i]) · u[i] over n contiguous elements, rounded exactly as
//     ATen's two kernels round: silu in float (x / (1 + expf(−x))) stored in the dtype, then the
//     product of the two dtype values in float stored in the dtype. Bit-identical to
//     at::silu(g) * u.
//   * rotary_half_cuda: x and out [B, H, T, D] with the given element strides (out may have other
//     strides than x), cos/sin [B, T, D] with element strides (0 for broadcast dims), D even:
//     out = x·cos + rotate_half(x)·sin with rotate_half(x) = [−x₂, x₁], each product and the sum
//     rounded to the dtype (no fused multiply-add) — bit-identical to the ATen expression of
//     layers::apply_rotary for the "half" style over the whole head dimension.
//   * sum_sq_diff_cuda: *result (one float on the device) = Σ_i float(dtype(a[i] − b[i]))² over n
//     contiguous elements, in a fixed order (per-block partial sums in `partials`, at least
//     sum_sq_diff_partials(n) floats, then one block adds them): the same value on every run.
//   Each launches on `stream` (cudaStream_t; nullptr = legacy default) and returns the
//   cudaError_t of the launch as int.
#pragma once

#include <cstdint>

namespace sq::rank::kernel {

int gated_silu_cuda(const void* g, const void* u, void* out, int64_t n, int dtype, void* stream);

struct RotaryArgs {
  const void* x = nullptr;
  void* out = nullptr;
  const void* cos = nullptr;
  const void* sin = nullptr;
  int64_t B = 0, H = 0, T = 0, D = 0;
  int64_t xs[4] = {0, 0, 0, 0};  // x strides (elements) for B, H, T, D
  int64_t os[4] = {0, 0, 0, 0};  // out strides
  int64_t cs[3] = {0, 0, 0};     // cos/sin strides for B, T, D
  int dtype = 1;
};
int rotary_half_cuda(const RotaryArgs& a, void* stream);

int64_t sum_sq_diff_partials(int64_t n);
int sum_sq_diff_cuda(const void* a, const void* b, int64_t n, int dtype, float* partials,
                     float* result, void* stream);

}  // namespace sq::rank::kernel
