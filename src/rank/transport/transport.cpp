// Transport kinds, Status agreement and the agreed-step helper shared by every implementation.
#include "rank/transport/transport.h"

#include <cstdint>
#include <cstring>
#include <sstream>

#include "common/check.h"
#include "common/interrupt.h"
#include "rank/transport/mpi_transport.h"
#include "rank/transport/nccl_transport.h"
#include "rank/transport/transport_fault.h"
#include "rank/transport/transport_local.h"

namespace sq::rank {
namespace {

struct KindRow {
  TransportKind kind;
  const char* name;
  bool built;
};

constexpr KindRow kKinds[] = {
    {TransportKind::kLocal, "local", true},
#ifdef SQ_WITH_MPI
    {TransportKind::kMpi, "mpi", true},
#else
    {TransportKind::kMpi, "mpi", false},
#endif
#ifdef SQ_WITH_NCCL
    {TransportKind::kNccl, "nccl", true},
#else
    {TransportKind::kNccl, "nccl", false},
#endif
};

const KindRow& row_of(TransportKind kind) {
  for (const auto& r : kKinds)
    if (r.kind == kind) return r;
  SQ_CHECK(false, "unknown TransportKind " << static_cast<int>(kind));
}

// Errors raised from an agreed status: the same class as the failure, tagged so that main() can
// tell that every rank throws it (no abort needed).
struct AgreedTag {};
template <typename Base>
class Agreed : public Base, public AgreedTag {
 public:
  using Base::Base;
};

// Raises by exit code; a table keeps the code → class mapping in one place.
using Raiser = void (*)(const std::string&);
struct RaiseRow {
  int code;
  Raiser raise;
};
constexpr RaiseRow kRaise[] = {
    {static_cast<int>(ExitCode::kUser), [](const std::string& m) { throw Agreed<InputError>(m); }},
    {static_cast<int>(ExitCode::kSystem),
     [](const std::string& m) { throw Agreed<BackendError>(m); }},
    {static_cast<int>(ExitCode::kInternal),
     [](const std::string& m) { throw Agreed<InternalError>(m); }},
};

// Exit codes 128 + signal are interruptions (common/interrupt.h): a rank stopped on SIGTERM /
// SIGINT. Any error is worse (it says more about the run than that the job was being stopped).
bool interruption(int code) {
  return code > 128;
}
int severity(int code) {
  return interruption(code) ? 1 : code;
}

// Wire format of a Status: code, rank and failed_ranks as int32, then the message bytes.
constexpr size_t kHead = 3 * sizeof(int32_t);

std::string encode(const Status& s) {
  std::string out(kHead, '\0');
  const int32_t head[3] = {s.code, s.rank, s.failed_ranks};
  std::memcpy(out.data(), head, kHead);
  return out + s.message;
}

Status decode(const std::string& bytes, int from_rank) {
  SQ_CHECK(bytes.size() >= kHead, "status from rank " << from_rank << " is " << bytes.size()
                                                      << " bytes, expected at least " << kHead);
  int32_t head[3];
  std::memcpy(head, bytes.data(), kHead);
  Status s;
  s.code = head[0];
  s.rank = head[1];
  s.failed_ranks = head[2];
  s.message = bytes.substr(kHead);
  return s;
}

}  // namespace

TransportKind parse_transport_kind(const std::string& text) {
  for (const auto& r : kKinds) {
    if (text != r.name) continue;
    SQ_REQUIRE(r.built, "--transport " << text << ": this build of shardquant has no " << text
                                       << " support (rebuild with SQ_WITH_"
                                       << (r.kind == TransportKind::kMpi ? "MPI" : "NCCL")
                                       << "=ON)");
    return r.kind;
  }
  SQ_REQUIRE(false, "--transport: expected nccl, mpi or local, got '" << text << "'");
}

const char* transport_kind_name(TransportKind kind) {
  return row_of(kind).name;
}
bool transport_kind_built(TransportKind kind) {
  return row_of(kind).built;
}

TransportKind default_transport_kind(bool ranks_have_gpus) {
  if (ranks_have_gpus && transport_kind_built(TransportKind::kNccl)) return TransportKind::kNccl;
  if (transport_kind_built(TransportKind::kMpi)) return TransportKind::kMpi;
  return TransportKind::kLocal;
}

Status Status::from_exception(const std::exception& e, int rank) {
  Status s;
  s.code = exit_code_for(e);
  if (s.code == 0) s.code = static_cast<int>(ExitCode::kInternal);
  s.rank = rank;
  s.message = e.what();
  s.failed_ranks = 1;
  return s;
}

void Status::raise(const std::string& step) const {
  if (is_ok()) return;
  std::ostringstream msg;
  const char* verb = interruption(code) ? "stopped" : "failed";
  msg << "rank " << rank << " " << verb;
  if (!step.empty()) msg << " in step '" << step << "'";
  if (failed_ranks > 1) msg << " (" << failed_ranks << " ranks " << verb << "; showing the worst)";
  msg << ": " << message;
  // Every rank exits 128 + the signal, as a single process does (Slurm and the job script see
  // 143 / 130, not an internal error).
  if (interruption(code)) throw Agreed<Interrupted>(msg.str(), code - 128);
  for (const auto& r : kRaise)
    if (r.code == code) r.raise(msg.str());
  kRaise[2].raise(msg.str() + " [unknown status code " + std::to_string(code) + "]");
}

bool all_ranks_know(const std::exception& e) {
  return dynamic_cast<const AgreedTag*>(&e) != nullptr;
}

Status Transport::agree(const Status& mine) {
  Status own = mine;
  own.rank = own.is_ok() ? -1 : rank();
  own.failed_ranks = own.is_ok() ? 0 : 1;
  // Rank 0 picks the worst status and broadcasts it, so every rank gets identical bytes.
  const std::vector<std::string> all = gather_bytes(encode(own), 0);
  std::string verdict;
  if (rank() == 0) {
    Status worst;
    int failed = 0;
    for (int r = 0; r < static_cast<int>(all.size()); ++r) {
      Status s = decode(all[r], r);
      if (s.is_ok()) continue;
      ++failed;
      // strict: among equal severities the lowest rank wins
      if (severity(s.code) > severity(worst.code)) worst = s;
    }
    worst.failed_ranks = failed;
    verdict = encode(worst);
  }
  broadcast_bytes(verdict, 0);
  return decode(verdict, 0);
}

void agreed_step(Transport& t, const std::string& step, const std::function<void()>& fn) {
  if (t.world() == 1) {  // nobody to agree with: errors propagate unchanged
    fault_point(t.rank(), "before_" + step);
    fn();
    fault_point(t.rank(), "after_" + step);
    return;
  }
  Status mine;
  try {
    fault_point(t.rank(), "before_" + step);
    fn();
    fault_point(t.rank(), "after_" + step);
  } catch (const std::exception& e) {
    // A transport broken by a timeout or a dead rank cannot agree: the error goes up unchanged
    // (it names the rank) and the caller aborts the job.
    if (!t.healthy()) throw;
    mine = Status::from_exception(e, t.rank());
  }
  t.agree(mine).raise(step);
}

void abort_unless_agreed(Transport* t, const std::exception& e) {
  if (t == nullptr || t->world() <= 1 || all_ranks_know(e)) return;
  t->abort_job(exit_code_for(e));
}

std::unique_ptr<Transport> make_transport(TransportKind kind, const TransportOptions& options) {
  SQ_REQUIRE(options.timeout_s > 0,
             "--comm-timeout must be positive, got " << options.timeout_s << " s");
  switch (kind) {
    case TransportKind::kLocal:
      return make_local_transport(options);
    case TransportKind::kMpi:
      return make_mpi_transport(options);
    case TransportKind::kNccl:
      return make_nccl_transport(options);
  }
  SQ_CHECK(false, "unknown TransportKind " << static_cast<int>(kind));
}

}  // namespace sq::rank
