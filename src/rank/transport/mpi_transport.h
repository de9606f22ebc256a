// The MPI transport: host tensors over MPI (CPU runs and CI). CUDA or non-contiguous tensors are
// staged through a contiguous host copy and written back.
//
// CONTRACT (on top of transport.h)
//   * MPI is initialized by the first mpi transport of the process and finalized when the last
//     one is destroyed (RAII); MPI cannot be re-initialized afterwards, so a process creates its
//     mpi transports in one stretch. If MPI was initialized by someone else it is left alone.
//   * All communication uses private duplicates of MPI_COMM_WORLD with MPI_ERRORS_RETURN, so
//     user tags never collide with the transport's own messages.
//   * Every call is nonblocking underneath (MPI_Isend/Irecv/Ibcast/Igather/Iallreduce/Ibarrier)
//     polled with MPI_Test against the deadline; a timeout throws BackendError and leaves the
//     transport unhealthy (MPI_Finalize is then skipped: it could hang on the dead request).
//   * Floating-point all_reduce_sum: every rank sends its tensor to rank 0, which adds them in
//     rank order ((x0 + x1) + x2) + …, then broadcasts the sum: identical bits on every rank and
//     independent of timing. int64 uses MPI_Iallreduce (exact).
//   * At construction the ranks of each host exchange their pids (MPI_Allgather on the host's
//     communicator); a wait fails as soon as one of those processes has ended (transport.h).
//   * local_rank() comes from MPI_Comm_split_type(MPI_COMM_TYPE_SHARED), not environment
//     variables (they lie under mixed mpirun/srun launches).
// Without SQ_WITH_MPI, make_mpi_transport throws InputError.
#pragma once

#include <memory>

#include "rank/transport/transport.h"

namespace sq::rank {

std::unique_ptr<Transport> make_mpi_transport(const TransportOptions& options);

}  // namespace sq::rank
