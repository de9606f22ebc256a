// See awq_trial_kernel.h. One warp per (row, group): pass 1 reduces min/max of w·s over the
// group, pass 2 quantizes, dequantizes, divides by s and stores in the weight dtype.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "solvers/awq_trial_kernel.h"
#include "solvers/gptq_cuda_kernel.h"  // round_to_fp16

namespace sq::solvers::kernel {
namespace {

constexpr int kWarpsPerCta = 8;

__device__ inline float load(const void* p, int64_t i, int dtype) {
  if (dtype == 1) return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
  if (dtype == 2) return __half2float(static_cast<const __half*>(p)[i]);
  return static_cast<const float*>(p)[i];
}

__device__ inline void store(void* p, int64_t i, float v, int dtype) {
  if (dtype == 1)
    static_cast<__nv_bfloat16*>(p)[i] = __float2bfloat16_rn(v);
  else if (dtype == 2)
    static_cast<__half*>(p)[i] = __float2half_rn(v);
  else
    static_cast<float*>(p)[i] = v;
}

__global__ void awq_trial_kernel(const AwqTrialArgs a) {
  const int lane = threadIdx.x % 32;
  const int64_t groups_per_row = a.k / a.group;
  const int64_t task = static_cast<int64_t>(blockIdx.x) * kWarpsPerCta + threadIdx.x / 32;
  if (task >= a.n_rows * groups_per_row) return;
  const int64_t row = task / groups_per_row, c0 = (task % groups_per_row) * a.group;
  const int64_t base = row * a.k + c0;
  float mx = -INFINITY, mn = INFINITY;
  for (int64_t j = lane; j < a.group; j += 32) {
    const float x = load(a.w, base + j, a.dtype) * a.s[c0 + j];
    mx = fmaxf(mx, x);
    mn = fminf(mn, x);
  }
  for (int off = 16; off > 0; off /= 2) {
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
    mn = fminf(mn, __shfl_xor_sync(0xffffffffu, mn, off));
  }
  float scale, zero;
  if (a.zero_point) {
    // (max − min).clamp_min(1e-5) / max_q: a division by a scalar, i.e. × its reciprocal.
    scale = round_to_fp16(fmaxf(mx - mn, 1e-5f) * (1.0f / static_cast<float>(a.max_q)));
    scale = fminf(fmaxf(scale, 5.9604644775390625e-08f), 65504.0f);
    zero = fminf(fmaxf(-rintf(mn / scale), 0.0f), static_cast<float>(a.max_q));
  } else {
    const float amax = fmaxf(fmaxf(fabsf(mx), fabsf(mn)), 1e-5f);
    scale = round_to_fp16(amax * (1.0f / (static_cast<float>(a.half_q) - 1.0f)));
    scale = fminf(fmaxf(scale, 5.9604644775390625e-08f), 65504.0f);
    zero = static_cast<float>(a.half_q);
  }
  for (int64_t j = lane; j < a.group; j += 32) {
    const float sj = a.s[c0 + j];
    const float x = load(a.w, base + j, a.dtype) * sj;
    const float q = fminf(fmaxf(rintf(x / scale) + zero, 0.0f), static_cast<float>(a.max_q));
    store(a.out, base + j, ((q - zero) * scale) / sj, a.dtype);
  }
}

}  // namespace

int awq_trial_cuda(const AwqTrialArgs& a, void* stream) {
  if (a.n_rows <= 0 || a.k <= 0 || a.group <= 0 || a.k % a.group != 0)
    return static_cast<int>(cudaErrorInvalidValue);
  const int64_t tasks = a.n_rows * (a.k / a.group);
  const int64_t blocks = (tasks + kWarpsPerCta - 1) / kWarpsPerCta;
  awq_trial_kernel<<<static_cast<unsigned>(blocks), kWarpsPerCta * 32, 0,
                     static_cast<cudaStream_t>(stream)>>>(a);
  return static_cast<int>(cudaGetLastError());
}

}  // namespace sq::solvers::kernel
