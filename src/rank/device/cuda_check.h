// SQ_CALL(Cuda, cudaXxx(...)): throws sq::BackendError with cudaGetErrorName/String when a CUDA
// runtime call does not return cudaSuccess. Only for CUDA builds (includes cuda_runtime_api.h).
#pragma once

#include <cuda_runtime_api.h>

#include <string>

#include "common/check.h"

namespace sq::detail {

struct Cuda {};
template <>
struct BackendTraits<Cuda> {
  static constexpr const char* name = "CUDA";
  static bool ok(cudaError_t rc) { return rc == cudaSuccess; }
  static std::string describe(cudaError_t rc) {
    return std::string(cudaGetErrorName(rc)) + ": " + cudaGetErrorString(rc);
  }
};

}  // namespace sq::detail
