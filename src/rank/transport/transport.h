// Transport: the only way ranks talk to each other (DESIGN.md §2–3). Three implementations,
// chosen explicitly with --transport:
//   local  one process (world 1); every collective is the identity.
//   mpi    host tensors over MPI (CPU runs, CI). CUDA tensors are staged through host memory.
//   nccl   CUDA tensors, one GPU per rank, communicator bootstrapped over MPI; bytes, barrier and
//          agree() run over MPI. Built only with SQ_WITH_NCCL.
//
// CONTRACT
//   * Every collective (all_reduce_sum, broadcast, gather_bytes, broadcast_bytes, barrier, agree)
//     must be called by every rank in the same order. send/recv pair by (peer, tag), in order.
//   * Every blocking call has a deadline of options.timeout_s (--comm-timeout). When it passes the
//     call throws sq::BackendError naming this rank, the operation, the peer or root, and the
//     elapsed seconds ("rank r did not answer within --comm-timeout N s (dead or hung)" where
//     the call waits on one rank); the transport is then unhealthy() and the caller must abort
//     the job (abort_job) — a timed-out collective cannot be resumed.
//   * mpi (and nccl's MPI control channel): a waiting call also fails, before the deadline, when
//     the process of another rank on this host has ended (SIGKILL, OOM killer, crash): a
//     BackendError naming that rank and its pid, transport unhealthy as after a timeout. Looked
//     for every second, every 20 ms after SIGTERM/SIGINT (rank/transport/peer_liveness.h). Ranks on
//     other hosts are only caught by the deadline.
//   * all_reduce_sum is in place and bit-identical on every rank; for floating point the result is
//     also independent of message timing (MPI: summed on rank 0 in rank order, then broadcast).
//     Supported dtypes: float32, float64, int64. Tensors of any layout/device are accepted; the
//     result is written back into the given tensor.
//   * recv / broadcast fill a preallocated tensor; its dtype and element count must match what
//     the sender has (a size mismatch is a BackendError naming both sizes).
//   * agree(mine): every rank passes its own Status and every rank gets back the same worst one
//     (highest code, an interruption — 128 + signal, sq::Interrupted — below every error; among
//     equals the lowest rank) with the failing rank and its message.
//     Status::raise() turns a failed agreed status into the matching sq::Error on every rank
//     (an interruption into sq::Interrupted of the same signal).
//     Errors thrown by raise() are "agreed": all_ranks_know(e) is true, so the caller may exit
//     normally (every rank exits non-zero on its own). For any other error in a multi-rank job
//     the caller calls abort_job() so that no rank is left waiting.
#pragma once

#include <ATen/ATen.h>

#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/errors.h"
#include "rank/transport/transport_kind.h"

namespace sq::rank {

// "local" | "mpi" | "nccl"; anything else (or a kind this build lacks) is an InputError.
TransportKind parse_transport_kind(const std::string& text);
const char* transport_kind_name(TransportKind kind);
// The --transport default: nccl when the ranks have GPUs and NCCL is built, else mpi when MPI is
// built, else local.
TransportKind default_transport_kind(bool ranks_have_gpus);
bool transport_kind_built(TransportKind kind);

struct TransportOptions {
  double timeout_s = 600.0;  // --comm-timeout: deadline of every blocking call
};

// A rank's outcome of one step. code uses the process exit codes (0 ok, 2 input, 3 system,
// 4 internal, 128 + signal interrupted); worse = larger, except that an interruption is below
// every error.
struct Status {
  int code = 0;
  int rank = -1;         // the rank that reported it (set by agree when failed)
  std::string message;   // the error's what()
  int failed_ranks = 0;  // after agree: how many ranks reported a failure

  static Status ok() { return Status{}; }
  // The status for an exception caught on `rank` (sq::Error keeps its code; others → 4).
  static Status from_exception(const std::exception& e, int rank);
  bool is_ok() const { return code == 0; }
  // Throws the sq::Error of this code: "rank <r> failed[ in step '<step>']: <message>", marked
  // agreed (all_ranks_know). No-op when ok.
  void raise(const std::string& step = "") const;
};

// True for errors thrown by Status::raise(): every rank has thrown the same one.
bool all_ranks_know(const std::exception& e);

class Transport {
 public:
  virtual ~Transport() = default;

  virtual int rank() const = 0;
  virtual int world() const = 0;
  virtual int local_rank() const = 0;  // rank among the processes of this host
  virtual const char* name() const = 0;
  // Where tensors passed to this transport should live (CPU for local/mpi, cuda:local for nccl).
  virtual at::Device device() const { return at::Device(at::kCPU); }

  virtual void all_reduce_sum(at::Tensor& t) = 0;
  virtual void broadcast(at::Tensor& t, int root) = 0;
  virtual void send(const at::Tensor& t, int dst, int tag) = 0;
  virtual void recv(at::Tensor& t, int src, int tag) = 0;
  // Root gets world() buffers in rank order; other ranks get an empty vector.
  virtual std::vector<std::string> gather_bytes(const std::string& mine, int root) = 0;
  virtual void broadcast_bytes(std::string& bytes, int root) = 0;
  virtual void barrier() = 0;

  // Every rank learns the worst status (see CONTRACT). Implemented on gather/broadcast_bytes.
  virtual Status agree(const Status& mine);

  // False once a call timed out or the backend failed: only abort_job() is safe then.
  virtual bool healthy() const { return true; }
  // Kills every rank of the job with `code` (MPI_Abort). Returns only where there is nothing to
  // kill (local transport); the caller then exits normally.
  virtual void abort_job(int code) noexcept {}
  // The ranks agreed to stop on a signal (sq::Interrupted): the launcher that sent it may be
  // tearing the job down already (Open MPI's mpirun does on SIGTERM, and SIGKILLs the ranks a
  // second later), so this process's shutdown must not wait for any other: mpi skips
  // MPI_Finalize (its fence waited for the dying launcher until the SIGKILL), nccl aborts its
  // communicator. Collectives are not allowed afterwards. Default: nothing.
  virtual void leave_unsynchronized() noexcept {}
};

std::unique_ptr<Transport> make_transport(TransportKind kind, const TransportOptions& options);

// Runs one step so that it ends with all ranks agreeing: fault points "before_<step>", inside
// fn, then "after_<step>" (see transport_fault.h); any exception becomes this rank's Status;
// agree(); a failure anywhere is raised (agreed) on every rank. With one rank (world 1) there is
// nobody to agree with, and after an exception that left the transport unhealthy (timeout, dead
// rank) there is no way to: fn's exception propagates unchanged (not agreed).
void agreed_step(Transport& t, const std::string& step, const std::function<void()>& fn);

// For main(): when `e` is not agreed and the job has other ranks, abort them all (never returns
// for mpi/nccl); otherwise returns and the caller exits with exit_code_for(e).
void abort_unless_agreed(Transport* t, const std::exception& e);

}  // namespace sq::rank
