// The hot CPU operations cut into tiles whose bounds depend on shapes alone, run in parallel by
// parallel_tiles (solvers/cpu_threads.h), so that their bits do not depend on the thread count
// while the threads stay busy. Off the CPU every function is the plain ATen call.
//
// Tiling, and what it buys:
//   * Rows in kRowTile-sized pieces (tile_bounds: balanced), and for a linear or a product with
//     more than kColTile output columns, columns too: the bounds depend on the shapes alone, so
//     a result's bits do not depend on the thread count. 512 rows keep a single-threaded OpenBLAS
//     call within ~5 % of one call over every row (256: ~20 % slower, measured on the dev box's
//     AVX-512 kernels, k 384/1024, n 384/1024) and give a micro-batch of 16384 tokens 32 row
//     tiles (times the column tiles) to spread over the cores.
//   * Compared with one ATen call, a tile is a smaller BLAS call; BLAS kernels whose rounding
//     depends on the call's shape (OpenBLAS Haswell/Zen) round differently than the untiled call
//     did — once, identically for every thread count.
//
// CONTRACT (all: CPU tensors of one floating dtype; results contiguous)
//   * linear(x, w, b): at::linear(x, w, b) for x [..., K], w [N, K], b [N] or undefined; each
//     (row tile, column tile) is one addmm (with a bias) or mm (without) into its block of the
//     result.
//   * bmm(a, b): at::bmm for a [n, r, k], b [n, k, c]; every (entry, row tile of a) is one at::mm.
//   * addmm_rows_(c, a, b, alpha): c += alpha · a·b in place for c [r, c] (any strides), a [r, k],
//     b [k, c]; row tiles of c and a, each one addmm_.
//   * gram_add_(sum, x): sum += xᵀx in place for sum [K, K] contiguous, x [rows, K] of sum's dtype;
//     tiles of kGramTile rows of sum, each one addmm_ over every row of x.
//   * map_rows(x, fn): fn applied to row tiles of x [..., F] (flattened to rows), written in row
//     order; fn must be row-wise (each output row from its input row only) and keep the row count.
//     With two inputs of equal shape: map_rows2(x, y, fn). Inside a tile (in_tile()) fn(x) itself:
//     that work is already one thread's.
#pragma once

#include <ATen/ATen.h>

#include <functional>

namespace sq::solvers::tiles {

constexpr int64_t kRowTile = 512;
constexpr int64_t kColTile = 512;
constexpr int64_t kGramTile = 128;

at::Tensor linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b = {});
at::Tensor bmm(const at::Tensor& a, const at::Tensor& b);
void addmm_rows_(at::Tensor& c, const at::Tensor& a, const at::Tensor& b, double alpha);
void gram_add_(at::Tensor& sum, const at::Tensor& x);
at::Tensor map_rows(const at::Tensor& x, const std::function<at::Tensor(const at::Tensor&)>& fn);
at::Tensor map_rows2(const at::Tensor& x, const at::Tensor& y,
                     const std::function<at::Tensor(const at::Tensor&, const at::Tensor&)>& fn);

}  // namespace sq::solvers::tiles
