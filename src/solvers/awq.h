// AWQ (AutoAWQ semantics, REFERENCE.md §1): activation/weight statistics, the per-group scale
// search, applying a chosen scale to the ops around a scaling group, and the clip search.
//
// CONTRACT
//   Pure functions on tensors; they run on the inputs' device. The caller (rank/) owns the
//   block, runs the inspect scope and decides which groups exist (e.g. it skips v→o under GQA
//   and never scales/quantizes routers). Weights are [N, K] = [out, in]; scales s are [K] of
//   the member linears' input features.
//   Search:   s(α) = awq_scale_candidates(x_mean, w_mean, α, duo), α = k/n_grid, k = 0..n_grid−1;
//             loss_fn(s) is supplied by the caller: it applies awq_trial_weight() (Q(W·s)/s) to
//             every member, runs the inspect scope and returns the MSE vs the FP output.
//             The argmin wins (first one on ties); no finite loss → InputError naming the group.
//   Apply:    norm weight (+bias) /= s (Gemma (1+w) norms: w = (1+w)/s − 1); the previous
//             linear's last len(s) output rows (+bias) /= s; member weights *= s per input
//             column; cached inputs /= s. All in place, in the tensors' own dtype (math in fp32,
//             fp64 for fp64 tensors). A router fed by a scaled norm gets awq_apply_to_member() so
//             routing is unchanged.
//   Clip:     awq_clip_search() per member not excluded by awq_clip_applies(); then
//             awq_apply_clip() clamps W to ±max_val per (row, group).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "solvers/scheme.h"

namespace sq::solvers {

// ---- statistics ----------------------------------------------------------------------------
// Σ_tokens |x[t, c]| as float32 [K] (x is [..., K]). Data-parallel callers all-reduce the sum
// and the token count, then divide.
at::Tensor awq_x_abs_sum(const at::Tensor& x);
// mean_tokens |x[t, c]| as float32 [K].
at::Tensor awq_x_mean(const at::Tensor& x);
// mean over output rows of |W| / (max|W| per (row, group) + 1e-6), the member weights
// concatenated along the output dimension (all must share K). float32 [K].
// The reference concatenates the members in float32; above kAwqWMeanCatBytes of that copy (an
// MoE group of 256 experts' gate/up is 28 GiB) awq_w_mean takes awq_w_mean_by_member: each
// member's row sums in float64, one member at a time (same value to ~1e-7 relative, test
// AwqWMean.ByMemberMatchesTheReference; other rounding, so only where the copy would be large).
constexpr uint64_t kAwqWMeanCatBytes = uint64_t{2} << 30;
at::Tensor awq_w_mean(const std::vector<at::Tensor>& member_weights, int64_t group_size);
at::Tensor awq_w_mean_by_member(const std::vector<at::Tensor>& member_weights, int64_t group_size);

// The salient input columns of a linear (AWQ's "salient channels", --dump-salient): the
// max(1, ceil(quota·K)) columns with the largest statistic (mean |x| for AWQ, the Hessian
// diagonal for GPTQ), largest first, the lower index first on ties; none when quota is 0.
// `stat` is [K] on any device.
std::vector<int64_t> salient_columns(const at::Tensor& stat, double quota);

// ---- search --------------------------------------------------------------------------------
// duo: s = x_mean^α / (w_mean^(1−α) + 1e-4); otherwise s = x_mean^α. Then clamp(min 1e-4),
// s /= sqrt(max(s)·min(s)), non-finite → 1. float32 [K].
at::Tensor awq_scale_candidates(const at::Tensor& x_mean, const at::Tensor& w_mean, double alpha,
                                bool duo);

// Host loss (the float64 reference and simple callers).
using AwqLossFn = std::function<double(const at::Tensor& scales)>;
// Device loss: a 0-dim tensor on any device, not synchronised. The search stacks the n_grid
// losses and reads them back once (one host synchronisation per group, not per grid point).
using AwqTensorLossFn = std::function<at::Tensor(const at::Tensor& scales)>;
// Optional step between stacking and reading back: gets the [n_grid] float64 losses on their
// device and may rewrite them in place (--parallel data all-reduces loss sums here and divides
// by the global element count so that every rank picks the same α).
using AwqLossReduce = std::function<void(at::Tensor& losses)>;

struct AwqSearchResult {
  at::Tensor scales;    // float32 [K], the winning candidate
  int best_index = -1;  // index into `losses` of the winner (k of α = k / n_grid in round 1)
  double best_alpha = 0.0;
  double best_loss = 0.0;
  std::vector<double> losses;  // per candidate tried, grid first (non-finite kept as is)
  std::vector<double> alphas;  // the α of each entry of `losses`
  int rounds = 1;              // rounds actually run (refinement stops once the spacing < 1e-6)
};

// Refinement of the scale search (--iter, --search-step). Round 1 is the grid α = k/n_grid.
// Round r > 1 tries `points_per_side` points on each side of the best α so far at spacing
// δ_r = δ_{r−1} / (points_per_side + 1), δ_1 = 1/n_grid — i.e. it subdivides the two grid
// intervals around the best — keeping α in [0, 1]. A candidate replaces the best only with a
// strictly smaller finite loss, so the result is never worse than round 1's. rounds = 1 is the
// plain reference search.
struct AwqRefine {
  int rounds = 1;
  int points_per_side = 1;
};
constexpr double kAwqRefineMinSpacing = 1e-6;

// The scale search. With `reduce`, every round's stacked losses pass through it before the pick
// (data-parallel ranks then pick the same α in every round).
AwqSearchResult awq_search_scales(const at::Tensor& x_mean, const at::Tensor& w_mean, int n_grid,
                                  bool duo, const AwqTensorLossFn& loss_fn,
                                  const std::string& group_name, const AwqLossReduce& reduce = {},
                                  const AwqRefine& refine = {});
// Convenience for host losses (tests, tools): the same search with loss_fn returning double.
AwqSearchResult awq_search_scales_host(const at::Tensor& x_mean, const at::Tensor& w_mean,
                                       int n_grid, bool duo, const AwqLossFn& loss_fn,
                                       const std::string& group_name, const AwqRefine& refine = {});

// Index of the smallest finite loss (first on ties); InputError naming `group_name` if none.
int awq_pick_best(const std::vector<double>& losses, const std::string& group_name);

// Q(W·diag(s)) / diag(s) on the AWQ grid, float32 [N, K].
at::Tensor awq_trial_weight(const at::Tensor& w, const at::Tensor& scales,
                            const QuantScheme& scheme);
// The same, returned in `dtype`: on a CUDA device (CUDA builds) one fused kernel
// (awq_trial_kernel.h) computes it bit for bit like awq_trial_weight(...).to(dtype); elsewhere
// it is exactly that expression. Requires dtype == w's dtype for the kernel path.
at::Tensor awq_trial_weight_as(const at::Tensor& w, const at::Tensor& scales,
                               const QuantScheme& scheme, at::ScalarType dtype);

// ---- apply ---------------------------------------------------------------------------------
enum class NormKind {
  kPlain,      // y = norm(x) · w
  kOffsetOne,  // Gemma style: y = norm(x) · (1 + w)
};

// Norm weight [K] (and optional bias [K]) divided by s.
void awq_apply_to_norm(at::Tensor& weight, at::Tensor* bias, const at::Tensor& scales,
                       NormKind kind);
// The last len(s) output rows of the previous linear W [Nprev, Kprev] (and bias) divided by s.
// Fused tensors (qkv, gate_up) pass the whole fused weight; the rows fed to the members must be
// its last len(s) rows (e.g. v inside qkv) or the caller passes a view of the right rows.
void awq_apply_to_prev_linear(at::Tensor& weight, at::Tensor* bias, const at::Tensor& scales);
// Member weight W [N, K] multiplied by s per input column (also: routers fed by a scaled norm).
void awq_apply_to_member(at::Tensor& weight, const at::Tensor& scales);
// Cached inputs x [..., K] divided by s.
void awq_scale_inputs(at::Tensor& x, const at::Tensor& scales);

// ---- clip ----------------------------------------------------------------------------------
// False for q/k projections (names containing q_, k_, query, key, Wqkv), which AWQ never clips.
bool awq_clip_applies(const std::string& linear_name);

struct AwqClipOptions {
  int n_grid = 20;
  double max_shrink = 0.5;
  // false (AWQ): clamp to ±f·max|W|, f = 1 − i/n_grid, i < max_shrink·n_grid. true (--clip-asym):
  // clamp to [−f_lo·max|W|, f_hi·max|W|] over every (f_hi, f_lo) pair of those factors; the
  // pairs f_lo = f_hi are the symmetric search, so per (row, group) its error is never larger.
  bool asym = false;
  int64_t n_sample_tokens = 512;                  // ≤ 0: every token (stride 1)
  int64_t max_chunk_elements = int64_t{1} << 26;  // bounds the [rows, tokens, groups] buffers
};

// float32 — float64 when the weight and inputs are float64 (the references and tests).
struct AwqClipResult {
  at::Tensor max_val;       // [N, n_groups], best upper clamp per (row, group)
  at::Tensor shrink;        // [N, n_groups], the chosen (upper) factor 1 − i/n_grid
  at::Tensor min_error;     // [N, n_groups], the error of the chosen factors
  at::Tensor min_val;       // [N, n_groups], best lower clamp (−max_val when symmetric)
  at::Tensor shrink_lower;  // [N, n_groups], the lower bound's factor (= shrink when symmetric)
};

// x [..., K] are the member's (already scaled) inputs; W [N, K] its (already scaled) weight.
// Tokens subsampled with stride awq_clip_stride(n_tok, opts); error per (row, group) =
// mean over tokens of (partial dot of Q(clamp(W)) − partial dot of W)² (computed in Gram form,
// solvers/awq_clip.h); the first factor with a strictly smaller error wins, so factor 1 is kept
// unless shrinking lowers the error.
AwqClipResult awq_clip_search(const at::Tensor& w, const at::Tensor& x, const QuantScheme& scheme,
                              const AwqClipOptions& opts = {});
// The clip search's token stride: max(1, n_tok / n_sample_tokens), 1 when n_sample_tokens ≤ 0.
int64_t awq_clip_stride(int64_t n_tok, const AwqClipOptions& opts);
// W [N, K] clamped in place to ±max_val per (row, group), or to [min_val, max_val].
void awq_apply_clip(at::Tensor& weight, const at::Tensor& max_val);
void awq_apply_clip(at::Tensor& weight, const at::Tensor& min_val, const at::Tensor& max_val);

}  // namespace sq::solvers
