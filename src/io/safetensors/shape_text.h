// "[2, 24, 32]": a tensor shape as error messages print it (one home for io and coordinator).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sq::io {

std::string shape_str(const std::vector<int64_t>& shape);

}  // namespace sq::io
