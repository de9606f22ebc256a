// AWQ clip search (REFERENCE.md §1.5). The per-group partial dot products are batched matmuls
// over groups ([groups, tokens, G] × [groups, G, rows]) instead of AutoAWQ's broadcast product,
// so the working set is [rows, tokens, groups] rather than [rows, tokens, K]; output rows are
// processed in chunks sized to bound it. The single-process search and the data-parallel pieces
// (awq_clip.h) run the same trial loop; they differ only in how a trial's squared errors are
// reduced over tokens (mean and running choice, or sums kept per factor).
#include "solvers/awq_clip.h"

#include <algorithm>

#include "common/check.h"
#include "solvers/awq.h"
#include "solvers/quant_grid.h"

namespace sq::solvers {
namespace {

struct ClipShape {
  int64_t n = 0, k = 0, g = 0, n_groups = 0;
  int n_steps = 0;
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
  return s;
}

at::Tensor as_rows(const at::Tensor& x, int64_t k, const at::Device& dev) {
  SQ_REQUIRE(x.size(-1) == k, "AWQ clip: inputs have " << x.size(-1) << " features, weight " << k);
  return x.reshape({-1, k}).to(dev, at::kFloat);
}

// Runs every shrink trial on every chunk of rows: on_chunk(r0, r1, org_max [rows, groups, 1])
// once per chunk, then on_trial(i, factor, max_val [rows, groups, 1], d2 [groups, T, rows]) with
// the squared partial-dot errors of trial i.
template <class OnChunk, class OnTrial>
void trial_loop(const at::Tensor& w, const at::Tensor& x, const QuantScheme& scheme,
                const AwqClipOptions& opts, const ClipShape& s, OnChunk on_chunk,
                OnTrial on_trial) {
  const int64_t t = x.size(0);
  auto xg = x.reshape({t, s.n_groups, s.g}).permute({1, 0, 2}).contiguous();  // [groups, T, G]
  const int64_t per_row = std::max<int64_t>(1, t * s.n_groups * 2 + s.k * 2);
  const int64_t chunk = std::clamp<int64_t>(opts.max_chunk_elements / per_row, 1, s.n);
  for (int64_t r0 = 0; r0 < s.n; r0 += chunk) {
    const int64_t r1 = std::min(s.n, r0 + chunk), rows = r1 - r0;
    auto wg = w.slice(0, r0, r1).reshape({rows, s.n_groups, s.g});
    auto org_max = wg.abs().amax(-1, /*keepdim=*/true);  // [rows, groups, 1]
    on_chunk(r0, r1, org_max);
    // [groups, T, rows]: partial dot products of every token with every row, per group.
    auto org_out = at::bmm(xg, wg.permute({1, 2, 0}));
    // On a GPU the fused trial-weight kernel with s = 1 is Q(W) bit for bit (×1 and ÷1 are exact;
    // AwqTrialCuda.ClipUseWithUnitScales) in one pass instead of ~15 elementwise ones.
    const at::Tensor unit =
        w.is_cuda() ? at::ones({s.k}, w.options().dtype(at::kFloat)) : at::Tensor();
    for (int i = 0; i < s.n_steps; ++i) {
      const double factor = 1.0 - double(i) / opts.n_grid;
      auto max_val = org_max * factor;
      auto cur = at::max(at::min(wg, max_val), -max_val).reshape({rows, s.k});
      auto q = unit.defined() ? awq_trial_weight_as(cur, unit, scheme, at::kFloat)
                              : pseudo_quantize(cur, scheme, GridKind::kAwq);
      auto qg = q.reshape({rows, s.n_groups, s.g});
      auto out = at::bmm(xg, qg.permute({1, 2, 0}));
      on_trial(i, factor, max_val, (out - org_out).pow(2));
    }
  }
}

// The running choice of awq_clip_search over one chunk: the first strictly smaller error wins.
struct Choice {
  at::Tensor best_max, best_shrink, min_err;  // [rows, groups]
  void start(const at::Tensor& org_max) {
    best_max = org_max.squeeze(-1).clone();
    best_shrink = at::ones_like(best_max);
    min_err = at::full_like(best_max, 1e9);
  }
  void offer(double factor, const at::Tensor& max_val, const at::Tensor& err) {
    auto better = err < min_err;
    min_err = at::where(better, err, min_err);
    best_max = at::where(better, max_val.squeeze(-1), best_max);
    best_shrink = at::where(better, at::full_like(best_shrink, factor), best_shrink);
  }
};

}  // namespace

AwqClipResult awq_clip_search(const at::Tensor& w_in, const at::Tensor& x_in,
                              const QuantScheme& scheme, const AwqClipOptions& opts) {
  const ClipShape s = clip_shape(w_in, scheme, opts);
  auto w = w_in.to(at::kFloat);
  auto x = as_rows(x_in, s.k, w.device());
  const int64_t stride =
      std::max<int64_t>(1, x.size(0) / std::max<int64_t>(opts.n_sample_tokens, 1));
  x = x.slice(0, 0, x.size(0), stride);
  SQ_REQUIRE(x.size(0) > 0, "AWQ clip: no calibration token");

  std::vector<at::Tensor> best_max_all, best_shrink_all, best_err_all;
  Choice c;
  auto flush = [&] {
    if (!c.best_max.defined()) return;
    best_max_all.push_back(c.best_max);
    best_shrink_all.push_back(c.best_shrink);
    best_err_all.push_back(c.min_err);
  };
  trial_loop(
      w, x, scheme, opts, s,
      [&](int64_t, int64_t, const at::Tensor& org_max) {
        flush();
        c.start(org_max);
      },
      [&](int, double factor, const at::Tensor& max_val, const at::Tensor& d2) {
        c.offer(factor, max_val, d2.mean(1).t());  // [rows, groups]
      });
  flush();
  return {at::cat(best_max_all, 0), at::cat(best_shrink_all, 0), at::cat(best_err_all, 0)};
}

at::Tensor awq_clip_sample(const at::Tensor& x_in, int64_t offset, int64_t total,
                           const AwqClipOptions& opts) {
  const at::Tensor x = x_in.reshape({-1, x_in.size(-1)});
  SQ_REQUIRE(offset >= 0 && offset + x.size(0) <= total,
             "AWQ clip sample: rows [" << offset << ", " << offset + x.size(0)
                                       << ") are not inside a whole of " << total << " rows");
  const int64_t stride = std::max<int64_t>(1, total / std::max<int64_t>(opts.n_sample_tokens, 1));
  // The first multiple of the stride at or after `offset`, as a local row.
  const int64_t first = (offset + stride - 1) / stride * stride - offset;
  if (first >= x.size(0)) return x.slice(0, 0, 0);
  return x.slice(0, first, x.size(0), stride);
}

at::Tensor awq_clip_error_sums(const at::Tensor& w_in, const at::Tensor& x_in,
                               const QuantScheme& scheme, const AwqClipOptions& opts) {
  const ClipShape s = clip_shape(w_in, scheme, opts);
  auto w = w_in.to(at::kFloat);
  auto x = as_rows(x_in, s.k, w.device());
  auto sums = at::zeros({s.n_steps, s.n, s.n_groups}, w.options());
  if (x.size(0) == 0) return sums;
  int64_t r0 = 0, r1 = 0;
  trial_loop(
      w, x, scheme, opts, s,
      [&](int64_t a, int64_t b, const at::Tensor&) {
        r0 = a;
        r1 = b;
      },
      [&](int i, double, const at::Tensor&, const at::Tensor& d2) {
        sums[i].slice(0, r0, r1).copy_(d2.sum(1).t());
      });
  return sums;
}

AwqClipResult awq_clip_pick(const at::Tensor& w_in, const at::Tensor& error_sums, int64_t tokens,
                            const QuantScheme& scheme, const AwqClipOptions& opts) {
  const ClipShape s = clip_shape(w_in, scheme, opts);
  SQ_REQUIRE(tokens > 0, "AWQ clip: no calibration token");
  SQ_REQUIRE(error_sums.dim() == 3 && error_sums.size(0) == s.n_steps &&
                 error_sums.size(1) == s.n && error_sums.size(2) == s.n_groups,
             "AWQ clip: error sums " << error_sums.sizes() << ", expected [" << s.n_steps << ", "
                                     << s.n << ", " << s.n_groups << "]");
  auto w = w_in.to(at::kFloat);
  auto org_max = w.reshape({s.n, s.n_groups, s.g}).abs().amax(-1, /*keepdim=*/true);
  auto sums = error_sums.to(w.device(), at::kFloat);
  Choice c;
  c.start(org_max);
  for (int i = 0; i < s.n_steps; ++i) {
    const double factor = 1.0 - double(i) / opts.n_grid;
    c.offer(factor, org_max * factor, sums[i] / static_cast<double>(tokens));
  }
  return {c.best_max, c.best_shrink, c.min_err};
}

void awq_apply_clip(at::Tensor& weight, const at::Tensor& max_val) {
  SQ_REQUIRE(weight.dim() == 2 && max_val.dim() == 2 && max_val.size(0) == weight.size(0) &&
                 weight.size(1) % max_val.size(1) == 0,
             "AWQ clip: max_val " << max_val.sizes() << " does not fit weight " << weight.sizes());
  const int64_t n = weight.size(0), groups = max_val.size(1);
  auto m = max_val.to(weight.device(), at::kFloat).unsqueeze(-1);
  auto wg = weight.to(at::kFloat).reshape({n, groups, -1});
  weight.copy_(at::max(at::min(wg, m), -m).reshape(weight.sizes()).to(weight.dtype()));
}

}  // namespace sq::solvers
