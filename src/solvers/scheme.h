// The solvers' view of the quantization scheme: the common value type (common/quant_scheme.h)
// and the range-search grid constants.
#pragma once

#include "common/quant_scheme.h"

namespace sq::solvers {

using QuantScheme = sq::QuantScheme;

// The shrink grid of the range search (mse_norm > 0): factors 1 − i/kGrid for
// i = 0 .. kSteps − 1 (the reference quantizer's grid 100, maxshrink 0.8).
struct MseGrid {
  static constexpr int kGrid = 100;
  static constexpr int kSteps = 80;
};

}  // namespace sq::solvers
