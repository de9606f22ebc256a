// The AWQ clip search taken apart for --parallel data (issue 6 point 4): every rank holds a
// contiguous slice of the calibration tokens, samples the same tokens the single-process search
// would, sums its squared partial-dot errors per (shrink factor, row, group), the ranks add the
// sums and counts, and every rank picks the same factors from the totals.
//
// CONTRACT
//   * awq_clip_sample(x, offset, total, opts): x [rows, K] is rows [offset, offset + rows) of a
//     `total`-row whole; returns the rows the single-process awq_clip_search(whole) samples
//     (global stride max(1, total / n_sample_tokens) from global row 0) that fall in this slice,
//     in order. offset 0 and total = rows gives exactly awq_clip_search's sample.
//   * awq_clip_error_sums(w, x_sampled, scheme, opts): float32 [n_steps, N, n_groups], n_steps =
//     int(max_shrink · n_grid); entry [i, r, g] = Σ over the given tokens of (partial dot of
//     Q(clamp(W, ±(1 − i/n_grid)·max|W_rg|)) − partial dot of W)². Zero tokens → zeros.
//   * awq_clip_pick(w, sums, tokens, scheme, opts): the factor choice of awq_clip_search from
//     error = sums / tokens (first strictly smaller error wins, starting from 1e9). With the sums
//     of the whole sample it returns what awq_clip_search returns (bit for bit on CPU, where a
//     mean is a sum divided by the count). tokens < 1 is an InputError.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

#include "solvers/awq.h"

namespace sq::solvers {

at::Tensor awq_clip_sample(const at::Tensor& x, int64_t offset, int64_t total,
                           const AwqClipOptions& opts = {});
at::Tensor awq_clip_error_sums(const at::Tensor& w, const at::Tensor& x_sampled,
                               const QuantScheme& scheme, const AwqClipOptions& opts = {});
AwqClipResult awq_clip_pick(const at::Tensor& w, const at::Tensor& error_sums, int64_t tokens,
                            const QuantScheme& scheme, const AwqClipOptions& opts = {});

}  // namespace sq::solvers
