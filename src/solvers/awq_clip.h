// The AWQ clip search (REFERENCE.md §1.5) in two forms, and taken apart for --parallel data
// (issue 6 point 4).
//
// Forms. The error of a trial per (row r, group g) is
//     err[r, g] = (1/T) Σ_t (x_tg · Δ_rg)²  with Δ = Q(clamp(W)) − W,
// the mean squared difference of the per-group partial dot products. The reference computes it
// that way (two [groups, T, rows] products per trial); awq_clip_search and the data-parallel
// pieces use the Gram form err[r, g] = (1/T) Δ_rgᵀ C_g Δ_rg with C_g = X_gᵀ X_g ([groups, G, G],
// once per call), the same quantity in exact arithmetic at about G/T of the cost per trial. The
// two differ only by rounding (tests/solvers/test_awq_clip_fast.cpp: relative 1e-4 in float32,
// 1e-10 in float64; a near-tie may pick a neighbouring factor).
//
// Data parallel: every rank holds a contiguous slice of the calibration tokens, samples the same
// tokens the single-process search would, sums its errors per (shrink factor, row, group) from
// its own C, the ranks add the sums and counts, and every rank picks the same factors from the
// totals.
//
// CONTRACT
//   * Work dtype: float64 when the weight or the inputs (for awq_clip_pick: the weight or the
//     sums) are float64, float32 otherwise (bf16/fp16 weights are widened). Q itself is the
//     float32 AWQ grid (pseudo_quantize; on CUDA the fused awq_trial_weight_as with unit scales,
//     bit-identical). Every result tensor (max_val, shrink, min_error, sums) has the work dtype
//     and lives on the weight's device; awq.h's "float32" holds for non-float64 inputs.
//   * awq_clip_search(w, x, scheme, opts) (awq.h): samples x with stride max(1, n_tok /
//     n_sample_tokens) from row 0, then is exactly awq_clip_pick(w, awq_clip_error_sums(w,
//     sample), T) — bit for bit, on any device.
//   * awq_clip_search_reference(w, x, scheme, opts): the same search with the direct form; rows
//     are chunked by opts.max_chunk_elements like the fast path. For tests and measurements.
//   * awq_clip_sample(x, offset, total, opts): x [rows, K] is rows [offset, offset + rows) of a
//     `total`-row whole; returns the rows the single-process awq_clip_search(whole) samples
//     (global stride max(1, total / n_sample_tokens) from global row 0) that fall in this slice,
//     in order. offset 0 and total = rows gives exactly awq_clip_search's sample.
//   * awq_clip_error_sums(w, x_sampled, scheme, opts): [n_trials, N, n_groups], n_steps =
//     int(max_shrink · n_grid), n_trials = n_steps (symmetric); entry [i, r, g] = Δᵀ C_g Δ for
//     Δ = Q(clamp(W_rg, ±(1 − i/n_grid)·max|W_rg|)) − W_rg and C_g = Σ over the given tokens of
//     x_tg x_tgᵀ, i.e. the sum over those tokens of the squared partial-dot difference. With
//     opts.asym n_trials = n_steps² and trial t clamps to [−(1 − (t mod n_steps)/n_grid)·max|W|,
//     (1 − ⌊t / n_steps⌋/n_grid)·max|W|] (upper-major; the diagonal is the symmetric search).
//     Zero tokens → zeros. Sums of several ranks add up to the whole's sums up to rounding.
//   * awq_clip_pick(w, sums, tokens, scheme, opts): error = sums / tokens; per (row, group) the
//     first trial with a strictly smaller error wins, starting from 1e9 (so factor 1 is kept
//     unless shrinking helps). tokens < 1 or sums of the wrong shape is an InputError.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

#include "solvers/awq.h"

namespace sq::solvers {

AwqClipResult awq_clip_search_reference(const at::Tensor& w, const at::Tensor& x,
                                        const QuantScheme& scheme, const AwqClipOptions& opts = {});
at::Tensor awq_clip_sample(const at::Tensor& x, int64_t offset, int64_t total,
                           const AwqClipOptions& opts = {});
at::Tensor awq_clip_error_sums(const at::Tensor& w, const at::Tensor& x_sampled,
                               const QuantScheme& scheme, const AwqClipOptions& opts = {});
AwqClipResult awq_clip_pick(const at::Tensor& w, const at::Tensor& error_sums, int64_t tokens,
                            const QuantScheme& scheme, const AwqClipOptions& opts = {});

}  // namespace sq::solvers
