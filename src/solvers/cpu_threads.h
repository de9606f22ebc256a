// CPU threads whose number does not change a single bit of the results (issue 19).
//
// Why. The two libraries under us parallelise in ways that change the rounding of a result with
// the thread count:
//   * OpenBLAS (Debian's LibTorch) runs its own pthreads, which at::set_num_threads does not
//     touch, and splits a GEMM's output among them; its Haswell/Zen kernels round an element
//     differently depending on the shape of the call they get, so 1 and 2 BLAS threads gave other
//     activations from the first linear on.
//   * ATen's intra-op loops split elementwise work at numel / threads; the elements at a split
//     take the scalar (libm) path instead of the vector (Sleef) one, and for silu, exp, sin… the
//     two differ in the last bit (3 threads moved block 0's activations); full reductions (sum())
//     add per-thread partial sums.
// Either was enough to move an AWQ grid arg-min, so the written bytes depended on the threads per
// rank — and thus on the rank count, which sets the default thread count.
//
// What. fix_cpu_threads(n) makes BLAS and ATen single-threaded for the rest of the process, and
// shardquant parallelises only through parallel_tiles: work cut into pieces whose bounds depend
// on shapes alone, each piece computed by one thread with single-threaded ATen and BLAS. Every
// result is then the one a single thread computes, for any n. The hot products go through
// solvers/cpu_tiles.h so that they keep n threads busy.
//
// CONTRACT
//   * default_cpu_threads(ranks_on_host, &why): the count a run takes unless told otherwise:
//     OMP_NUM_THREADS when set to a positive number (its first value), else the CPUs this process
//     may run on (sched_getaffinity) divided among the `ranks_on_host` processes of this host, at
//     least 1. `why` (optional) receives which of the two it was, for the log.
//   * fix_cpu_threads(n): n ≥ 1 threads for parallel_tiles from now on; ATen intra-op threads and
//     the BLAS's own threads (OpenBLAS, BLIS or MKL, whichever LibTorch loaded) set to 1; ATen's
//     inter-op pool (which runs the tiles) sized to n when it has not started yet. Returns one
//     line for the log saying what was set. Process-wide; call it before any CPU work, once the
//     run is known to compute on the CPU (later calls change n only).
//   * cpu_threads(): n after fix_cpu_threads, else 1.
//   * parallel_tiles(count, fn): calls fn(i) once for every i in [0, count), on up to
//     cpu_threads() threads (fn must write disjoint outputs). A call from inside a tile runs its
//     tiles in that thread, in order. The first exception (lowest i among those thrown) is
//     rethrown in the caller after every started tile has finished.
//   * in_tile(): true inside fn of a parallel_tiles call (work there is already one thread's).
//   * tile_bounds(n, tile): [0, n) in the fewest [begin, end) pieces of at most `tile` elements,
//     their sizes equal up to one (larger first); tile ≤ 0 or ≥ n gives one piece.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace sq::solvers {

int default_cpu_threads(int ranks_on_host, std::string* why = nullptr);
std::string fix_cpu_threads(int n);
int cpu_threads();
void parallel_tiles(int64_t count, const std::function<void(int64_t)>& fn);
bool in_tile();
std::vector<std::pair<int64_t, int64_t>> tile_bounds(int64_t n, int64_t tile);

}  // namespace sq::solvers
