#include "solvers/scheme.h"

namespace sq::solvers {

std::string QuantScheme::describe() const {
  return "w" + std::to_string(bits) + " g" +
         (group_size <= 0 ? std::string("row") : std::to_string(group_size)) +
         (zero_point ? " zero-point" : " symmetric");
}

}  // namespace sq::solvers
