#include "solvers/scheme.h"

#include <sstream>

namespace sq::solvers {
namespace {

std::string format_norm(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

}  // namespace

std::string QuantScheme::describe() const {
  return "w" + std::to_string(bits) + " g" +
         (group_size <= 0 ? std::string("row") : std::to_string(group_size)) +
         (zero_point ? " zero-point" : " symmetric") +
         (mse_norm > 0 ? " mse " + format_norm(mse_norm) : std::string());
}

}  // namespace sq::solvers
