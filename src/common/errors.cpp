#include "common/errors.h"

#include <new>

namespace sq {

int exit_code_for(const std::exception& e) {
  if (auto* err = dynamic_cast<const Error*>(&e)) return static_cast<int>(err->code());
  // Running out of host memory is the machine's limit, not a bug in our code.
  if (dynamic_cast<const std::bad_alloc*>(&e)) return static_cast<int>(ExitCode::kSystem);
  return static_cast<int>(ExitCode::kInternal);
}

}  // namespace sq
