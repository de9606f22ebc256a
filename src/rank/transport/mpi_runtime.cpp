#ifdef SQ_WITH_MPI
#include "rank/transport/mpi_runtime.h"

#include <atomic>
#include <mutex>

#include "rank/transport/mpi_check.h"

namespace sq::rank {
namespace {

std::mutex g_mutex;
std::weak_ptr<MpiRuntime> g_runtime;
std::atomic<bool> g_poisoned{false};

}  // namespace

std::shared_ptr<MpiRuntime> MpiRuntime::acquire() {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (auto live = g_runtime.lock()) return live;
  int finalized = 0;
  SQ_CALL(Mpi, MPI_Finalized(&finalized));
  if (finalized)
    throw BackendError(
        "MPI was already finalized in this process and cannot be initialized again; create the "
        "mpi transport once per process");
  std::shared_ptr<MpiRuntime> rt(new MpiRuntime());
  int initialized = 0;
  SQ_CALL(Mpi, MPI_Initialized(&initialized));
  if (!initialized) {
    // FUNNELED: only the thread that made the transport calls MPI (DESIGN: collectives only from
    // rank/ and coordinator/, in program order).
    int provided = 0;
    SQ_CALL(Mpi, MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided));
    rt->owns_ = true;
  }
  g_runtime = rt;
  return rt;
}

void MpiRuntime::mark_poisoned() {
  g_poisoned = true;
}

MpiRuntime::~MpiRuntime() {
  if (!owns_ || g_poisoned) return;
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

}  // namespace sq::rank
#endif  // SQ_WITH_MPI
