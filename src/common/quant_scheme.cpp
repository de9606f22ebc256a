#include "common/quant_scheme.h"

#include <algorithm>
#include <sstream>

namespace sq {

int64_t group_size_for(int64_t group_size, int64_t in_features) {
  return group_size <= 0 ? std::max<int64_t>(in_features, 1) : group_size;
}

int64_t QuantScheme::groups_for(int64_t in_features) const {
  const int64_t g = group_for(in_features);
  return (in_features + g - 1) / g;
}

std::string QuantScheme::describe() const {
  std::ostringstream norm;
  norm << mse_norm;
  return "w" + std::to_string(bits) + " g" +
         (group_size <= 0 ? std::string("row") : std::to_string(group_size)) +
         (zero_point ? " zero-point" : " symmetric") +
         (mse_norm > 0 ? " mse " + norm.str() : std::string());
}

}  // namespace sq
