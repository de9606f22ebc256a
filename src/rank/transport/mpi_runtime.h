// MPI_Init / MPI_Finalize exactly once per process, shared by every MPI user (the mpi transport
// and the NCCL bootstrap) through reference counting. Only for SQ_WITH_MPI builds.
#pragma once

#include <memory>

namespace sq::rank {

class MpiRuntime {
 public:
  // Initializes MPI on first use (MPI_THREAD_FUNNELED). BackendError if MPI was already
  // finalized in this process.
  static std::shared_ptr<MpiRuntime> acquire();
  // After a timed-out request MPI_Finalize could block forever, and on a stop by signal the
  // launcher may be gone before its fence completes: skip it at shutdown.
  static void mark_poisoned();
  ~MpiRuntime();
  MpiRuntime(const MpiRuntime&) = delete;
  MpiRuntime& operator=(const MpiRuntime&) = delete;

 private:
  MpiRuntime() = default;
  bool owns_ = false;  // false when MPI was initialized by someone else
};

}  // namespace sq::rank
