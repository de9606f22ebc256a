// One check macro family for every backend call (CUDA, NCCL, MPI, HDF5, POSIX) and for
// internal invariants. Each expands to a call that throws the right sq::Error with the failing
// expression, file and line.
//
//   SQ_CHECK(cond, "message " << value)     -> InternalError (a broken invariant)
//   SQ_REQUIRE(cond, "message " << value)   -> InputError (user input is wrong)
//   SQ_CALL(kind, expr)                     -> BackendError when expr fails, where kind is one of
//                                              Posix, Cuda, Nccl, Mpi, Hdf5 (see BackendTraits).
#pragma once

#include <sstream>
#include <string>

#include "common/errors.h"

namespace sq::detail {

[[noreturn]] void throw_internal(const char* expr, const char* file, int line,
                                 const std::string& msg);
[[noreturn]] void throw_input(const std::string& msg);
[[noreturn]] void throw_backend(const char* backend, const char* expr, const char* file, int line,
                                const std::string& detail);

// How each backend reports success and describes a failure. Specialized next to the code that
// includes the backend's headers (rank/ for CUDA/NCCL/MPI, io/ for HDF5), so common/ needs none.
template <typename Tag>
struct BackendTraits;

struct Posix {};
template <>
struct BackendTraits<Posix> {
  static constexpr const char* name = "system call";
  static bool ok(long rc) { return rc >= 0; }
  static std::string describe(long rc);  // strerror(errno)
};

}  // namespace sq::detail

#define SQ_CHECK(cond, msg)                                                  \
  do {                                                                       \
    if (!(cond)) {                                                           \
      std::ostringstream sq_os_;                                             \
      sq_os_ << msg;                                                         \
      ::sq::detail::throw_internal(#cond, __FILE__, __LINE__, sq_os_.str()); \
    }                                                                        \
  } while (0)

#define SQ_REQUIRE(cond, msg)                  \
  do {                                         \
    if (!(cond)) {                             \
      std::ostringstream sq_os_;               \
      sq_os_ << msg;                           \
      ::sq::detail::throw_input(sq_os_.str()); \
    }                                          \
  } while (0)

#define SQ_THROW(ErrorType, msg)   \
  do {                             \
    std::ostringstream sq_os_;     \
    sq_os_ << msg;                 \
    throw ErrorType(sq_os_.str()); \
  } while (0)

#define SQ_CALL(Kind, expr)                                                   \
  do {                                                                        \
    auto sq_rc_ = (expr);                                                     \
    using SqTraits_ = ::sq::detail::BackendTraits<::sq::detail::Kind>;        \
    if (!SqTraits_::ok(sq_rc_)) {                                             \
      ::sq::detail::throw_backend(SqTraits_::name, #expr, __FILE__, __LINE__, \
                                  SqTraits_::describe(sq_rc_));               \
    }                                                                         \
  } while (0)

// SQ_CHECK_OR_REQUIRE(from_input, cond, "message " << value): one check for data we made and
// data we read — SQ_REQUIRE (InputError) when `from_input` (the value came from a file or the
// user), else SQ_CHECK (InternalError, with the expression, file and line).
#define SQ_CHECK_OR_REQUIRE(from_input, cond, msg) \
  do {                                             \
    if (from_input)                                \
      SQ_REQUIRE(cond, msg);                       \
    else                                           \
      SQ_CHECK(cond, msg);                         \
  } while (0)
