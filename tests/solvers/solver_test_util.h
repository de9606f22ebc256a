// Shared helpers for the solver tests: seeded generators and correlated activations.
#pragma once

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

namespace sq::solvers::test {

inline at::Generator rng(uint64_t seed) {
  return at::detail::createCPUGenerator(seed);
}

// [tokens, k] activations with strongly correlated columns and uneven column magnitudes, the
// regime where GPTQ's error feedback matters.
inline at::Tensor correlated_inputs(int64_t tokens, int64_t k, uint64_t seed,
                                    at::ScalarType dtype = at::kFloat) {
  auto gen = rng(seed);
  auto z = at::randn({tokens, k}, gen, at::kDouble);
  auto mix = at::eye(k, at::kDouble) + 0.3 * at::randn({k, k}, gen, at::kDouble);
  auto col_scale = at::exp(at::randn({k}, gen, at::kDouble));
  return (z.mm(mix) * col_scale).to(dtype);
}

}  // namespace sq::solvers::test
