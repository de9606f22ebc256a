#include "rank/transport/mpi_transport.h"

#include "common/check.h"

#ifndef SQ_WITH_MPI
namespace sq::rank {
std::unique_ptr<Transport> make_mpi_transport(const TransportOptions&) {
  SQ_REQUIRE(false, "--transport mpi: this build of shardquant has no MPI (SQ_WITH_MPI=OFF)");
}
}  // namespace sq::rank
#else

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/interrupt.h"
#include "rank/transport/mpi_check.h"
#include "rank/transport/mpi_runtime.h"
#include "rank/transport/peer_liveness.h"
#include "rank/transport/transport_dtype.h"

namespace sq::rank {
namespace {

using Clock = std::chrono::steady_clock;

// Largest single MPI message in bytes: counts are int, and bounded chunks keep rank 0's
// reduction buffer (world × chunk) small.
constexpr int64_t kChunkBytes = int64_t{1} << 26;
// Tags of the transport's own point-to-point messages (on the private collective communicator).
constexpr int kTagReduce = 1;
constexpr int kTagGather = 2;
constexpr int kTagGatherSize = 3;
// How often a waiting rank looks whether the other ranks' processes on its host still run: every
// second, and every 20 ms once SIGTERM/SIGINT arrived (Open MPI's mpirun answers a rank killed by
// a signal with SIGTERM to every other rank and SIGKILL soon after: the survivors have that
// moment to say which rank died).
constexpr std::chrono::milliseconds kLookEvery{1000};
constexpr std::chrono::milliseconds kLookEveryAfterSignal{20};

struct MpiTypeRow {
  at::ScalarType type;
  MPI_Datatype mpi;
};

MPI_Datatype mpi_type(at::ScalarType type) {
  const MpiTypeRow rows[] = {
      {at::kFloat, MPI_FLOAT}, {at::kDouble, MPI_DOUBLE}, {at::kLong, MPI_INT64_T}};
  for (const auto& r : rows)
    if (r.type == type) return r.mpi;
  SQ_CHECK(false, "no MPI datatype for " << type);
}

// A contiguous CPU view of `t` to communicate from/into; write_back() copies received data into
// the caller's tensor when a staging copy was needed (CUDA or strided tensors).
class Staged {
 public:
  explicit Staged(const at::Tensor& t) : orig_(t) {
    host_ = (t.device().is_cpu() && t.is_contiguous()) ? t : t.to(at::kCPU).contiguous();
  }
  char* data() const { return static_cast<char*>(host_.data_ptr()); }
  int64_t nbytes() const { return static_cast<int64_t>(host_.nbytes()); }
  const at::Tensor& host() const { return host_; }
  void write_back() {
    if (!host_.is_same(orig_)) orig_.copy_(host_);
  }

 private:
  at::Tensor orig_;
  at::Tensor host_;
};

class MpiTransport final : public Transport {
 public:
  explicit MpiTransport(const TransportOptions& options)
      : runtime_(MpiRuntime::acquire()), timeout_s_(options.timeout_s) {
    SQ_CALL(Mpi, MPI_Comm_dup(MPI_COMM_WORLD, &coll_));
    SQ_CALL(Mpi, MPI_Comm_set_errhandler(coll_, MPI_ERRORS_RETURN));
    SQ_CALL(Mpi, MPI_Comm_dup(MPI_COMM_WORLD, &p2p_));
    SQ_CALL(Mpi, MPI_Comm_set_errhandler(p2p_, MPI_ERRORS_RETURN));
    SQ_CALL(Mpi, MPI_Comm_rank(coll_, &rank_));
    SQ_CALL(Mpi, MPI_Comm_size(coll_, &world_));
    MPI_Comm node = MPI_COMM_NULL;
    SQ_CALL(Mpi, MPI_Comm_split_type(coll_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node));
    SQ_CALL(Mpi, MPI_Comm_rank(node, &local_rank_));
    // The other ranks of this host by pid, so that wait() can tell a dead one from a slow one.
    int node_size = 1;
    SQ_CALL(Mpi, MPI_Comm_size(node, &node_size));
    const int mine[2] = {rank_, static_cast<int>(::getpid())};
    std::vector<int> ids(2 * static_cast<size_t>(node_size));
    SQ_CALL(Mpi, MPI_Allgather(mine, 2, MPI_INT, ids.data(), 2, MPI_INT, node));
    MPI_Comm_free(&node);
    std::vector<WatchedRank> peers;
    for (int i = 0; i < node_size; ++i)
      if (ids[2 * i] != rank_) peers.push_back({ids[2 * i], process_id(ids[2 * i + 1])});
    peers_ = PeerLiveness(std::move(peers));
  }

  ~MpiTransport() override {
    if (!healthy_) return;  // pending requests: freeing the communicators could block
    MPI_Comm_free(&coll_);
    MPI_Comm_free(&p2p_);
  }

  int rank() const override { return rank_; }
  int world() const override { return world_; }
  int local_rank() const override { return local_rank_; }
  const char* name() const override { return "mpi"; }
  bool healthy() const override { return healthy_; }

  void abort_job(int code) noexcept override {
    MpiRuntime::mark_poisoned();
    MPI_Abort(MPI_COMM_WORLD, code == 0 ? 1 : code);
  }
  void leave_unsynchronized() noexcept override { MpiRuntime::mark_poisoned(); }

  void all_reduce_sum(at::Tensor& t) override {
    require_reducible(t, "mpi", rank_, "all_reduce_sum");
    if (world_ == 1) return;
    const Op op = start("all_reduce_sum", "all ranks");
    Staged s(t);
    if (exact_sum_dtype(t.scalar_type())) {
      const int64_t esize = s.host().element_size();
      for_chunks(s.nbytes(), [&](int64_t off, int len) {
        MPI_Request req;
        call(op, MPI_Iallreduce(MPI_IN_PLACE, s.data() + off, static_cast<int>(len / esize),
                                mpi_type(t.scalar_type()), MPI_SUM, coll_, &req));
        wait(op, req, -1);
      });
    } else {
      reduce_in_rank_order(op, s);
      bcast_raw(op, s.data(), s.nbytes(), 0);
    }
    s.write_back();
  }

  void broadcast(at::Tensor& t, int root) override {
    const Op op = start("broadcast", "root " + std::to_string(root));
    check_peer(op, root);
    if (world_ == 1) return;
    Staged s(t);
    // Agree on the size first: a mismatch would otherwise corrupt or hang the data broadcast.
    int64_t size = s.nbytes();
    bcast_raw(op, reinterpret_cast<char*>(&size), sizeof size, root);
    if (size != s.nbytes()) {
      healthy_ = false;
      SQ_THROW(BackendError, where(op) << ": root sends " << size << " bytes but this rank's "
                                       << t.scalar_type() << " tensor " << t.sizes() << " has "
                                       << s.nbytes());
    }
    bcast_raw(op, s.data(), s.nbytes(), root);
    s.write_back();
  }

  void send(const at::Tensor& t, int dst, int tag) override {
    const Op op = start("send", "rank " + std::to_string(dst) + " tag " + std::to_string(tag));
    check_peer(op, dst, true);
    Staged s(t);
    for_chunks(s.nbytes(), [&](int64_t off, int len) {
      MPI_Request req;
      call(op, MPI_Isend(s.data() + off, len, MPI_BYTE, dst, tag, p2p_, &req));
      wait(op, req, -1, dst, [&] {
        // Abandoned (see wait): MPI cannot reliably cancel a send, so the request is released
        // to complete on its own and its buffer kept for the life of the transport.
        abandoned_.push_back(s.host());
        MPI_Request_free(&req);
      });
    });
  }

  void recv(at::Tensor& t, int src, int tag) override {
    const Op op = start("recv", "rank " + std::to_string(src) + " tag " + std::to_string(tag));
    check_peer(op, src, true);
    Staged s(t);
    for_chunks(s.nbytes(), [&](int64_t off, int len) {
      MPI_Request req;
      call(op, MPI_Irecv(s.data() + off, len, MPI_BYTE, src, tag, p2p_, &req));
      wait(op, req, len, src, [&] {  // abandoned (see wait): the receive is withdrawn
        MPI_Cancel(&req);
        MPI_Wait(&req, MPI_STATUS_IGNORE);
      });
    });
    s.write_back();
  }

  std::vector<std::string> gather_bytes(const std::string& mine, int root) override {
    const Op op = start("gather_bytes", "root " + std::to_string(root));
    check_peer(op, root);
    if (world_ == 1) return {mine};
    SQ_CHECK(mine.size() < static_cast<size_t>(INT_MAX),
             where(op) << ": buffer of " << mine.size() << " bytes exceeds 2 GiB");
    // Point-to-point rather than MPI_Igatherv: on timeout rank root can name the missing rank.
    int64_t size = static_cast<int64_t>(mine.size());
    MPI_Request req;
    if (rank_ != root) {
      call(op, MPI_Isend(&size, 1, MPI_INT64_T, root, kTagGatherSize, coll_, &req));
      wait(op, req, -1, root);
      call(op,
           MPI_Isend(mine.data(), static_cast<int>(size), MPI_BYTE, root, kTagGather, coll_, &req));
      wait(op, req, -1, root);
      return {};
    }
    std::vector<int64_t> sizes(world_, 0);
    std::vector<MPI_Request> reqs(world_, MPI_REQUEST_NULL);
    for (int r = 0; r < world_; ++r)
      if (r != root)
        call(op, MPI_Irecv(&sizes[r], 1, MPI_INT64_T, r, kTagGatherSize, coll_, &reqs[r]));
    std::vector<std::string> out(world_);
    for (int r = 0; r < world_; ++r) {
      if (r == root) continue;
      wait(op, reqs[r], static_cast<int>(sizeof(int64_t)), r);
      out[r].resize(static_cast<size_t>(sizes[r]));
      call(op, MPI_Irecv(out[r].data(), static_cast<int>(sizes[r]), MPI_BYTE, r, kTagGather, coll_,
                         &reqs[r]));
    }
    out[root] = mine;
    for (int r = 0; r < world_; ++r)
      if (r != root) wait(op, reqs[r], static_cast<int>(sizes[r]), r);
    return out;
  }

  void broadcast_bytes(std::string& bytes, int root) override {
    const Op op = start("broadcast_bytes", "root " + std::to_string(root));
    check_peer(op, root);
    if (world_ == 1) return;
    int64_t size = static_cast<int64_t>(bytes.size());
    bcast_raw(op, reinterpret_cast<char*>(&size), sizeof size, root);
    bytes.resize(static_cast<size_t>(size));
    bcast_raw(op, bytes.data(), size, root);
  }

  void barrier() override {
    const Op op = start("barrier", "all ranks");
    MPI_Request req;
    call(op, MPI_Ibarrier(coll_, &req));
    wait(op, req, -1);
  }

 private:
  struct Op {
    const char* name;
    std::string peer;  // who this rank waits for, in words
    Clock::time_point start;
  };

  Op start(const char* name, std::string peer) const {
    SQ_CHECK(healthy_, where(Op{name, peer, Clock::now()})
                           << ": the transport is unusable after an earlier timeout or MPI "
                              "failure; the job must be aborted");
    return Op{name, std::move(peer), Clock::now()};
  }

  std::string where(const Op& op) const {
    std::ostringstream os;
    os << "mpi rank " << rank_ << "/" << world_ << ": " << op.name << " (" << op.peer << ")";
    return os.str();
  }

  void check_peer(const Op& op, int peer, bool not_self = false) const {
    SQ_CHECK(peer >= 0 && peer < world_,
             where(op) << ": rank " << peer << " is outside 0.." << world_ - 1);
    SQ_CHECK(!not_self || peer != rank_, where(op)
                                             << ": a rank cannot send to or receive from itself");
  }

  // MPI failures poison the transport like timeouts do: state of pending requests is unknown.
  void call(const Op& op, int rc) {
    if (rc == MPI_SUCCESS) return;
    healthy_ = false;
    MpiRuntime::mark_poisoned();
    SQ_THROW(BackendError,
             where(op) << " failed: " << sq::detail::BackendTraits<sq::detail::Mpi>::describe(rc));
  }

  // Polls `req` until done or the deadline; expect_bytes >= 0 checks a receive's size. peer_rank
  // (when >= 0) is the one rank this wait depends on, named on timeout. A rank of this host whose
  // process ended fails the wait at once, naming it (fail_if_peers_died). With `abandon`
  // (point-to-point), a signal inside an AbandonScope (common/interrupt.h: the relay between
  // blocks-mode ranks) gives the wait up: `abandon` settles the request and Interrupted is thrown,
  // so that a rank waiting for a neighbour that stopped joins the agreement to stop.
  void wait(const Op& op, MPI_Request& req, int expect_bytes, int peer_rank = -1,
            const std::function<void()>& abandon = {}) {
    const auto deadline = op.start + std::chrono::duration<double>(timeout_s_);
    auto nap = std::chrono::microseconds(1);
    auto last_look = op.start;
    for (int spins = 0;; ++spins) {
      int done = 0;
      MPI_Status st;
      call(op, MPI_Test(&req, &done, &st));
      if (done) {
        if (expect_bytes >= 0) check_count(op, st, expect_bytes);
        return;
      }
      const auto now = Clock::now();
      if (now > deadline) timeout(op, peer_rank);
      if (abandon) {
        try {
          abandon_point();
        } catch (const Interrupted&) {
          abandon();
          throw;
        }
      }
      if (now - last_look >= (interrupt_signal() != 0 ? kLookEveryAfterSignal : kLookEvery)) {
        last_look = now;
        fail_if_peers_died(op);
      }
      // Back off: the machine may be oversubscribed, and spinning ranks starve the slow one.
      if (spins > 64) {
        std::this_thread::sleep_for(nap);
        nap = std::min(nap * 2, std::chrono::microseconds(500));
      }
    }
  }

  void check_count(const Op& op, const MPI_Status& st, int expect_bytes) {
    int got = 0;
    MPI_Get_count(&st, MPI_BYTE, &got);
    if (got == expect_bytes) return;
    healthy_ = false;
    SQ_THROW(BackendError, where(op) << ": received " << got << " bytes from rank " << st.MPI_SOURCE
                                     << ", expected " << expect_bytes
                                     << " (tensor shapes differ between sender and receiver)");
  }

  // Every watched rank of this host whose process has ended, in words ("" when none); `count`
  // gets how many.
  std::string dead_peers(size_t* count = nullptr) const {
    const auto gone = peers_.gone();
    std::ostringstream os;
    for (const auto& p : gone)
      os << (os.tellp() > 0 ? ", " : "") << "rank " << p.rank << " (pid " << p.process.pid << ")";
    if (count) *count = gone.size();
    return os.str();
  }

  void fail_if_peers_died(const Op& op) {
    size_t n = 0;
    const std::string dead = dead_peers(&n);
    if (n == 0) return;
    healthy_ = false;
    MpiRuntime::mark_poisoned();
    std::ostringstream os;
    os.precision(3);
    os << where(op) << ": " << dead << " died — "
       << (n == 1 ? "its process on this host has" : "their processes on this host have")
       << " ended (killed or crashed) — after "
       << std::chrono::duration<double>(Clock::now() - op.start).count()
       << " s of waiting; the job cannot go on";
    throw BackendError(os.str());
  }

  [[noreturn]] void timeout(const Op& op, int peer_rank) {
    healthy_ = false;
    MpiRuntime::mark_poisoned();
    const double elapsed = std::chrono::duration<double>(Clock::now() - op.start).count();
    std::ostringstream os;
    os.precision(3);
    os << where(op) << " timed out after " << elapsed << " s";
    if (peer_rank >= 0)
      os << " waiting for rank " << peer_rank << ": rank " << peer_rank
         << " did not answer within --comm-timeout " << timeout_s_ << " s (dead or hung)";
    else
      os << " (--comm-timeout " << timeout_s_
         << " s); another rank died, hangs, or called collectives in a different order";
    if (const std::string dead = dead_peers(); !dead.empty()) os << "; dead on this host: " << dead;
    throw BackendError(os.str());
  }

  template <typename F>
  static void for_chunks(int64_t nbytes, F&& fn) {
    for (int64_t off = 0; off < nbytes; off += kChunkBytes)
      fn(off, static_cast<int>(std::min(kChunkBytes, nbytes - off)));
  }

  void bcast_raw(const Op& op, char* data, int64_t nbytes, int root) {
    for_chunks(nbytes, [&](int64_t off, int len) {
      MPI_Request req;
      call(op, MPI_Ibcast(data + off, len, MPI_BYTE, root, coll_, &req));
      wait(op, req, -1);
    });
  }

  // Rank 0 receives every other rank's chunk and adds them in rank order; the result is left in
  // rank 0's buffer (the caller broadcasts it).
  void reduce_in_rank_order(const Op& op, Staged& s) {
    const at::Tensor flat = s.host().view({-1});
    const int64_t esize = flat.element_size();
    for_chunks(s.nbytes(), [&](int64_t off, int len) {
      const int64_t n = len / esize;
      if (rank_ != 0) {
        MPI_Request req;
        call(op, MPI_Isend(s.data() + off, len, MPI_BYTE, 0, kTagReduce, coll_, &req));
        wait(op, req, -1, 0);
        return;
      }
      at::Tensor parts = at::empty({world_ - 1, n}, flat.options());
      std::vector<MPI_Request> reqs(world_ - 1);
      for (int r = 1; r < world_; ++r)
        call(op, MPI_Irecv(static_cast<char*>(parts[r - 1].data_ptr()), len, MPI_BYTE, r,
                           kTagReduce, coll_, &reqs[r - 1]));
      at::Tensor acc = flat.narrow(0, off / esize, n);
      for (int r = 1; r < world_; ++r) {
        wait(op, reqs[r - 1], len, r);
        acc.add_(parts[r - 1]);  // elementwise: ((x0 + x1) + x2) + … exactly
      }
    });
  }

  std::shared_ptr<MpiRuntime> runtime_;
  double timeout_s_;
  MPI_Comm coll_ = MPI_COMM_NULL;
  MPI_Comm p2p_ = MPI_COMM_NULL;
  int rank_ = 0;
  int world_ = 1;
  int local_rank_ = 0;
  bool healthy_ = true;
  PeerLiveness peers_;                 // the other ranks of this host
  std::vector<at::Tensor> abandoned_;  // buffers of abandoned sends (see send)
};

}  // namespace

std::unique_ptr<Transport> make_mpi_transport(const TransportOptions& options) {
  return std::make_unique<MpiTransport>(options);
}

}  // namespace sq::rank
#endif  // SQ_WITH_MPI
