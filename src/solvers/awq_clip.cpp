// AWQ clip search (REFERENCE.md §1.5). The per-group partial dot products are batched matmuls
// over groups ([groups, tokens, G] × [groups, G, rows]) instead of AutoAWQ's broadcast product,
// so the working set is [rows, tokens, groups] rather than [rows, tokens, K]; output rows are
// processed in chunks sized to bound it.
#include <algorithm>

#include "common/check.h"
#include "solvers/awq.h"
#include "solvers/quant_grid.h"

namespace sq::solvers {

AwqClipResult awq_clip_search(const at::Tensor& w_in, const at::Tensor& x_in,
                              const QuantScheme& scheme, const AwqClipOptions& opts) {
  SQ_REQUIRE(w_in.dim() == 2, "AWQ clip: expected a 2-D weight, got " << w_in.dim() << " dims");
  const int64_t n = w_in.size(0), k = w_in.size(1);
  const int64_t g = scheme.group_for(k);
  SQ_REQUIRE(k % g == 0, "AWQ clip: group size " << g << " does not divide in_features " << k);
  SQ_REQUIRE(x_in.size(-1) == k,
             "AWQ clip: inputs have " << x_in.size(-1) << " features, weight " << k);
  const int64_t n_groups = k / g;
  auto w = w_in.to(at::kFloat);
  auto x = x_in.reshape({-1, k}).to(w.device(), at::kFloat);
  const int64_t stride =
      std::max<int64_t>(1, x.size(0) / std::max<int64_t>(opts.n_sample_tokens, 1));
  x = x.slice(0, 0, x.size(0), stride);
  const int64_t t = x.size(0);
  SQ_REQUIRE(t > 0, "AWQ clip: no calibration token");
  auto xg = x.reshape({t, n_groups, g}).permute({1, 0, 2}).contiguous();  // [groups, T, G]

  const int64_t per_row = std::max<int64_t>(1, t * n_groups * 2 + k * 2);
  const int64_t chunk = std::clamp<int64_t>(opts.max_chunk_elements / per_row, 1, n);
  const int n_steps = static_cast<int>(opts.max_shrink * opts.n_grid);

  std::vector<at::Tensor> best_max_all, best_shrink_all, best_err_all;
  for (int64_t r0 = 0; r0 < n; r0 += chunk) {
    const int64_t r1 = std::min(n, r0 + chunk), rows = r1 - r0;
    auto wc = w.slice(0, r0, r1);
    auto wg = wc.reshape({rows, n_groups, g});
    auto org_max = wg.abs().amax(-1, /*keepdim=*/true);  // [rows, groups, 1]
    // [groups, T, rows]: partial dot products of every token with every row, per group.
    auto org_out = at::bmm(xg, wg.permute({1, 2, 0}));
    auto best_max = org_max.squeeze(-1).clone();
    auto best_shrink = at::ones_like(best_max);
    auto min_err = at::full_like(best_max, 1e9);
    for (int i = 0; i < n_steps; ++i) {
      const double factor = 1.0 - double(i) / opts.n_grid;
      auto max_val = org_max * factor;
      auto cur = at::max(at::min(wg, max_val), -max_val).reshape({rows, k});
      auto qg = pseudo_quantize(cur, scheme, GridKind::kAwq).reshape({rows, n_groups, g});
      auto out = at::bmm(xg, qg.permute({1, 2, 0}));
      auto err = (out - org_out).pow(2).mean(1).t();  // [rows, groups]
      auto better = err < min_err;
      min_err = at::where(better, err, min_err);
      best_max = at::where(better, max_val.squeeze(-1), best_max);
      best_shrink = at::where(better, at::full_like(best_shrink, factor), best_shrink);
    }
    best_max_all.push_back(best_max);
    best_shrink_all.push_back(best_shrink);
    best_err_all.push_back(min_err);
  }
  return {at::cat(best_max_all, 0), at::cat(best_shrink_all, 0), at::cat(best_err_all, 0)};
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
