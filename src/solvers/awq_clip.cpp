// AWQ clip search (REFERENCE.md §1.5, awq_clip.h). Both forms share the trial weights: rows of
// W are processed in chunks sized by opts.max_chunk_elements, and every shrink factor gives
// Δ = Q(clamp(W)) − W for the chunk.
//
// Reference (direct form): the per-group partial dot products are batched matmuls over groups
// ([groups, T, G] × [groups, G, rows]) instead of AutoAWQ's broadcast product; each trial makes
// two [groups, T, rows] products, subtracts and squares them.
//
// Fast (Gram form): Σ_t (x_tg · Δ_rg)² = Δ_rgᵀ (X_gᵀ X_g) Δ_rg, so C = X_gᵀ X_g is formed once
// and a trial costs one [groups, rows, G] × [groups, G, G] product and a row-wise dot: G/T of
// the direct form's multiply-adds (T = 512 sampled tokens, G = 128 → 4× fewer) and no
// [groups, T, rows] intermediate. awq_clip_search is the sums followed by the pick, so the
// data-parallel pieces reproduce it bit for bit by construction.
#include "solvers/awq_clip.h"

#include <algorithm>
#include <vector>

#include "common/check.h"
#include "solvers/awq.h"
#include "solvers/cpu_tiles.h"
#include "solvers/quant_grid.h"
#include "solvers/tf32.h"

namespace sq::solvers {
namespace {

struct ClipShape {
  int64_t n = 0, k = 0, g = 0, n_groups = 0;
  int n_steps = 0;   // shrink factors per bound
  int n_trials = 0;  // n_steps (symmetric) or n_steps² (asymmetric: every (upper, lower) pair)
};

ClipShape clip_shape(const at::Tensor& w, const QuantScheme& scheme, const AwqClipOptions& opts) {
  SQ_REQUIRE(w.dim() == 2, "AWQ clip: expected a 2-D weight, got " << w.dim() << " dims");
  ClipShape s;
  s.n = w.size(0);
  s.k = w.size(1);
  s.g = scheme.group_for(s.k);
  SQ_REQUIRE(s.k % s.g == 0,
             "AWQ clip: group size " << s.g << " does not divide in_features " << s.k);
  s.n_groups = s.k / s.g;
  s.n_steps = static_cast<int>(opts.max_shrink * opts.n_grid);
  s.n_trials = opts.asym ? s.n_steps * s.n_steps : s.n_steps;
  return s;
}

// float64 stays float64 (references, tests); everything else is searched in float32.
at::ScalarType work_type(const at::Tensor& a, const at::Tensor& b) {
  return a.scalar_type() == at::kDouble || b.scalar_type() == at::kDouble ? at::kDouble
                                                                          : at::kFloat;
}

at::Tensor as_rows(const at::Tensor& x, int64_t k, const at::Device& dev, at::ScalarType dt) {
  SQ_REQUIRE(x.size(-1) == k, "AWQ clip: inputs have " << x.size(-1) << " features, weight " << k);
  return x.reshape({-1, k}).to(dev, dt);
}

at::Tensor single_process_sample(const at::Tensor& x, const AwqClipOptions& opts) {
  return x.slice(0, 0, x.size(0), awq_clip_stride(x.size(0), opts));
}

// Tokens per Gram product: C = Σ over chunks of X_cᵀX_c keeps the work-dtype copy of the inputs
// to one chunk (with every token sampled, x can be gigabytes); 512 sampled tokens are one chunk.
constexpr int64_t kGramChunkTokens = 16384;

double shrink_factor(int i, const AwqClipOptions& opts) {
  return 1.0 - double(i) / opts.n_grid;
}

// Trial t's factors of max|W| for the upper and the lower bound. Symmetric: both i = t.
// Asymmetric: upper index t / n_steps, lower index t % n_steps, so the pairs run upper-major and
// the diagonal is the symmetric search (trial 0 = no clipping on either side).
struct Factors {
  double upper, lower;
};
Factors trial_factors(int t, const ClipShape& s, const AwqClipOptions& opts) {
  if (!opts.asym) return {shrink_factor(t, opts), shrink_factor(t, opts)};
  return {shrink_factor(t / s.n_steps, opts), shrink_factor(t % s.n_steps, opts)};
}

// The trial weights of one chunk of rows: wg [rows, groups, G] in the work dtype.
class Trials {
 public:
  Trials(const at::Tensor& wg, const QuantScheme& scheme, const ClipShape& s)
      : wg_(wg), scheme_(scheme), k_(s.k), org_max_(wg.abs().amax(-1, /*keepdim=*/true)) {
    // On a GPU the fused trial-weight kernel with s = 1 is Q(W) bit for bit (×1 and ÷1 are
    // exact; AwqTrialCuda.ClipUseWithUnitScales) in one pass instead of ~15 elementwise ones.
    if (wg.is_cuda() && wg.scalar_type() == at::kFloat) unit_ = at::ones({s.k}, wg.options());
  }
  const at::Tensor& org_max() const { return org_max_; }  // [rows, groups, 1]
  at::Tensor max_val(double factor) const { return org_max_ * factor; }
  // Q(clamp(W, min_val, max_val)) as [rows, groups, G] in the work dtype.
  at::Tensor quantized(const at::Tensor& min_val, const at::Tensor& max_val) const {
    const int64_t rows = wg_.size(0);
    auto cur = at::clamp(wg_, min_val, max_val).reshape({rows, k_});  // one pass; min ≤ 0 ≤ max
    auto q = unit_.defined() ? awq_trial_weight_as(cur, unit_, scheme_, at::kFloat)
                             : pseudo_quantize(cur, scheme_, GridKind::kAwq);
    return q.to(wg_.scalar_type()).reshape(wg_.sizes());
  }

 private:
  at::Tensor wg_;
  QuantScheme scheme_;
  int64_t k_;
  at::Tensor org_max_, unit_;
};

// Calls body(r0, r1) over row chunks of at most max_chunk_elements / per_row rows.
template <class Body>
void for_row_chunks(const ClipShape& s, const AwqClipOptions& opts, int64_t per_row, Body body) {
  const int64_t chunk =
      std::clamp<int64_t>(opts.max_chunk_elements / std::max<int64_t>(per_row, 1), 1, s.n);
  for (int64_t r0 = 0; r0 < s.n; r0 += chunk) body(r0, std::min(s.n, r0 + chunk));
}

// cuBLAS TF32 (10-bit mantissa operands) would round Δ and C far beyond the agreement with the
// reference that the tests ask for. It is off by default, but it is a process-wide switch that
// other code may set, so the searches force it off for the call and restore it after
// (solvers/tf32.h).
// The running choice: the first strictly smaller error wins.
struct Choice {
  at::Tensor best_max, best_min, best_shrink, best_shrink_lower, min_err;  // [rows, groups]
  void start(const at::Tensor& org_max) {
    best_max = org_max.squeeze(-1).clone();
    best_min = -best_max;
    best_shrink = at::ones_like(best_max);
    best_shrink_lower = at::ones_like(best_max);
    min_err = at::full_like(best_max, 1e9);
  }
  void offer(const Factors& f, const at::Tensor& org_max, const at::Tensor& err) {
    auto better = err < min_err;
    min_err = at::where(better, err, min_err);
    best_max = at::where(better, org_max.squeeze(-1) * f.upper, best_max);
    best_min = at::where(better, org_max.squeeze(-1) * -f.lower, best_min);
    best_shrink = at::where(better, at::full_like(best_shrink, f.upper), best_shrink);
    best_shrink_lower =
        at::where(better, at::full_like(best_shrink_lower, f.lower), best_shrink_lower);
  }
  AwqClipResult result() const {
    return {best_max, best_shrink, min_err, best_min, best_shrink_lower};
  }
};

// Q(clamp(W)) of trial t for a chunk's trials.
at::Tensor trial_weight(const Trials& trials, int t, const ClipShape& s,
                        const AwqClipOptions& opts) {
  const Factors f = trial_factors(t, s, opts);
  return trials.quantized(trials.max_val(f.lower).neg_(), trials.max_val(f.upper));
}

}  // namespace

AwqClipResult awq_clip_search_reference(const at::Tensor& w_in, const at::Tensor& x_in,
                                        const QuantScheme& scheme, const AwqClipOptions& opts) {
  const ClipShape s = clip_shape(w_in, scheme, opts);
  const at::ScalarType dt = work_type(w_in, x_in);
  auto w = w_in.to(dt);
  auto x = single_process_sample(as_rows(x_in, s.k, w.device(), dt), opts);
  SQ_REQUIRE(x.size(0) > 0, "AWQ clip: no calibration token");
  const CublasTf32 exact_fp32(false);
  const int64_t t = x.size(0);
  auto xg = x.reshape({t, s.n_groups, s.g}).permute({1, 0, 2}).contiguous();  // [groups, T, G]

  std::vector<AwqClipResult> parts;
  for_row_chunks(s, opts, t * s.n_groups * 2 + s.k * 2, [&](int64_t r0, int64_t r1) {
    auto wg = w.slice(0, r0, r1).reshape({r1 - r0, s.n_groups, s.g});
    const Trials trials(wg, scheme, s);
    // [groups, T, rows]: partial dot products of every token with every row, per group.
    auto org_out = tiles::bmm(xg, wg.permute({1, 2, 0}));
    Choice c;
    c.start(trials.org_max());
    for (int t = 0; t < s.n_trials; ++t) {
      auto out = tiles::bmm(xg, trial_weight(trials, t, s, opts).permute({1, 2, 0}));
      c.offer(trial_factors(t, s, opts), trials.org_max(), (out - org_out).pow(2).mean(1).t());
    }
    parts.push_back(c.result());
  });
  auto cat = [&](at::Tensor AwqClipResult::*field) {
    std::vector<at::Tensor> v;
    for (const auto& p : parts) v.push_back(p.*field);
    return at::cat(v, 0);
  };
  return {cat(&AwqClipResult::max_val), cat(&AwqClipResult::shrink), cat(&AwqClipResult::min_error),
          cat(&AwqClipResult::min_val), cat(&AwqClipResult::shrink_lower)};
}

AwqClipResult awq_clip_search(const at::Tensor& w, const at::Tensor& x_in,
                              const QuantScheme& scheme, const AwqClipOptions& opts) {
  const ClipShape s = clip_shape(w, scheme, opts);
  SQ_REQUIRE(x_in.size(-1) == s.k,
             "AWQ clip: inputs have " << x_in.size(-1) << " features, weight " << s.k);
  // Sample before converting: only the sampled rows are copied to the work dtype.
  auto x = single_process_sample(x_in.reshape({-1, s.k}), opts);
  SQ_REQUIRE(x.size(0) > 0, "AWQ clip: no calibration token");
  return awq_clip_pick(w, awq_clip_error_sums(w, x, scheme, opts), x.size(0), scheme, opts);
}

at::Tensor awq_clip_sample(const at::Tensor& x_in, int64_t offset, int64_t total,
                           const AwqClipOptions& opts) {
  const at::Tensor x = x_in.reshape({-1, x_in.size(-1)});
  SQ_REQUIRE(offset >= 0 && offset + x.size(0) <= total,
             "AWQ clip sample: rows [" << offset << ", " << offset + x.size(0)
                                       << ") are not inside a whole of " << total << " rows");
  const int64_t stride = awq_clip_stride(total, opts);
  // The first multiple of the stride at or after `offset`, as a local row.
  const int64_t first = (offset + stride - 1) / stride * stride - offset;
  if (first >= x.size(0)) return x.slice(0, 0, 0);
  return x.slice(0, first, x.size(0), stride);
}

at::Tensor awq_clip_error_sums(const at::Tensor& w_in, const at::Tensor& x_in,
                               const QuantScheme& scheme, const AwqClipOptions& opts) {
  const ClipShape s = clip_shape(w_in, scheme, opts);
  const at::ScalarType dt = work_type(w_in, x_in);
  auto w = w_in.to(dt);
  SQ_REQUIRE(x_in.size(-1) == s.k,
             "AWQ clip: inputs have " << x_in.size(-1) << " features, weight " << s.k);
  const at::Tensor x_rows = x_in.reshape({-1, s.k});
  auto sums = at::zeros({s.n_trials, s.n, s.n_groups}, w.options());
  const int64_t t = x_rows.size(0);
  if (t == 0) return sums;
  const CublasTf32 exact_fp32(false);
  at::Tensor c;  // [groups, G, G] = Σ_t x_tg x_tgᵀ
  for (int64_t t0 = 0; t0 < t; t0 += kGramChunkTokens) {
    const int64_t t1 = std::min(t, t0 + kGramChunkTokens);
    auto xg = as_rows(x_rows.slice(0, t0, t1), s.k, w.device(), dt)
                  .reshape({t1 - t0, s.n_groups, s.g})
                  .transpose(0, 1);  // [groups, T_c, G]
    auto part = tiles::bmm(xg.transpose(1, 2), xg);
    c = c.defined() ? c.add_(part) : part;
  }

  // Per row and trial: the clamped and quantized weight, Δ, ΔC and the product (~8 K values).
  for_row_chunks(s, opts, 8 * s.k, [&](int64_t r0, int64_t r1) {
    auto wg = w.slice(0, r0, r1).reshape({r1 - r0, s.n_groups, s.g});
    const Trials trials(wg, scheme, s);
    for (int t = 0; t < s.n_trials; ++t) {
      // The trial weight is a fresh tensor: Δ and ΔC·Δ are formed in place.
      auto d = trial_weight(trials, t, s, opts).sub_(wg).transpose(0, 1);
      auto dc = tiles::bmm(d, c).mul_(d);              // [groups, rows, G]
      sums[t].slice(0, r0, r1).copy_(dc.sum(-1).t());  // Δᵀ C Δ per (row, group)
    }
  });
  return sums;
}

AwqClipResult awq_clip_pick(const at::Tensor& w_in, const at::Tensor& error_sums, int64_t tokens,
                            const QuantScheme& scheme, const AwqClipOptions& opts) {
  const ClipShape s = clip_shape(w_in, scheme, opts);
  SQ_REQUIRE(tokens > 0, "AWQ clip: no calibration token");
  SQ_REQUIRE(error_sums.dim() == 3 && error_sums.size(0) == s.n_trials &&
                 error_sums.size(1) == s.n && error_sums.size(2) == s.n_groups,
             "AWQ clip: error sums " << error_sums.sizes() << ", expected [" << s.n_trials << ", "
                                     << s.n << ", " << s.n_groups << "]");
  const at::ScalarType dt = work_type(w_in, error_sums);
  auto w = w_in.to(dt);
  const Trials trials(w.reshape({s.n, s.n_groups, s.g}), scheme, s);
  auto sums = error_sums.to(w.device(), dt);
  Choice c;
  c.start(trials.org_max());
  for (int t = 0; t < s.n_trials; ++t)
    c.offer(trial_factors(t, s, opts), trials.org_max(), sums[t] / static_cast<double>(tokens));
  return c.result();
}

int64_t awq_clip_stride(int64_t n_tok, const AwqClipOptions& opts) {
  if (opts.n_sample_tokens <= 0) return 1;
  return std::max<int64_t>(1, n_tok / opts.n_sample_tokens);
}

void awq_apply_clip(at::Tensor& weight, const at::Tensor& max_val) {
  SQ_REQUIRE(max_val.defined(), "AWQ clip: no max_val");
  awq_apply_clip(weight, -max_val, max_val);
}

void awq_apply_clip(at::Tensor& weight, const at::Tensor& min_val, const at::Tensor& max_val) {
  SQ_REQUIRE(weight.dim() == 2 && max_val.dim() == 2 && max_val.size(0) == weight.size(0) &&
                 weight.size(1) % max_val.size(1) == 0 && min_val.sizes() == max_val.sizes(),
             "AWQ clip: bounds " << min_val.sizes() << " / " << max_val.sizes()
                                 << " do not fit weight " << weight.sizes());
  const int64_t n = weight.size(0), groups = max_val.size(1);
  // float64 weights are clamped in float64 (a float32 round trip would round them).
  const at::ScalarType dt = weight.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  auto hi = max_val.to(weight.device(), dt).unsqueeze(-1);
  auto lo = min_val.to(weight.device(), dt).unsqueeze(-1);
  auto wg = weight.to(dt).reshape({n, groups, -1});
  weight.copy_(at::max(at::min(wg, hi), lo).reshape(weight.sizes()).to(weight.dtype()));
}

}  // namespace sq::solvers
