// Σ x xᵀ over rows in float32 on tensor cores — the product behind GPTQ Hessians and the AWQ
// Gram-form loss.
//
// CONTRACT
//   gram_f32(x, fast): x [rows, K] floating, any device; returns xᵀx [K, K] float32 on x's device.
//   bf16/fp16 inputs on CUDA: the products are exact (they fit float32) and the sums are float32
//   tensor-core accumulations, by one of two paths:
//     - TF32 on a float32 copy (TF32 holds bf16/fp16 values exactly): within 1e-5 of float64
//       (H100: 1.6e-6 bf16, 3.1e-6 fp16; tests/solvers/test_hessian_tf32.cpp) — the GPTQ
//       Hessians use it (fast = false), as precise as the reference's float32 GEMM;
//     - fast = true and this LibTorch has at::mm with out_dtype: a half-precision GEMM with
//       float32 output, no copy, twice the TF32 rate but a looser accumulation (H100: 1.2e-5
//       bf16, 2.2e-5 fp16) — enough for the AWQ Gram loss (solvers/awq_gram.h, its own test).
//   Other inputs: a float32 product of a float32 copy (with the process's TF32 setting, off by
//   default). gram_f32_path() names the path the last half-precision CUDA call took.
#pragma once

#include <ATen/ATen.h>

namespace sq::solvers {

at::Tensor gram_f32(const at::Tensor& x, bool fast = false);
const char* gram_f32_path();

}  // namespace sq::solvers
