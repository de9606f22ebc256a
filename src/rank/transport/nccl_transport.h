// The NCCL transport: CUDA tensors, one GPU per rank (SQ_WITH_NCCL builds only).
//
// CONTRACT (on top of transport.h)
//   * Bootstrap: an mpi transport is created first (it carries bytes, barrier and agree());
//     rank 0 calls ncclGetUniqueId, the id is broadcast over MPI, each rank cudaSetDevice(
//     local_rank) with local_rank from MPI_Comm_split_type(MPI_COMM_TYPE_SHARED), then
//     ncclCommInitRank. device() is cuda:local_rank.
//   * Tensor ops take CUDA tensors on device(); CPU tensors are staged to the device and back.
//     Each op is enqueued on a dedicated stream after the legacy default stream's pending work
//     (LibTorch's default current stream), then polled with cudaStreamQuery and
//     ncclCommGetAsyncError until done or the deadline: on timeout or an async error the
//     communicator is aborted (ncclCommAbort) and BackendError names the rank and operation.
//     When the call returns, the result is complete on the device.
//   * all_reduce_sum uses ncclAllReduce: NCCL distributes each reduced chunk to every rank, so
//     the bits are identical on all ranks, and fixed for a given topology and NCCL version.
// Without SQ_WITH_NCCL, make_nccl_transport throws InputError.
#pragma once

#include <memory>

#include "rank/transport/transport.h"

namespace sq::rank {

std::unique_ptr<Transport> make_nccl_transport(const TransportOptions& options);

}  // namespace sq::rank
