// SQ_CALL(Nccl, ncclXxx(...)): throws sq::BackendError with ncclGetErrorString (and, where the
// NCCL version has it, the last error text) when an NCCL call does not return ncclSuccess.
// Only for SQ_WITH_NCCL builds.
#pragma once

#include <nccl.h>

#include <string>

#include "common/check.h"

namespace sq::detail {

struct Nccl {};
template <>
struct BackendTraits<Nccl> {
  static constexpr const char* name = "NCCL";
  static bool ok(ncclResult_t rc) { return rc == ncclSuccess; }
  static std::string describe(ncclResult_t rc) {
    std::string text = ncclGetErrorString(rc);
#if defined(NCCL_VERSION_CODE) && NCCL_VERSION_CODE >= 21300
    if (const char* last = ncclGetLastError(nullptr); last != nullptr && *last != '\0')
      text += std::string(" (") + last + ")";
#endif
    return text;
  }
};

}  // namespace sq::detail
