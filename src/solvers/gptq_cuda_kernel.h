// The fused GPTQ column loop for one lazy block (≤ 128 columns), free of ATen so that the .cu
// compiles with plain nvcc. gptq_cuda.cpp drives it block after block and does the lazy
// update of the remaining columns as one matmul.
//
// CONTRACT (one call = one block of `count` columns for all `n_rows` rows)
//   For i = 0 .. count−1, per row r (rows are independent):
//     if col_end[i] > 0: group parameters from the row's CURRENT working columns [i, col_end[i])
//       (the GPTQ grid of quant_grid.h: range includes 0, fp16-rounded scale) are stored into
//       scale/zero[col_group[i]·n_rows + r]; else they are read from there.
//     q = clamp(rint(w[i]/scale) + zero, 0, max_q); dq = (q − zero)·scale;
//     e = (w[i] − dq) / hinv[i,i]; loss[r] += e²/2; w[j] −= e·hinv[i,j] for j ≥ i.
//   Outputs codes/deq/err [n_rows, count]; `w` is consumed (left in an unspecified state).
//   `recip_div` selects how a division by a scalar is done: multiply by the reciprocal (what
//   ATen's CUDA kernels do) or divide (ATen's CPU kernels), so each path can track the
//   reference on the same device.
#pragma once

#include <math.h>

#include <cstdint>

#ifdef __CUDACC__
#define SQ_HD __host__ __device__
#else
#define SQ_HD
#endif

namespace sq::solvers::kernel {

constexpr int kMaxBlock = 128;

struct GptqBlockArgs {
  float* w = nullptr;           // [n_rows, count] working copy (row-major)
  const float* hinv = nullptr;  // [count, count] block of the upper Cholesky factor of H⁻¹
  float* codes = nullptr;       // [n_rows, count]
  float* deq = nullptr;         // [n_rows, count]
  float* err = nullptr;         // [n_rows, count]
  float* loss = nullptr;        // [n_rows], accumulated
  float* scale = nullptr;       // [n_groups, n_rows]
  float* zero = nullptr;        // [n_groups, n_rows]
  int n_rows = 0, count = 0;
  int max_q = 15;
  int half_q = 8;  // 2^(bits−1), the symmetric zero point
  int zero_point = 1;
  int recip_div = 0;
  int col_group[kMaxBlock];
  int col_end[kMaxBlock];
};

// x rounded to the nearest-even fp16 value, returned as float (overflow gives ±65536 or
// more, which the caller's clamp to 65504 maps like an fp16 infinity would).
SQ_HD inline float round_to_fp16(float x) {
  union {
    float f;
    uint32_t u;
  } v{x};
  const uint32_t a = v.u & 0x7FFFFFFFu;
  if (a < 0x38800000u) {  // below 2^-14: fp16 subnormals, quantum 2^-24
    return rintf(x * 16777216.0f) * (1.0f / 16777216.0f);
  }
  v.u = (v.u + 0x0FFFu + ((v.u >> 13) & 1u)) & ~0x1FFFu;
  return v.f;
}

SQ_HD inline float div_scalar(float a, float b, int recip) {
  return recip ? a * (1.0f / b) : a / b;
}

// GPTQ grid parameters from a row's min and max over the group (quant_grid.cpp gptq_range).
SQ_HD inline void gptq_params(float mn, float mx, const GptqBlockArgs& a, float& scale,
                              float& zero) {
  float xmin = fminf(mn, 0.0f), xmax = fmaxf(mx, 0.0f);
  if (!a.zero_point) {
    xmax = fmaxf(fabsf(xmin), xmax);
    xmin = -xmax;
  }
  if (xmin == 0.0f && xmax == 0.0f) {
    xmin = -1.0f;
    xmax = 1.0f;
  }
  scale = round_to_fp16(div_scalar(xmax - xmin, static_cast<float>(a.max_q), a.recip_div));
  scale = fminf(fmaxf(scale, 5.9604644775390625e-08f), 65504.0f);
  zero = a.zero_point ? fminf(fmaxf(rintf(-xmin / scale), 0.0f), static_cast<float>(a.max_q))
                      : static_cast<float>(a.half_q);
}

SQ_HD inline float gptq_code(float w, float scale, float zero, int max_q) {
  return fminf(fmaxf(rintf(w / scale) + zero, 0.0f), static_cast<float>(max_q));
}

// CPU emulation of the kernel, same arithmetic (tests and CPU runs of the fused driver).
void gptq_block_host(const GptqBlockArgs& a);
// Launches the kernel on `stream` (a cudaStream_t; nullptr = legacy default stream).
// Returns the cudaError_t of the launch as int (0 = success). Defined only in CUDA builds.
int gptq_block_cuda(const GptqBlockArgs& a, void* stream);

}  // namespace sq::solvers::kernel
