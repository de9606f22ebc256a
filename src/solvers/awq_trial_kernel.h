// The fused AWQ trial weight Q(W·diag(s))/diag(s) (awq.h awq_trial_weight) as one CUDA kernel,
// free of ATen so that the .cu compiles with plain nvcc: one warp per (row, group) finds the
// group's range of w·s, derives the AWQ grid parameters (quant_grid.cpp awq_zero_point /
// awq_symmetric, fp16-rounded scale) and writes the dequantized value divided by s in the
// weight's own dtype. The search calls it 20 times per scaling group, replacing ~15 elementwise
// ATen passes over fp32 copies of the weights.
//
// CONTRACT
//   w, out: [n_rows, k] row-major, dtype `dtype` (0 fp32, 1 bf16, 2 fp16); s: [k] fp32;
//   group divides k. Same arithmetic as the ATen reference on CUDA (scalar divisions as
//   reciprocal multiplies, tensor divisions true divisions, round half to even), so the result
//   equals awq_trial_weight(w, s).to(dtype) — tests/solvers/test_awq_trial_cuda.cpp checks it.
#pragma once

#include <cstdint>

namespace sq::solvers::kernel {

struct AwqTrialArgs {
  const void* w = nullptr;
  const float* s = nullptr;
  void* out = nullptr;
  int64_t n_rows = 0, k = 0;
  int64_t group = 128;
  int dtype = 1;  // 0 fp32, 1 bf16, 2 fp16
  int max_q = 15;
  int half_q = 8;  // 2^(bits−1): the symmetric grid's zero point
  int zero_point = 1;
};

// Launches on `stream` (cudaStream_t; nullptr = legacy default). Returns the cudaError_t as int.
int awq_trial_cuda(const AwqTrialArgs& a, void* stream);

}  // namespace sq::solvers::kernel
