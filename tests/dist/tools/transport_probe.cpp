// sq_transport_probe: an MPI child for tests/dist. Launched as
//   mpirun -n N sq_transport_probe <scenario> [timeout_s] [mpi|nccl|local]
// scenarios:
//   contract  every Transport operation checked against values computed here independently
//             (each rank can regenerate every rank's input); prints "rank R/N: PASS <k> checks"
//   timeout   the last rank skips an all_reduce_sum (sleeps); the others must time out
//   fault     one agreed_step("plan"); SHARDQUANT_FAULT decides which rank fails
//   share     every rank in turn is the owner of a QuantizedLinear (rank::share_quantized); every
//             rank rebuilds the owner's linear itself and checks the received one bit for bit;
//             prints "rank R/N: SHARE PASS <k> checks"
// Every error is printed as "[r<rank>] error (exit <code>): <what>"; non-agreed errors abort the
// job (abort_unless_agreed), exactly as shardquant's main() does.
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <type_traits>

#include "common/errors.h"
#include "common/interrupt.h"
#include "rank/transport/reduce.h"
#include "rank/transport/transport.h"
#include "solvers/quant_grid.h"

using sq::rank::Transport;

namespace {

int g_checks = 0;

#define PROBE_EXPECT(cond, what)                         \
  do {                                                   \
    ++g_checks;                                          \
    if (!(cond)) {                                       \
      std::ostringstream os_;                            \
      os_ << "check failed: " << what << " [" #cond "]"; \
      throw sq::InternalError(os_.str());                \
    }                                                    \
  } while (0)

// Deterministic per-rank values spanning many magnitudes, so the order of addition matters.
double value(int rank, int64_t i) {
  uint64_t x = (static_cast<uint64_t>(rank) + 1) * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(i);
  x ^= x >> 31;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 29;
  const double unit = static_cast<double>(x % 1000003) / 1000003.0 - 0.5;
  return unit * std::pow(10.0, static_cast<int>(x % 13) - 6);
}

template <typename T>
at::Tensor rank_input(int rank, int64_t n, at::ScalarType type) {
  at::Tensor t = at::empty({n}, at::TensorOptions().dtype(type));
  T* p = t.data_ptr<T>();
  for (int64_t i = 0; i < n; ++i) {
    if constexpr (std::is_integral_v<T>)
      p[i] = static_cast<T>(value(rank, i) * 1e12);
    else
      p[i] = static_cast<T>(value(rank, i));
  }
  return t;
}

// ((x0 + x1) + x2) + … in T, element by element: the documented reduction order.
template <typename T>
at::Tensor expected_sum(int world, int64_t n, at::ScalarType type) {
  at::Tensor acc = rank_input<T>(0, n, type);
  T* a = acc.data_ptr<T>();
  for (int r = 1; r < world; ++r) {
    at::Tensor x = rank_input<T>(r, n, type);
    const T* p = x.data_ptr<T>();
    for (int64_t i = 0; i < n; ++i) a[i] = static_cast<T>(a[i] + p[i]);
  }
  return acc;
}

std::string raw_bytes(const at::Tensor& t) {
  at::Tensor c = t.contiguous();
  return std::string(static_cast<const char*>(c.data_ptr()), c.nbytes());
}

// The result must be bit-identical on all ranks and match the rank-order oracle bit for bit
// (the documented order for mpi/local; exact dtypes everywhere). NCCL's float order is its own,
// so there the float result is only compared within a tolerance.
template <typename T>
void check_all_reduce(Transport& t, at::ScalarType type, int64_t n) {
  at::Tensor x = rank_input<T>(t.rank(), n, type).to(t.device());
  t.all_reduce_sum(x);
  x = x.cpu();
  const at::Tensor want = expected_sum<T>(t.world(), n, type);
  if (std::string(t.name()) != "nccl" || type == at::kLong) {
    PROBE_EXPECT(raw_bytes(x) == raw_bytes(want),
                 "all_reduce_sum " << type << " n=" << n << " equals rank-order sum");
  } else {
    PROBE_EXPECT(at::allclose(x, want, 1e-4, 1e-9), "all_reduce_sum " << type << " n=" << n);
  }
  const auto all = t.gather_bytes(raw_bytes(x), 0);
  for (const auto& b : all)
    PROBE_EXPECT(b == all[0], "all_reduce_sum " << type << " identical bits on every rank");
}

void check_contract(Transport& t, const std::string& kind) {
  const int r = t.rank(), w = t.world();
  PROBE_EXPECT(t.name() == kind, "transport name " << t.name());
  PROBE_EXPECT(t.local_rank() == r, "one host: local rank equals rank");
  for (int64_t n : {1, 1000, 300001}) {
    check_all_reduce<float>(t, at::kFloat, n);
    check_all_reduce<double>(t, at::kDouble, n);
    check_all_reduce<int64_t>(t, at::kLong, n);
  }
  {  // non-contiguous tensor: written back in place through the strided view
    at::Tensor base = at::full({4, 6}, static_cast<double>(r + 1), at::kDouble);
    at::Tensor view = base.t();
    t.all_reduce_sum(view);
    PROBE_EXPECT(base.eq(w * (w + 1) / 2.0).all().item<bool>(), "strided all_reduce_sum");
  }
  {  // broadcast from the last rank
    at::Tensor x = at::full({3, 5}, static_cast<float>(r), at::kFloat);
    t.broadcast(x, w - 1);
    PROBE_EXPECT(x.eq(static_cast<float>(w - 1)).all().item<bool>(), "broadcast from root w-1");
  }
  if (w > 1) {  // ring: even ranks send first, odd ranks receive first (no reliance on eager sends)
    const int next = (r + 1) % w, prev = (r + w - 1) % w;
    const int64_t n = 200000;  // large enough for rendezvous
    at::Tensor out = at::full({n}, static_cast<int64_t>(r * 1000 + 7), at::kLong);
    at::Tensor in = at::zeros({n}, at::kLong);
    if (r % 2 == 0) {
      t.send(out, next, 11);
      t.recv(in, prev, 11);
    } else {
      t.recv(in, prev, 11);
      t.send(out, next, 11);
    }
    PROBE_EXPECT(in.eq(prev * 1000 + 7).all().item<bool>(), "ring recv from rank " << prev);
  }
  {  // variable-size bytes, with NULs, gathered to a non-zero root
    const int root = w / 2;
    std::string mine(static_cast<size_t>(r) * 1000 + 3, static_cast<char>('a' + r));
    mine[1] = '\0';
    const auto all = t.gather_bytes(mine, root);
    if (r == root) {
      PROBE_EXPECT(static_cast<int>(all.size()) == w, "gather_bytes count at root");
      for (int k = 0; k < w; ++k) {
        std::string want(static_cast<size_t>(k) * 1000 + 3, static_cast<char>('a' + k));
        want[1] = '\0';
        PROBE_EXPECT(all[k] == want, "gather_bytes buffer of rank " << k);
      }
    } else {
      PROBE_EXPECT(all.empty(), "gather_bytes empty off root");
    }
    std::string b = r == root ? std::string("plan\0v1", 7) : std::string("stale");
    t.broadcast_bytes(b, root);
    PROBE_EXPECT(b == std::string("plan\0v1", 7), "broadcast_bytes");
  }
  t.barrier();
  {  // agree: all ok, then the last two ranks fail with different severities
    PROBE_EXPECT(t.agree(sq::rank::Status::ok()).is_ok(), "agree all ok");
    sq::rank::Status mine;
    if (r == w - 1) mine = sq::rank::Status::from_exception(sq::InputError("bad input here"), r);
    if (w > 2 && r == w - 2)
      mine = sq::rank::Status::from_exception(sq::BackendError("disk full here"), r);
    const auto s = t.agree(mine);
    const int worst_rank = w > 2 ? w - 2 : w - 1;
    PROBE_EXPECT(s.rank == worst_rank, "agree names the worst rank, got " << s.rank);
    PROBE_EXPECT(s.code == (w > 2 ? 3 : 2), "agree worst code, got " << s.code);
    PROBE_EXPECT(s.failed_ranks == (w > 2 ? 2 : 1), "agree failed count, got " << s.failed_ranks);
    PROBE_EXPECT(s.message == (w > 2 ? "disk full here" : "bad input here"), "agree message");
  }
  {  // an interruption (exit 143) on the last rank is below an input error (2) on rank 0
    sq::rank::Status mine;
    if (r == w - 1) mine = sq::rank::Status::from_exception(sq::Interrupted("stopped here", 15), r);
    if (w > 1 && r == 0)
      mine = sq::rank::Status::from_exception(sq::InputError("bad input here"), r);
    const auto s = t.agree(mine);
    PROBE_EXPECT(s.code == (w > 1 ? 2 : 143),
                 "agree: an error beats an interruption, got " << s.code);
    PROBE_EXPECT(s.rank == (w > 1 ? 0 : w - 1), "agree: interruption ranked last, got " << s.rank);
  }
  PROBE_EXPECT(t.healthy(), "healthy after the contract");
}

void run_timeout(Transport& t) {
  at::Tensor x = at::ones({16}, at::kFloat);
  if (t.rank() == t.world() - 1) {
    // This rank "hangs": it never joins; the others' deadline must fire and abort the job.
    std::this_thread::sleep_for(std::chrono::seconds(60));
    return;
  }
  t.all_reduce_sum(x);
}

// The linear that `owner` shares: a deterministic weight (no RNG), its RTN quantization and
// owner-specific stats, so that a linear received from the wrong rank cannot pass.
sq::solvers::QuantizedLinear owned_linear(int owner) {
  const int64_t N = 6 + owner, K = 64;
  at::Tensor w = at::sin(at::arange(N * K, at::kDouble) * (0.37 + owner)).to(at::kFloat);
  auto q = sq::solvers::quantize_rtn(w.reshape({N, K}), {4, 32, true}, sq::solvers::GridKind::kGptq,
                                     "probe");
  q.stats.error = 1.0 / (3.0 + owner);
  q.stats.damp_escalations = owner + 1;
  q.stats.dead_columns = 10 * owner;
  q.stats.rtn_fallback = owner % 2 == 1;
  return q;
}

void check_share(Transport& t) {
  const sq::rank::TransportReducer reducer(t);
  for (int owner = 0; owner < t.world(); ++owner) {
    const auto want = owned_linear(owner);
    sq::solvers::QuantizedLinear q;
    double seconds = -1;
    std::string note;
    if (t.rank() == owner) {
      q = owned_linear(owner);
      seconds = 0.25 * owner;
      note = "note of rank " + std::to_string(owner);
    }
    sq::rank::share_quantized(reducer, q, seconds, note, owner, at::Device(at::kCPU));
    PROBE_EXPECT(q.codes.scalar_type() == at::kInt && at::equal(q.codes, want.codes),
                 "codes from rank " << owner);
    PROBE_EXPECT(at::equal(q.zeros, want.zeros), "zeros from rank " << owner);
    PROBE_EXPECT(at::equal(q.scales, want.scales), "scales from rank " << owner);
    PROBE_EXPECT(at::equal(q.g_idx, want.g_idx), "g_idx from rank " << owner);
    PROBE_EXPECT(at::equal(q.dequant, want.dequant), "dequant from rank " << owner);
    PROBE_EXPECT(q.stats.error == want.stats.error, "stats.error from rank " << owner);
    PROBE_EXPECT(q.stats.damp_escalations == owner + 1 && q.stats.dead_columns == 10 * owner &&
                     q.stats.rtn_fallback == (owner % 2 == 1),
                 "counters from rank " << owner);
    PROBE_EXPECT(seconds == 0.25 * owner && note == "note of rank " + std::to_string(owner),
                 "report fields from rank " << owner);
  }
  // The last rank's solve "threw": every rank throws its error instead of waiting for tensors.
  const int root = t.world() - 1;
  sq::rank::Status failure;
  if (t.rank() == root) {
    failure.code = 2;
    failure.rank = root;
    failure.message = "solver failed on purpose";
    failure.failed_ranks = 1;
  }
  sq::solvers::QuantizedLinear q;
  double seconds = 0;
  std::string note;
  std::string caught;
  try {
    sq::rank::share_quantized(reducer, q, seconds, note, root, at::Device(at::kCPU), failure);
  } catch (const sq::InputError& e) {
    caught = e.what();
  }
  PROBE_EXPECT(caught.find("rank " + std::to_string(root) + " failed in step 'solve'") !=
                       std::string::npos &&
                   caught.find("solver failed on purpose") != std::string::npos,
               "owner failure arrives as an InputError, got '" << caught << "'");
}

}  // namespace

int main(int argc, char** argv) {
  const std::string scenario = argc > 1 ? argv[1] : "contract";
  sq::rank::TransportOptions options;
  if (argc > 2) options.timeout_s = std::stod(argv[2]);
  const std::string kind = argc > 3 ? argv[3] : "mpi";
  std::unique_ptr<Transport> t;
  try {
    t = sq::rank::make_transport(sq::rank::parse_transport_kind(kind), options);
    if (scenario == "contract") {
      check_contract(*t, kind);
      std::printf("rank %d/%d: PASS %d checks\n", t->rank(), t->world(), g_checks);
    } else if (scenario == "share") {
      check_share(*t);
      std::printf("rank %d/%d: SHARE PASS %d checks\n", t->rank(), t->world(), g_checks);
    } else if (scenario == "timeout") {
      run_timeout(*t);
    } else if (scenario == "fault") {
      sq::rank::agreed_step(*t, "plan", [] {});
      std::printf("rank %d/%d: step plan ok\n", t->rank(), t->world());
    } else {
      throw sq::InputError("unknown scenario '" + scenario + "'");
    }
    std::fflush(stdout);
    return 0;
  } catch (const std::exception& e) {
    const int code = sq::exit_code_for(e);
    std::fprintf(stderr, "[r%d] error (exit %d): %s\n", t ? t->rank() : -1, code, e.what());
    std::fflush(stderr);
    sq::rank::abort_unless_agreed(t.get(), e);
    return code;
  }
}
