#include "common/check.h"

#include <cerrno>
#include <cstring>

namespace sq::detail {

void throw_internal(const char* expr, const char* file, int line, const std::string& msg) {
  std::ostringstream os;
  os << msg << " [check `" << expr << "` failed at " << file << ":" << line << "]";
  throw InternalError(os.str());
}

void throw_input(const std::string& msg) {
  throw InputError(msg);
}

void throw_backend(const char* backend, const char* expr, const char* file, int line,
                   const std::string& detail) {
  std::ostringstream os;
  os << backend << " failed: " << detail << " [`" << expr << "` at " << file << ":" << line << "]";
  throw BackendError(os.str());
}

std::string BackendTraits<Posix>::describe(long) {
  return std::strerror(errno);
}

}  // namespace sq::detail
