// Float64 AWQ references: pseudo-quantize, scale search and clip search as plain loops in
// double. Written without the production helpers so a shared mistake cannot hide.
#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "common/check.h"
#include "solvers/reference.h"

namespace sq::solvers::reference {
namespace {

double fp16_round(double v) {
  double r = static_cast<float>(c10::Half(static_cast<float>(v)));
  return std::min(std::max(r, 5.9604644775390625e-08), 65504.0);
}

// Fake-quantizes vals in place as one AWQ group; returns nothing else.
void awq_group_f64(double* vals, int64_t count, const QuantScheme& s) {
  const double max_q = double((1 << s.bits) - 1);
  double lo = std::numeric_limits<double>::infinity(), hi = -lo, amax = 0;
  for (int64_t i = 0; i < count; ++i) {
    lo = std::min(lo, vals[i]);
    hi = std::max(hi, vals[i]);
    amax = std::max(amax, std::fabs(vals[i]));
  }
  double scale, zero;
  if (s.zero_point) {
    scale = fp16_round(std::max(hi - lo, 1e-5) / max_q);
    zero = std::clamp(-std::nearbyint(lo / scale), 0.0, max_q);
  } else {
    const double half = double(1 << (s.bits - 1));
    scale = fp16_round(std::max(amax, 1e-5) / (half - 1));
    zero = half;
  }
  for (int64_t i = 0; i < count; ++i) {
    const double q = std::clamp(std::nearbyint(vals[i] / scale) + zero, 0.0, max_q);
    vals[i] = (q - zero) * scale;
  }
}

std::vector<double> to_vec(const at::Tensor& t) {
  auto c = t.to(at::kCPU, at::kDouble).contiguous().reshape({-1});
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

}  // namespace

at::Tensor awq_pseudo_quantize_f64(const at::Tensor& w, const QuantScheme& scheme) {
  auto out = w.to(at::kCPU, at::kDouble).contiguous().clone();
  const int64_t k = out.size(1);
  const int64_t g = scheme.group_for(k);
  double* p = out.data_ptr<double>();
  for (int64_t start = 0; start < out.numel(); start += g) awq_group_f64(p + start, g, scheme);
  return out;
}

AwqSearchResult awq_search_f64(const at::Tensor& x_mean, const at::Tensor& w_mean, int n_grid,
                               bool duo, const AwqLossFn& loss_fn) {
  const auto xm = to_vec(x_mean), wm = to_vec(w_mean);
  AwqSearchResult r;
  double best = std::numeric_limits<double>::infinity();
  for (int k = 0; k < n_grid; ++k) {
    const double a = double(k) / n_grid;
    std::vector<double> s(xm.size());
    double mx = -std::numeric_limits<double>::infinity(), mn = -mx;
    for (size_t i = 0; i < s.size(); ++i) {
      s[i] = duo ? std::pow(xm[i], a) / (std::pow(wm[i], 1 - a) + 1e-4) : std::pow(xm[i], a);
      s[i] = std::max(s[i], 1e-4);
      mx = std::max(mx, s[i]);
      mn = std::min(mn, s[i]);
    }
    const double norm = std::sqrt(mx * mn);
    for (auto& v : s) {
      v /= norm;
      if (!std::isfinite(v)) v = 1.0;
    }
    auto st = at::tensor(s, at::kDouble);
    const double loss = loss_fn(st);
    r.losses.push_back(loss);
    if (std::isfinite(loss) && loss < best) {
      best = loss;
      r.best_index = k;
      r.scales = st;
    }
  }
  SQ_CHECK(r.best_index >= 0, "reference AWQ search: no finite loss");
  r.best_alpha = double(r.best_index) / n_grid;
  r.best_loss = best;
  return r;
}

AwqClipResult awq_clip_f64(const at::Tensor& w_in, const at::Tensor& x_in,
                           const QuantScheme& scheme, const AwqClipOptions& opts) {
  auto w = w_in.to(at::kCPU, at::kDouble).contiguous();
  const int64_t n = w.size(0), k = w.size(1);
  auto x = x_in.reshape({-1, k}).to(at::kCPU, at::kDouble).contiguous();
  const int64_t g = scheme.group_for(k), n_groups = k / g;
  const int64_t stride = awq_clip_stride(x.size(0), opts);
  std::vector<int64_t> tokens;
  for (int64_t t = 0; t < x.size(0); t += stride) tokens.push_back(t);
  auto wa = w.accessor<double, 2>();
  auto xa = x.accessor<double, 2>();
  auto zeros = [&] { return at::zeros({n, n_groups}, at::kDouble); };
  AwqClipResult out{zeros(), zeros(), zeros(), zeros(), zeros()};
  auto ma = out.max_val.accessor<double, 2>();
  auto sa = out.shrink.accessor<double, 2>();
  auto ea = out.min_error.accessor<double, 2>();
  auto mina = out.min_val.accessor<double, 2>();
  auto sla = out.shrink_lower.accessor<double, 2>();
  const int steps = static_cast<int>(opts.max_shrink * opts.n_grid);
  // Upper-major pairs (i_hi, i_lo); symmetric = the diagonal only.
  std::vector<std::pair<int, int>> pairs;
  for (int hi = 0; hi < steps; ++hi)
    for (int lo = 0; lo < steps; ++lo)
      if (opts.asym || lo == hi) pairs.emplace_back(hi, lo);
  std::vector<double> orig(g), cur(g);
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t gi = 0; gi < n_groups; ++gi) {
      double amax = 0;
      for (int64_t j = 0; j < g; ++j) {
        orig[j] = wa[r][gi * g + j];
        amax = std::max(amax, std::fabs(orig[j]));
      }
      double best_err = 1e9, best_max = amax, best_shrink = 1.0, best_min = -amax,
             best_shrink_lo = 1.0;
      for (const auto& [ih, il] : pairs) {
        const double f = 1.0 - double(ih) / opts.n_grid, mv = amax * f;
        const double f_lo = 1.0 - double(il) / opts.n_grid, lv = -(amax * f_lo);
        for (int64_t j = 0; j < g; ++j) cur[j] = std::clamp(orig[j], lv, mv);
        awq_group_f64(cur.data(), g, scheme);
        double err = 0;
        for (int64_t t : tokens) {
          double d = 0;
          for (int64_t j = 0; j < g; ++j) d += xa[t][gi * g + j] * (cur[j] - orig[j]);
          err += d * d;
        }
        err /= double(tokens.size());
        if (err < best_err) {
          best_err = err;
          best_max = mv;
          best_shrink = f;
          best_min = lv;
          best_shrink_lo = f_lo;
        }
      }
      ma[r][gi] = best_max;
      sa[r][gi] = best_shrink;
      ea[r][gi] = best_err;
      mina[r][gi] = best_min;
      sla[r][gi] = best_shrink_lo;
    }
  }
  return out;
}

}  // namespace sq::solvers::reference
