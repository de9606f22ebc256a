// SQ_CALL(Mpi, MPI_Xxx(...)): throws sq::BackendError with MPI's own error string when an MPI
// call does not return MPI_SUCCESS. Communicators used with it must have MPI_ERRORS_RETURN set
// (MPI's default handler aborts before the check can run). Only for SQ_WITH_MPI builds; every
// file includes mpi.h through this header.
#pragma once

// C only: the deprecated MPI C++ bindings would need libmpi_cxx at link time.
#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1
#endif
#ifndef MPICH_SKIP_MPICXX
#define MPICH_SKIP_MPICXX 1
#endif
#include <mpi.h>

#include <string>

#include "common/check.h"

namespace sq::detail {

struct Mpi {};
template <>
struct BackendTraits<Mpi> {
  static constexpr const char* name = "MPI";
  static bool ok(int rc) { return rc == MPI_SUCCESS; }
  static std::string describe(int rc) {
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, text, &len) != MPI_SUCCESS) return "MPI error " + std::to_string(rc);
    return std::string(text, static_cast<size_t>(len)) + " (code " + std::to_string(rc) + ")";
  }
};

}  // namespace sq::detail
