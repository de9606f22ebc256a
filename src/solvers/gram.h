// Σ x xᵀ over rows in float32 on tensor cores — the product behind GPTQ Hessians and the AWQ
// Gram-form loss.
//
// CONTRACT
//   gram_f32(x): x [rows, K] floating, any device; returns xᵀx [K, K] float32 on x's device.
//   bf16/fp16 inputs on CUDA: the products are exact (they fit float32) and the sums are float32
//   tensor-core accumulations — through a half-precision GEMM with float32 output where this
//   LibTorch has one (at::mm with out_dtype), else through TF32 on a float32 copy (TF32 holds
//   bf16/fp16 values exactly). Either way within 1e-5 of float64 (tests/solvers/
//   test_hessian_tf32.cpp). Other inputs: a float32 product of a float32 copy (with the process's
//   TF32 setting, off by default). gram_f32_path() names the path the last half-precision CUDA call
//   took ("bf16 GEMM, fp32 out" or "TF32"), for logs and benchmarks.
#pragma once

#include <ATen/ATen.h>

namespace sq::solvers {

at::Tensor gram_f32(const at::Tensor& x);
const char* gram_f32_path();

}  // namespace sq::solvers
