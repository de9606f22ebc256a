// GPTQ solve: dead columns, act order, damping with counted fallbacks, lazy-block updates.
// The column loop works on whole columns (vectorized over the N rows) and folds each block's
// accumulated error into the remaining columns with one matmul, on the weight's device.
#include "solvers/gptq.h"

#include <cmath>
#include <vector>

#include "common/check.h"
#include "solvers/cpu_tiles.h"

namespace sq::solvers {
namespace {

// Upper Cholesky factor of H⁻¹, or an undefined tensor when H is not positive definite.
at::Tensor inverse_cholesky_upper(const at::Tensor& h) {
  auto [l, info] = at::linalg_cholesky_ex(h);
  if (info.item<int64_t>() != 0 || !at::isfinite(l).all().item<bool>()) return {};
  auto hinv = at::cholesky_inverse(l);
  auto [u, info2] = at::linalg_cholesky_ex(hinv, /*upper=*/true);
  if (info2.item<int64_t>() != 0 || !at::isfinite(u).all().item<bool>()) return {};
  return u;
}

at::Tensor with_diagonal_shift(const at::Tensor& h, double shift) {
  auto out = h.clone();
  out.diagonal().add_(shift);
  return out;
}

// Group parameters at column `col` (processing order) from the current weights: columns inside
// the current block come from its working copy, later columns from the global weight (only read
// when the group starts at the block start, where both agree).
GroupParams params_at_boundary(const at::Tensor& w, const at::Tensor& w1, int64_t i1, int64_t i2,
                               int64_t col, int64_t group, const QuantScheme& scheme) {
  const int64_t end = std::min(col + group, w.size(1));
  const int64_t i = col - i1;
  at::Tensor slice = end <= i2 ? w1.slice(1, i, i + (end - col))
                               : at::cat({w1.slice(1, i), w.slice(1, i2, end)}, 1);
  return find_group_params(slice, scheme, GridKind::kGptq);
}

}  // namespace

// Why the ladder ends in a spectrum shift: damping only adds to the diagonal, and a Hessian whose
// negative eigenvalue (rounding in fp32 sums) exceeds 1.0·mean(diag H) needs a shift sized from
// the spectrum itself before RTN is the only option left.
at::Tensor damped_inverse_factor(const at::Tensor& h, double damp_percent, SolveStats& stats) {
  const double mean_diag = h.diagonal().mean().item<double>();
  if (!std::isfinite(mean_diag) || !at::isfinite(h).all().item<bool>()) return {};
  double p = damp_percent;
  for (int attempt = 0;; ++attempt) {
    auto u = inverse_cholesky_upper(with_diagonal_shift(h, p * mean_diag));
    if (u.defined()) {
      stats.damp_escalations = attempt;
      stats.final_damp_percent = p;
      return u;
    }
    const double next = p > 0 ? p * 10.0 : 0.01;
    if (p >= 1.0 || next > 1.0 + 1e-9) {
      stats.damp_escalations = attempt;
      break;
    }
    p = next;
  }
  stats.diagonal_floor = true;
  const double min_eig = at::linalg_eigvalsh(h).min().item<double>();
  const double shift = std::max(0.0, -min_eig) + std::max(mean_diag, 1e-8);
  auto u = inverse_cholesky_upper(with_diagonal_shift(h, shift));
  if (u.defined()) stats.final_damp_percent = shift / std::max(mean_diag, 1e-8);
  return u;
}

QuantizedLinear gptq_quantize(const at::Tensor& w_in, const at::Tensor& h_in,
                              const QuantScheme& scheme, const GptqOptions& opts,
                              const std::string& name) {
  validate_scheme(scheme, name);
  SQ_REQUIRE(w_in.dim() == 2, name << ": expected a 2-D weight, got " << w_in.dim() << " dims");
  const int64_t k = w_in.size(1);
  SQ_REQUIRE(h_in.dim() == 2 && h_in.size(0) == k && h_in.size(1) == k,
             name << ": Hessian must be [" << k << ", " << k << "], got " << h_in.sizes());
  const int64_t group = scheme.group_for(k);
  SQ_REQUIRE(k % group == 0,
             name << ": group size " << group << " does not divide in_features " << k);
  SQ_REQUIRE(opts.block_size > 0, name << ": GPTQ block size must be positive");
  SQ_REQUIRE(at::isfinite(w_in).all().item<bool>(), name << ": weight contains non-finite values");
  const int64_t n_groups = k / group;

  auto w = w_in.to(at::kFloat).clone();
  auto hdt = h_in.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  auto h = h_in.to(w.device(), hdt).clone();

  SolveStats stats;
  auto dead = h.diagonal() == 0;
  stats.dead_columns = dead.sum().item<int64_t>();
  h.diagonal().masked_fill_(dead, 1.0);
  w.masked_fill_(dead.unsqueeze(0), 0.0);

  std::vector<GroupParams> groups;  // by group index
  if (opts.static_groups || n_groups == 1) {
    for (int64_t g = 0; g < n_groups; ++g) {
      groups.push_back(
          find_group_params(w.slice(1, g * group, (g + 1) * group), scheme, GridKind::kGptq));
    }
  }

  auto long_opts = w.options().dtype(at::kLong);
  at::Tensor perm = at::arange(k, long_opts);
  if (scheme.act_order) {
    perm = std::get<1>(at::sort(h.diagonal(), /*stable=*/true, /*dim=*/0, /*descending=*/true));
    w = w.index_select(1, perm);
    h = h.index_select(0, perm).index_select(1, perm);
  }
  const auto invperm = at::argsort(perm);
  auto perm_cpu = perm.to(at::kCPU);
  const int64_t* perm_p = perm_cpu.data_ptr<int64_t>();

  auto hinv_full = damped_inverse_factor(h, opts.damp_percent, stats);
  if (!hinv_full.defined()) {
    auto out = quantize_rtn(w_in.to(at::kFloat).masked_fill(dead.unsqueeze(0), 0.0), scheme,
                            GridKind::kGptq, name);
    stats.rtn_fallback = true;
    stats.error = out.stats.error;
    out.stats = stats;
    return out;
  }
  auto hinv = hinv_full.to(at::kFloat);

  auto codes = at::zeros_like(w);
  auto deq = at::zeros_like(w);
  auto loss = at::zeros({}, w.options());
  GroupParams cur;
  if (!opts.static_groups && n_groups == 1) cur = groups[0];
  const bool boundaries = !opts.static_groups && n_groups > 1;

  for (int64_t i1 = 0; i1 < k; i1 += opts.block_size) {
    const int64_t i2 = std::min(i1 + opts.block_size, k), count = i2 - i1;
    auto w1 = w.slice(1, i1, i2).clone();
    auto err1 = at::zeros_like(w1);
    auto hinv1 = hinv.slice(0, i1, i2).slice(1, i1, i2);
    auto diag = hinv1.diagonal().to(at::kCPU, at::kDouble).contiguous();
    const double* d = diag.data_ptr<double>();
    for (int64_t i = 0; i < count; ++i) {
      const int64_t col = i1 + i;
      if (opts.static_groups) {
        cur = groups[perm_p[col] / group];
      } else if (boundaries && col % group == 0) {
        cur = params_at_boundary(w, w1, i1, i2, col, group, scheme);
        groups.push_back(cur);
      }
      auto wcol = w1.select(1, i);
      auto q = quantize_with(wcol.unsqueeze(1), cur, scheme.max_q()).squeeze(1);
      auto dq = dequantize_with(q.unsqueeze(1), cur).squeeze(1);
      codes.select(1, col).copy_(q);
      deq.select(1, col).copy_(dq);
      auto e = (wcol - dq) / d[i];
      loss.add_(e.pow(2).sum() * 0.5);
      w1.slice(1, i).addr_(e, hinv1.select(0, i).slice(0, i), 1.0, -1.0);
      err1.select(1, i).copy_(e);
    }
    if (i2 < k) {
      at::Tensor rest = w.slice(1, i2);
      tiles::addmm_rows_(rest, err1, hinv.slice(0, i1, i2).slice(1, i2), -1.0);
    }
  }

  QuantizedLinear out;
  out.codes = codes.index_select(1, invperm).to(at::kInt);
  out.dequant = deq.index_select(1, invperm);
  std::vector<at::Tensor> scales, zeros;
  for (const auto& g : groups) {
    scales.push_back(g.scale);
    zeros.push_back(g.zero);
  }
  out.scales = at::stack(scales, 0);
  out.zeros = at::stack(zeros, 0).to(at::kInt);
  auto pos = (scheme.act_order && !opts.static_groups) ? invperm : at::arange(k, long_opts);
  out.g_idx = at::div(pos, group, "floor").to(at::kInt);
  stats.error = loss.item<double>();
  out.stats = stats;
  return out;
}

}  // namespace sq::solvers
