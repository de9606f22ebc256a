// Quantization scheme shared by solvers, packers and the options: bit width, group size,
// symmetry. Pure value type, no torch.
#pragma once

#include <cstdint>
#include <string>

namespace sq::solvers {

struct QuantScheme {
  int bits = 4;              // 2, 3, 4 or 8
  int64_t group_size = 128;  // -1 = one group per output row (whole in_features)
  bool zero_point = true;    // asymmetric (true) or symmetric (false)
  // GPTQ grid only: > 0 searches each group's range by shrinking it (GPTQModel's `mse`, the GPTQ
  // reference quantizer's mse option) and keeps the shrink with the smallest Σ|Q(w) − w|^mse_norm;
  // 0 = the plain min/max range. Typical value 2.4.
  double mse_norm = 0.0;

  int64_t max_q() const { return (int64_t{1} << bits) - 1; }
  // Effective group size for a linear with `in_features` columns.
  int64_t group_for(int64_t in_features) const {
    return group_size <= 0 ? in_features : group_size;
  }
  std::string describe() const;  // "w4 g128 zero-point" (+ " mse 2.4" when searched)
};

// The shrink grid of the range search (mse_norm > 0): factors 1 − i/kGrid for
// i = 0 .. kSteps − 1 (the reference quantizer's grid 100, maxshrink 0.8).
struct MseGrid {
  static constexpr int kGrid = 100;
  static constexpr int kSteps = 80;
};

}  // namespace sq::solvers
