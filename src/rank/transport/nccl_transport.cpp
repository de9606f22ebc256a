#include "rank/transport/nccl_transport.h"

#include "common/check.h"

#ifndef SQ_WITH_NCCL
namespace sq::rank {
std::unique_ptr<Transport> make_nccl_transport(const TransportOptions&) {
  SQ_REQUIRE(false,
             "--transport nccl: this build of shardquant has no NCCL (needs a CUDA build "
             "with SQ_WITH_NCCL=ON); use --transport mpi");
}
}  // namespace sq::rank
#else

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <chrono>
#include <cstring>
#include <sstream>
#include <thread>

#include "common/interrupt.h"
#include "rank/device/cuda_check.h"
#include "rank/transport/mpi_transport.h"
#include "rank/transport/nccl_check.h"
#include "rank/transport/transport_dtype.h"

namespace sq::rank {
namespace {

using Clock = std::chrono::steady_clock;

struct NcclTypeRow {
  at::ScalarType type;
  ncclDataType_t nccl;
};

// Element types NCCL moves natively; anything else travels as bytes (ncclUint8).
constexpr NcclTypeRow kNcclTypes[] = {
    {at::kFloat, ncclFloat32}, {at::kDouble, ncclFloat64}, {at::kLong, ncclInt64},
    {at::kHalf, ncclFloat16},  {at::kInt, ncclInt32},      {at::kByte, ncclUint8},
};

bool find_type(at::ScalarType type, ncclDataType_t* out) {
  for (const auto& r : kNcclTypes)
    if (r.type == type) {
      *out = r.nccl;
      return true;
    }
  return false;
}

class NcclTransport final : public Transport {
 public:
  // Both bootstrap stages end in an agreed status over MPI: a rank without a GPU, or one whose
  // NCCL init fails, makes every rank throw the same error instead of leaving peers waiting.
  explicit NcclTransport(const TransportOptions& options)
      : control_(make_mpi_transport(options)), timeout_s_(options.timeout_s) {
    ncclUniqueId id;
    std::string idbytes;
    agreed_step(*control_, "nccl_bootstrap", [&] {
      int ngpu = 0;
      SQ_CALL(Cuda, cudaGetDeviceCount(&ngpu));
      SQ_REQUIRE(ngpu > 0,
                 "nccl rank " << rank() << ": no CUDA device visible; use --transport mpi");
      SQ_REQUIRE(control_->local_rank() < ngpu,
                 "nccl rank " << rank() << ": local rank " << control_->local_rank() << " but only "
                              << ngpu << " GPU(s) on this host; one GPU per rank is required");
      device_ = control_->local_rank();
      SQ_CALL(Cuda, cudaSetDevice(device_));
      SQ_CALL(Cuda, cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
      SQ_CALL(Cuda, cudaEventCreateWithFlags(&ready_, cudaEventDisableTiming));
      if (rank() == 0) {
        SQ_CALL(Nccl, ncclGetUniqueId(&id));
        idbytes.assign(reinterpret_cast<const char*>(&id), sizeof id);
      }
    });
    control_->broadcast_bytes(idbytes, 0);
    SQ_CHECK(idbytes.size() == sizeof id,
             "nccl rank " << rank() << ": unique id of " << idbytes.size() << " bytes");
    std::memcpy(&id, idbytes.data(), sizeof id);

    agreed_step(*control_, "nccl_init", [&] {
      // Nonblocking init so that a rank that never joins times out instead of hanging.
      ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
      config.blocking = 0;
      const Op init{"ncclCommInitRank", "all ranks", Clock::now()};
      const ncclResult_t rc = ncclCommInitRankConfig(&comm_, world(), id, rank(), &config);
      if (rc != ncclSuccess && rc != ncclInProgress) fail(init, rc);
      poll_comm(init);
    });
  }

  ~NcclTransport() override {
    if (comm_ != nullptr) {
      if (healthy_)
        ncclCommDestroy(comm_);
      else
        ncclCommAbort(comm_);
    }
    if (ready_ != nullptr) cudaEventDestroy(ready_);
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }

  int rank() const override { return control_->rank(); }
  int world() const override { return control_->world(); }
  int local_rank() const override { return control_->local_rank(); }
  const char* name() const override { return "nccl"; }
  at::Device device() const override {
    return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(device_));
  }
  bool healthy() const override { return healthy_ && control_->healthy(); }
  void abort_job(int code) noexcept override {
    if (comm_ != nullptr) ncclCommAbort(comm_);
    comm_ = nullptr;
    control_->abort_job(code);
  }
  void leave_unsynchronized() noexcept override {
    if (comm_ != nullptr) ncclCommAbort(comm_);
    comm_ = nullptr;
    control_->leave_unsynchronized();
  }

  void all_reduce_sum(at::Tensor& t) override {
    require_reducible(t, "nccl", rank(), "all_reduce_sum");
    run(Op{"all_reduce_sum", "all ranks", Clock::now()}, t,
        [&](void* p, size_t n, ncclDataType_t type) {
          return ncclAllReduce(p, p, n, type, ncclSum, comm_, stream_);
        });
  }

  void broadcast(at::Tensor& t, int root) override {
    check_peer("broadcast", root, false);
    run(Op{"broadcast", "root " + std::to_string(root), Clock::now()}, t,
        [&](void* p, size_t n, ncclDataType_t type) {
          return ncclBroadcast(p, p, n, type, root, comm_, stream_);
        });
  }

  // NCCL point-to-point has no tags: pairs match in call order per peer, which is what the
  // transport contract requires of callers anyway; the tag is only reported in errors.
  void send(const at::Tensor& t, int dst, int tag) override {
    check_peer("send", dst, true);
    at::Tensor copy = t;
    run(
        Op{"send", "rank " + std::to_string(dst) + " tag " + std::to_string(tag), Clock::now()},
        copy,
        [&](void* p, size_t n, ncclDataType_t type) {
          return ncclSend(p, n, type, dst, comm_, stream_);
        },
        true);
  }

  void recv(at::Tensor& t, int src, int tag) override {
    check_peer("recv", src, true);
    run(
        Op{"recv", "rank " + std::to_string(src) + " tag " + std::to_string(tag), Clock::now()}, t,
        [&](void* p, size_t n, ncclDataType_t type) {
          return ncclRecv(p, n, type, src, comm_, stream_);
        },
        true);
  }

  std::vector<std::string> gather_bytes(const std::string& mine, int root) override {
    return control_->gather_bytes(mine, root);
  }
  void broadcast_bytes(std::string& bytes, int root) override {
    control_->broadcast_bytes(bytes, root);
  }
  void barrier() override { control_->barrier(); }

 private:
  struct Op {
    const char* name;
    std::string peer;
    Clock::time_point start;
  };

  std::string where(const Op& op) const {
    std::ostringstream os;
    os << "nccl rank " << rank() << "/" << world() << " (cuda:" << device_ << "): " << op.name
       << " (" << op.peer << ")";
    return os.str();
  }

  void check_peer(const char* op, int peer, bool not_self) const {
    SQ_CHECK(peer >= 0 && peer < world(), "nccl rank " << rank() << ": " << op << " with rank "
                                                       << peer << " outside 0.." << world() - 1);
    SQ_CHECK(!not_self || peer != rank(),
             "nccl rank " << rank() << ": " << op << " to or from itself");
  }

  // Stages t on this rank's GPU (contiguous), enqueues `enqueue` on the dedicated stream after
  // the default stream's pending work, waits with the deadline, and copies back if staged.
  // `abandonable` (point-to-point): a signal inside an AbandonScope (common/interrupt.h) aborts
  // the communicator and throws Interrupted, as the mpi transport's wait does.
  template <typename F>
  void run(const Op& op, at::Tensor& t, F&& enqueue, bool abandonable = false) {
    SQ_CHECK(healthy(), where(op) << ": the transport is unusable after an earlier timeout or "
                                     "NCCL failure; the job must be aborted");
    const bool direct = t.device() == device() && t.is_contiguous();
    at::Tensor dev = direct ? t : t.to(device()).contiguous();
    ncclDataType_t type;
    size_t count = static_cast<size_t>(dev.numel());
    if (!find_type(dev.scalar_type(), &type)) {
      type = ncclUint8;
      count = dev.nbytes();
    }
    SQ_CALL(Cuda, cudaSetDevice(device_));
    SQ_CALL(Cuda, cudaEventRecord(ready_, cudaStreamLegacy));
    SQ_CALL(Cuda, cudaStreamWaitEvent(stream_, ready_, 0));
    const ncclResult_t rc = enqueue(dev.data_ptr(), count, type);
    if (rc != ncclSuccess && rc != ncclInProgress) fail(op, rc);
    // A nonblocking communicator may still be enqueueing: until it leaves ncclInProgress the
    // stream can look idle although the operation is not on it yet.
    if (rc == ncclInProgress) poll_comm(op);
    poll_stream(op, abandonable);
    if (!direct) t.copy_(dev);
  }

  void poll_stream(const Op& op, bool abandonable = false) {
    const auto deadline = op.start + std::chrono::duration<double>(timeout_s_);
    auto nap = std::chrono::microseconds(1);
    for (;;) {
      const cudaError_t q = cudaStreamQuery(stream_);
      if (q == cudaSuccess) return;
      if (q != cudaErrorNotReady) {
        healthy_ = false;
        SQ_CALL(Cuda, q);
      }
      check_async(op);
      if (Clock::now() > deadline) timeout(op);
      if (abandonable) {
        try {
          abandon_point();
        } catch (const Interrupted&) {
          healthy_ = false;  // the operation stays enqueued: only the abort ends it
          ncclCommAbort(comm_);
          comm_ = nullptr;
          throw;
        }
      }
      std::this_thread::sleep_for(nap);
      nap = std::min(nap * 2, std::chrono::microseconds(200));
    }
  }

  // Waits until a nonblocking communicator operation (init) leaves ncclInProgress.
  void poll_comm(const Op& op) {
    const auto deadline = op.start + std::chrono::duration<double>(timeout_s_);
    for (;;) {
      ncclResult_t state = ncclSuccess;
      SQ_CALL(Nccl, ncclCommGetAsyncError(comm_, &state));
      if (state == ncclSuccess) return;
      if (state != ncclInProgress) fail(op, state);
      if (Clock::now() > deadline) timeout(op);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

  void check_async(const Op& op) {
    ncclResult_t state = ncclSuccess;
    const ncclResult_t rc = ncclCommGetAsyncError(comm_, &state);
    if (rc != ncclSuccess) fail(op, rc);
    if (state != ncclSuccess && state != ncclInProgress) fail(op, state);
  }

  [[noreturn]] void fail(const Op& op, ncclResult_t rc) {
    healthy_ = false;
    if (comm_ != nullptr) ncclCommAbort(comm_);
    comm_ = nullptr;
    SQ_THROW(BackendError,
             where(op) << " failed: " << sq::detail::BackendTraits<sq::detail::Nccl>::describe(rc));
  }

  [[noreturn]] void timeout(const Op& op) {
    healthy_ = false;
    if (comm_ != nullptr) ncclCommAbort(comm_);
    comm_ = nullptr;
    const double elapsed = std::chrono::duration<double>(Clock::now() - op.start).count();
    std::ostringstream os;
    os.precision(3);
    os << where(op) << " timed out after " << elapsed << " s (--comm-timeout " << timeout_s_
       << " s); another rank died, hangs, or called collectives in a different order";
    throw BackendError(os.str());
  }

  std::unique_ptr<Transport> control_;  // MPI: bootstrap, bytes, barrier, agree
  double timeout_s_;
  int device_ = 0;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t ready_ = nullptr;
  ncclComm_t comm_ = nullptr;
  bool healthy_ = true;
};

}  // namespace

std::unique_ptr<Transport> make_nccl_transport(const TransportOptions& options) {
  return std::make_unique<NcclTransport>(options);
}

}  // namespace sq::rank
#endif  // SQ_WITH_NCCL
