// See fused_kernels.h. Every rounding step of the ATen expressions is reproduced explicitly:
// products and sums use the _rn intrinsics so that nvcc cannot contract them into FMAs, and
// each intermediate ATen would store is rounded to the tensor dtype at the same point.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "rank/model/fused_kernels.h"

namespace sq::rank::kernel {
namespace {

constexpr int kThreads = 256;
constexpr int kSumBlocks = 1024;  // upper bound of partial sums (grid-stride loop beyond it)
constexpr int64_t kGridCap = 1 << 16;

template <int D>
struct Io;
template <>
struct Io<0> {
  using T = float;
  __device__ static float get(const void* p, int64_t i) { return static_cast<const float*>(p)[i]; }
  __device__ static void put(void* p, int64_t i, float v) { static_cast<float*>(p)[i] = v; }
  __device__ static float round(float v) { return v; }
};
template <>
struct Io<1> {
  __device__ static float get(const void* p, int64_t i) {
    return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
  }
  __device__ static void put(void* p, int64_t i, float v) {
    static_cast<__nv_bfloat16*>(p)[i] = __float2bfloat16_rn(v);
  }
  __device__ static float round(float v) { return __bfloat162float(__float2bfloat16_rn(v)); }
};
template <>
struct Io<2> {
  __device__ static float get(const void* p, int64_t i) {
    return __half2float(static_cast<const __half*>(p)[i]);
  }
  __device__ static void put(void* p, int64_t i, float v) {
    static_cast<__half*>(p)[i] = __float2half_rn(v);
  }
  __device__ static float round(float v) { return __half2float(__float2half_rn(v)); }
};

template <int DT>
__global__ void gated_silu_kernel(const void* g, const void* u, void* out, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const float x = Io<DT>::get(g, i);
    const float s = Io<DT>::round(__fdiv_rn(x, __fadd_rn(1.0f, expf(-x))));
    Io<DT>::put(out, i, __fmul_rn(s, Io<DT>::get(u, i)));
  }
}

// 16-byte vectors of 2-byte elements: one load per input and one store per 8 outputs (the
// scalar loop above reaches about half of the memory bandwidth on an H100).
template <int DT>
__global__ void gated_silu_vec8_kernel(const uint4* g, const uint4* u, uint4* out, int64_t n8) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n8;
       i += int64_t(gridDim.x) * blockDim.x) {
    uint4 gv = g[i], uv = u[i], ov;
    const unsigned short* gs = reinterpret_cast<const unsigned short*>(&gv);
    const unsigned short* us = reinterpret_cast<const unsigned short*>(&uv);
    unsigned short* os = reinterpret_cast<unsigned short*>(&ov);
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const float x = Io<DT>::get(gs, j);
      const float s = Io<DT>::round(__fdiv_rn(x, __fadd_rn(1.0f, expf(-x))));
      Io<DT>::put(os, j, __fmul_rn(s, Io<DT>::get(us, j)));
    }
    out[i] = ov;
  }
}

template <int DT>
__global__ void rotary_half_kernel(const RotaryArgs a) {
  const int64_t n = a.B * a.H * a.T * a.D, half = a.D / 2;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t d = i % a.D, t = (i / a.D) % a.T, h = (i / (a.D * a.T)) % a.H,
                  b = i / (a.D * a.T * a.H);
    const int64_t xb = b * a.xs[0] + h * a.xs[1] + t * a.xs[2];
    const float x = Io<DT>::get(a.x, xb + d * a.xs[3]);
    const float r = d < half ? -Io<DT>::get(a.x, xb + (d + half) * a.xs[3])
                             : Io<DT>::get(a.x, xb + (d - half) * a.xs[3]);
    const int64_t ci = b * a.cs[0] + t * a.cs[1] + d * a.cs[2];
    const float c = Io<DT>::get(a.cos, ci), s = Io<DT>::get(a.sin, ci);
    const float v = __fadd_rn(Io<DT>::round(__fmul_rn(x, c)), Io<DT>::round(__fmul_rn(r, s)));
    Io<DT>::put(a.out, b * a.os[0] + h * a.os[1] + t * a.os[2] + d * a.os[3], v);
  }
}

// Fixed-order block sum: shared-memory tree over the block's threads.
__device__ float block_sum(float v) {
  __shared__ float buf[kThreads];
  buf[threadIdx.x] = v;
  __syncthreads();
  for (int s = kThreads / 2; s > 0; s /= 2) {
    if (threadIdx.x < s) buf[threadIdx.x] = __fadd_rn(buf[threadIdx.x], buf[threadIdx.x + s]);
    __syncthreads();
  }
  return buf[0];
}

template <int DT>
__global__ void sum_sq_diff_kernel(const void* a, const void* b, int64_t n, float* partials) {
  float acc = 0.0f;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const float d = Io<DT>::round(__fsub_rn(Io<DT>::get(a, i), Io<DT>::get(b, i)));
    acc = __fadd_rn(acc, __fmul_rn(d, d));
  }
  const float s = block_sum(acc);
  if (threadIdx.x == 0) partials[blockIdx.x] = s;
}

__global__ void sum_partials_kernel(const float* partials, int count, float* result) {
  float acc = 0.0f;
  for (int i = threadIdx.x; i < count; i += blockDim.x) acc = __fadd_rn(acc, partials[i]);
  const float s = block_sum(acc);
  if (threadIdx.x == 0) *result = s;
}

int blocks_for(int64_t n, int64_t cap) {
  const int64_t b = (n + kThreads - 1) / kThreads;
  return static_cast<int>(b < 1 ? 1 : (b > cap ? cap : b));
}

template <template <int> class K, class... Args>
int launch_by_dtype(int dtype, int blocks, cudaStream_t st, Args... args) {
  switch (dtype) {
    case 0:
      K<0>::run(blocks, st, args...);
      break;
    case 1:
      K<1>::run(blocks, st, args...);
      break;
    case 2:
      K<2>::run(blocks, st, args...);
      break;
    default:
      return static_cast<int>(cudaErrorInvalidValue);
  }
  return static_cast<int>(cudaGetLastError());
}

template <int DT>
struct GatedLaunch {
  static void run(int blocks, cudaStream_t st, const void* g, const void* u, void* out, int64_t n) {
    const auto aligned = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
    if (DT != 0 && n % 8 == 0 && aligned(g) && aligned(u) && aligned(out)) {
      const int64_t n8 = n / 8;
      const int64_t b = (n8 + kThreads - 1) / kThreads;
      gated_silu_vec8_kernel<DT>
          <<<static_cast<int>(b < kGridCap ? b : kGridCap), kThreads, 0, st>>>(
              static_cast<const uint4*>(g), static_cast<const uint4*>(u), static_cast<uint4*>(out),
              n8);
      return;
    }
    gated_silu_kernel<DT><<<blocks, kThreads, 0, st>>>(g, u, out, n);
  }
};
template <int DT>
struct RotaryLaunch {
  static void run(int blocks, cudaStream_t st, RotaryArgs a) {
    rotary_half_kernel<DT><<<blocks, kThreads, 0, st>>>(a);
  }
};
template <int DT>
struct SumLaunch {
  static void run(int blocks, cudaStream_t st, const void* a, const void* b, int64_t n,
                  float* partials) {
    sum_sq_diff_kernel<DT><<<blocks, kThreads, 0, st>>>(a, b, n, partials);
  }
};

}  // namespace

int gated_silu_cuda(const void* g, const void* u, void* out, int64_t n, int dtype, void* stream) {
  if (n <= 0) return 0;
  return launch_by_dtype<GatedLaunch>(dtype, blocks_for(n, kGridCap),
                                      static_cast<cudaStream_t>(stream), g, u, out, n);
}

int rotary_half_cuda(const RotaryArgs& a, void* stream) {
  const int64_t n = a.B * a.H * a.T * a.D;
  if (n <= 0) return 0;
  if (a.D % 2 != 0) return static_cast<int>(cudaErrorInvalidValue);
  return launch_by_dtype<RotaryLaunch>(a.dtype, blocks_for(n, kGridCap),
                                       static_cast<cudaStream_t>(stream), a);
}

int64_t sum_sq_diff_partials(int64_t n) {
  return blocks_for(n, kSumBlocks);
}

int sum_sq_diff_cuda(const void* a, const void* b, int64_t n, int dtype, float* partials,
                     float* result, void* stream) {
  const auto st = static_cast<cudaStream_t>(stream);
  const int blocks = blocks_for(n, kSumBlocks);
  if (n <= 0) return static_cast<int>(cudaMemsetAsync(result, 0, sizeof(float), st));
  const int rc = launch_by_dtype<SumLaunch>(dtype, blocks, st, a, b, n, partials);
  if (rc != 0) return rc;
  sum_partials_kernel<<<1, kThreads, 0, st>>>(partials, blocks, result);
  return static_cast<int>(cudaGetLastError());
}

}  // namespace sq::rank::kernel
