// The quantization scheme: the one value type for bit width, group size, zero point, act order
// and the GPTQ range search, used by io (packers, configs, the quantized-checkpoint reader),
// solvers, rank and coordinator alike. Pure value type, no torch.
//
// CONTRACT
//   * group_size −1 (or any value ≤ 0) means one group per output row spanning all in_features;
//     group_size_for() is the only place that turns that into a number.
//   * zero_point false = symmetric (GPTQ `sym`), true = asymmetric (AWQ zero point).
//   * act_order: GPTQ columns in decreasing Hessian-diagonal order (`desc_act`), so g_idx is
//     stored; AWQ never sets it.
#pragma once

#include <cstdint>
#include <string>

namespace sq {

// The effective group size for a linear with `in_features` columns: group_size, or in_features
// when group_size ≤ 0 ("one group per row"; at least 1).
int64_t group_size_for(int64_t group_size, int64_t in_features);

struct QuantScheme {
  int bits = 4;              // 2, 3, 4 or 8
  int64_t group_size = 128;  // −1 = one group per output row (whole in_features)
  bool zero_point = true;    // asymmetric (true) or symmetric (false)
  bool act_order = false;    // GPTQ --desc-act
  // GPTQ grid only: > 0 searches each group's range by shrinking it (GPTQModel's `mse`, the GPTQ
  // reference quantizer's mse option) and keeps the shrink with the smallest Σ|Q(w) − w|^mse_norm;
  // 0 = the plain min/max range. Typical value 2.4.
  double mse_norm = 0.0;

  int64_t max_q() const { return (int64_t{1} << bits) - 1; }
  bool symmetric() const { return !zero_point; }
  // Effective group size for a linear with `in_features` columns (group_size_for).
  int64_t group_for(int64_t in_features) const { return group_size_for(group_size, in_features); }
  // ceil(in_features / group_for(in_features)).
  int64_t groups_for(int64_t in_features) const;
  std::string describe() const;  // "w4 g128 zero-point" (+ " mse 2.4"; act order is not named)
};

}  // namespace sq
