// The fused GPTQ block kernel (contract in gptq_cuda_kernel.h). One warp owns one row: the
// row's ≤ 128 working columns live in registers (column j in lane j % 32, slot j / 32), the
// block of H⁻¹'s factor is staged once per CTA in shared memory, and each column step is a
// warp broadcast, a few scalar ops and ≤ 4 FMAs per lane. Group min/max are warp reductions.
#include <cuda_runtime.h>

#include "solvers/gptq_cuda_kernel.h"

namespace sq::solvers::kernel {
namespace {

constexpr int kWarpsPerCta = 8;
constexpr int kSlots = kMaxBlock / 32;
constexpr unsigned kFull = 0xFFFFFFFFu;

__device__ inline float slot_value(const float (&r)[kSlots], int slot) {
  float v = r[0];
#pragma unroll
  for (int s = 1; s < kSlots; ++s) v = slot == s ? r[s] : v;
  return v;
}

__global__ void gptq_block_kernel(const GptqBlockArgs a) {
  extern __shared__ float sh_hinv[];
  const int c = a.count;
  for (int t = threadIdx.x; t < c * c; t += blockDim.x) sh_hinv[t] = a.hinv[t];
  __syncthreads();

  const int lane = threadIdx.x & 31;
  const int row = blockIdx.x * kWarpsPerCta + (threadIdx.x >> 5);
  if (row >= a.n_rows) return;  // whole warps leave together (no later __syncthreads)
  const int64_t o = static_cast<int64_t>(row) * c;

  float w[kSlots], q_out[kSlots], dq_out[kSlots], e_out[kSlots];
#pragma unroll
  for (int s = 0; s < kSlots; ++s) {
    const int j = lane + 32 * s;
    w[s] = j < c ? a.w[o + j] : 0.0f;
    q_out[s] = dq_out[s] = e_out[s] = 0.0f;
  }

  float scale = 0.0f, zero = 0.0f, loss = 0.0f;
  for (int i = 0; i < c; ++i) {
    const int64_t t = static_cast<int64_t>(a.col_group[i]) * a.n_rows + row;
    const int end = a.col_end[i];
    if (end > 0) {
      float mn = INFINITY, mx = -INFINITY;
#pragma unroll
      for (int s = 0; s < kSlots; ++s) {
        const int j = lane + 32 * s;
        if (j >= i && j < end) {
          mn = fminf(mn, w[s]);
          mx = fmaxf(mx, w[s]);
        }
      }
#pragma unroll
      for (int off = 16; off > 0; off >>= 1) {
        mn = fminf(mn, __shfl_xor_sync(kFull, mn, off));
        mx = fmaxf(mx, __shfl_xor_sync(kFull, mx, off));
      }
      gptq_params(mn, mx, a, scale, zero);
      if (lane == 0) {
        a.scale[t] = scale;
        a.zero[t] = zero;
      }
    } else {
      scale = a.scale[t];
      zero = a.zero[t];
    }
    const int slot = i >> 5, owner = i & 31;
    const float wi = __shfl_sync(kFull, slot_value(w, slot), owner);
    const float q = gptq_code(wi, scale, zero, a.max_q);
    const float dq = (q - zero) * scale;
    const float e = div_scalar(wi - dq, sh_hinv[i * c + i], a.recip_div);
    loss += e * e * 0.5f;
    const float* h = sh_hinv + i * c;
#pragma unroll
    for (int s = 0; s < kSlots; ++s) {
      const int j = lane + 32 * s;
      if (j >= i && j < c) w[s] -= e * h[j];
      if (j == i) {
        q_out[s] = q;
        dq_out[s] = dq;
        e_out[s] = e;
      }
    }
  }
#pragma unroll
  for (int s = 0; s < kSlots; ++s) {
    const int j = lane + 32 * s;
    if (j < c) {
      a.codes[o + j] = q_out[s];
      a.deq[o + j] = dq_out[s];
      a.err[o + j] = e_out[s];
    }
  }
  if (lane == 0) a.loss[row] += loss;
}

}  // namespace

int gptq_block_cuda(const GptqBlockArgs& a, void* stream) {
  if (a.count <= 0 || a.count > kMaxBlock || a.n_rows <= 0)
    return static_cast<int>(cudaErrorInvalidValue);
  const size_t shmem = sizeof(float) * a.count * a.count;
  static bool attr_set = false;
  if (!attr_set) {
    const cudaError_t rc =
        cudaFuncSetAttribute(gptq_block_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                             static_cast<int>(sizeof(float) * kMaxBlock * kMaxBlock));
    if (rc != cudaSuccess) return static_cast<int>(rc);
    attr_set = true;
  }
  const int blocks = (a.n_rows + kWarpsPerCta - 1) / kWarpsPerCta;
  gptq_block_kernel<<<blocks, kWarpsPerCta * 32, shmem, static_cast<cudaStream_t>(stream)>>>(a);
  return static_cast<int>(cudaGetLastError());
}

}  // namespace sq::solvers::kernel
