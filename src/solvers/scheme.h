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

  int64_t max_q() const { return (int64_t{1} << bits) - 1; }
  // Effective group size for a linear with `in_features` columns.
  int64_t group_for(int64_t in_features) const {
    return group_size <= 0 ? in_features : group_size;
  }
  std::string describe() const;  // "w4 g128 zero-point"
};

}  // namespace sq::solvers
