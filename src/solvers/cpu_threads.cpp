// See cpu_threads.h. The tiles run on ATen's inter-op pool (at::launch) rather than its intra-op
// OpenMP team: with intra-op threads at 1, every ATen op a tile calls runs serially in the tile's
// thread, and which thread takes which tile cannot matter because each tile is computed alone.
#include "solvers/cpu_threads.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <limits>
#include <mutex>
#include <sstream>

namespace sq::solvers {
namespace {

std::atomic<int> g_threads{1};
thread_local bool t_in_tile = false;

// The BLAS libraries LibTorch may have loaded, by the symbol that sets their own thread count.
// MKL needs no row: at::set_num_threads sets its count too.
struct BlasRow {
  const char* name;
  const char* setter;  // void (int)
};
constexpr BlasRow kBlas[] = {
    {"OpenBLAS", "openblas_set_num_threads"},
    {"BLIS", "bli_thread_set_num_threads"},
};

std::string pin_blas_to_one_thread() {
  std::string pinned;
  for (const auto& row : kBlas) {
    auto* set = reinterpret_cast<void (*)(int)>(dlsym(RTLD_DEFAULT, row.setter));
    if (set == nullptr) continue;
    set(1);
    pinned += (pinned.empty() ? "" : ", ") + std::string(row.name);
  }
  if (at::hasMKL()) pinned += std::string(pinned.empty() ? "" : ", ") + "MKL";
  return pinned.empty() ? "no multi-threaded BLAS found" : pinned + " at 1 thread";
}

// Tiles [first, count) pulled from a shared counter by the caller and the pool's workers.
struct TileRun {
  const std::function<void(int64_t)>* fn = nullptr;
  int64_t count = 0;
  std::atomic<int64_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  std::condition_variable done_cv;
  int running_workers = 0;
  int64_t error_index = std::numeric_limits<int64_t>::max();
  std::exception_ptr error;

  void work() {
    const bool outer = t_in_tile;
    t_in_tile = true;
    for (int64_t i = next++; i < count && !failed.load(); i = next++) {
      try {
        (*fn)(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu);
        if (i < error_index) {
          error_index = i;
          error = std::current_exception();
        }
        failed = true;
      }
    }
    t_in_tile = outer;
  }
};

}  // namespace

int default_cpu_threads(int ranks_on_host, std::string* why) {
  if (const char* env = std::getenv("OMP_NUM_THREADS")) {
    const int n = std::atoi(env);  // "4" or a nesting list "4,2": the first level
    if (n > 0) {
      if (why) *why = "OMP_NUM_THREADS";
      return n;
    }
  }
  cpu_set_t set;
  CPU_ZERO(&set);
  const int cpus = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
  const int ranks = std::max(1, ranks_on_host);
  if (why)
    *why = std::to_string(cpus) + " CPUs" +
           (ranks > 1 ? " shared by " + std::to_string(ranks) + " ranks on this host" : "");
  return std::max(1, cpus / ranks);
}

std::string fix_cpu_threads(int n) {
  const int threads = std::max(1, n);
  g_threads = threads;
  at::set_num_threads(1);
  std::string pool = "";
  try {
    at::set_num_interop_threads(threads);
  } catch (const std::exception&) {
    pool = " (inter-op pool already sized: " + std::to_string(at::get_num_interop_threads()) + ")";
  }
  std::ostringstream line;
  line << "CPU threads: " << threads << pool << ", in tiles of fixed shape; ATen intra-op and "
       << pin_blas_to_one_thread()
       << " inside them, so the results do not depend on the thread count";
  return line.str();
}

int cpu_threads() {
  return g_threads.load();
}

void parallel_tiles(int64_t count, const std::function<void(int64_t)>& fn) {
  if (count <= 0) return;
  const int64_t threads = std::min<int64_t>(cpu_threads(), count);
  if (threads <= 1 || t_in_tile) {
    const bool outer = t_in_tile;
    t_in_tile = true;
    try {
      for (int64_t i = 0; i < count; ++i) fn(i);
    } catch (...) {
      t_in_tile = outer;
      throw;
    }
    t_in_tile = outer;
    return;
  }
  TileRun run;
  run.fn = &fn;
  run.count = count;
  run.running_workers = static_cast<int>(threads - 1);
  for (int64_t w = 1; w < threads; ++w)
    at::launch([&run] {
      run.work();
      std::lock_guard<std::mutex> lock(run.mu);
      if (--run.running_workers == 0) run.done_cv.notify_all();
    });
  run.work();
  std::unique_lock<std::mutex> lock(run.mu);
  run.done_cv.wait(lock, [&] { return run.running_workers == 0; });
  if (run.error) std::rethrow_exception(run.error);
}

bool in_tile() {
  return t_in_tile;
}

std::vector<std::pair<int64_t, int64_t>> tile_bounds(int64_t n, int64_t tile) {
  std::vector<std::pair<int64_t, int64_t>> out;
  if (n <= 0) return out;
  if (tile <= 0 || tile >= n) return {{0, n}};
  const int64_t pieces = (n + tile - 1) / tile, base = n / pieces, longer = n % pieces;
  for (int64_t i = 0, b = 0; i < pieces; ++i) {
    const int64_t e = b + base + (i < longer ? 1 : 0);
    out.emplace_back(b, e);
    b = e;
  }
  return out;
}

}  // namespace sq::solvers
