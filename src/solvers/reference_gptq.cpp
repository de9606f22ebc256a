// Float64 GPTQ reference: plain loops over rows and columns in double, its own Cholesky and
// inverse, no lazy blocks and no batching. Slow on purpose; only tests call it.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "common/check.h"
#include "solvers/reference.h"

namespace sq::solvers::reference {
namespace {

using Mat = std::vector<std::vector<double>>;

double fp16_round(double v) {
  double r = static_cast<float>(c10::Half(static_cast<float>(v)));
  return std::min(std::max(r, 5.9604644775390625e-08), 65504.0);
}

struct Params {
  double scale, zero;
};

Params params_of_range(double lo, double hi, const QuantScheme& s) {
  const double max_q = double((1 << s.bits) - 1);
  const double scale = fp16_round((hi - lo) / max_q);
  const double zero = s.zero_point ? std::clamp(std::nearbyint(-lo / scale), 0.0, max_q)
                                   : double(1 << (s.bits - 1));
  return {scale, zero};
}

Params gptq_params(const std::vector<double>& vals, const QuantScheme& s) {
  const double max_q = double((1 << s.bits) - 1);
  double lo = 0, hi = 0;
  for (double v : vals) {
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  if (!s.zero_point) {
    hi = std::max(std::fabs(lo), hi);
    lo = -hi;
  }
  if (lo == 0 && hi == 0) {
    lo = -1;
    hi = 1;
  }
  if (s.mse_norm <= 0) return params_of_range(lo, hi, s);
  // Range search: one shrink at a time, the first strictly smaller error wins.
  Params best_p{};
  double best = std::numeric_limits<double>::infinity();
  for (int i = 0; i < MseGrid::kSteps; ++i) {
    const double f = 1.0 - double(i) / MseGrid::kGrid;
    const Params p = params_of_range(f * lo, f * hi, s);
    double err = 0;
    for (double v : vals) {
      const double q = std::clamp(std::nearbyint(v / p.scale) + p.zero, 0.0, max_q);
      err += std::pow(std::fabs((q - p.zero) * p.scale - v), s.mse_norm);
    }
    if (err < best) {
      best = err;
      best_p = p;
    }
  }
  return best_p;
}

// Lower Cholesky factor of a (k×k) matrix; false if not positive definite.
bool cholesky(const Mat& a, Mat& l) {
  const size_t k = a.size();
  l.assign(k, std::vector<double>(k, 0.0));
  for (size_t j = 0; j < k; ++j) {
    double d = a[j][j];
    for (size_t p = 0; p < j; ++p) d -= l[j][p] * l[j][p];
    if (!(d > 0) || !std::isfinite(d)) return false;
    l[j][j] = std::sqrt(d);
    for (size_t i = j + 1; i < k; ++i) {
      double v = a[i][j];
      for (size_t p = 0; p < j; ++p) v -= l[i][p] * l[j][p];
      l[i][j] = v / l[j][j];
    }
  }
  return true;
}

// A⁻¹ from its lower Cholesky factor by solving L Lᵀ x = e_c for every column.
Mat inverse_from_cholesky(const Mat& l) {
  const size_t k = l.size();
  Mat inv(k, std::vector<double>(k, 0.0));
  std::vector<double> y(k);
  for (size_t c = 0; c < k; ++c) {
    for (size_t i = 0; i < k; ++i) {
      double v = (i == c) ? 1.0 : 0.0;
      for (size_t p = 0; p < i; ++p) v -= l[i][p] * y[p];
      y[i] = v / l[i][i];
    }
    for (size_t i = k; i-- > 0;) {
      double v = y[i];
      for (size_t p = i + 1; p < k; ++p) v -= l[p][i] * inv[p][c];
      inv[i][c] = v / l[i][i];
    }
  }
  return inv;
}

// Upper factor U (Hinv = Uᵀ U) of the damped H⁻¹, escalating the damping ×10 up to 1.0.
bool hinv_upper(const Mat& h, double damp, Mat& u) {
  const size_t k = h.size();
  double mean = 0;
  for (size_t i = 0; i < k; ++i) mean += h[i][i];
  mean /= double(k);
  for (double p = damp;; p *= 10.0) {
    Mat a = h, l, l2;
    for (size_t i = 0; i < k; ++i) a[i][i] += p * mean;
    if (cholesky(a, l) && cholesky(inverse_from_cholesky(l), l2)) {
      u.assign(k, std::vector<double>(k, 0.0));
      for (size_t i = 0; i < k; ++i)
        for (size_t j = 0; j < k; ++j) u[i][j] = l2[j][i];
      return true;
    }
    if (p >= 1.0 || p == 0) return false;
  }
}

}  // namespace

QuantizedLinear gptq_quantize_f64(const at::Tensor& w_in, const at::Tensor& h_in,
                                  const QuantScheme& scheme, const GptqOptions& opts) {
  auto wt = w_in.to(at::kCPU, at::kDouble).contiguous();
  auto ht = h_in.to(at::kCPU, at::kDouble).contiguous();
  const int64_t n = wt.size(0), k = wt.size(1);
  const int64_t g = scheme.group_for(k);
  const int64_t n_groups = k / g;
  const double max_q = double((1 << scheme.bits) - 1);
  Mat w(n, std::vector<double>(k)), h(k, std::vector<double>(k));
  auto wa = wt.accessor<double, 2>();
  auto ha = ht.accessor<double, 2>();
  for (int64_t r = 0; r < n; ++r)
    for (int64_t c = 0; c < k; ++c) w[r][c] = wa[r][c];
  for (int64_t i = 0; i < k; ++i)
    for (int64_t j = 0; j < k; ++j) h[i][j] = ha[i][j];

  for (int64_t d = 0; d < k; ++d) {
    if (h[d][d] == 0) {
      h[d][d] = 1;
      for (int64_t r = 0; r < n; ++r) w[r][d] = 0;
    }
  }
  // Static parameters: group g of the original column order, one per row.
  std::vector<std::vector<Params>> fixed(n_groups, std::vector<Params>(n));
  for (int64_t gi = 0; gi < n_groups; ++gi)
    for (int64_t r = 0; r < n; ++r)
      fixed[gi][r] = gptq_params(
          std::vector<double>(w[r].begin() + gi * g, w[r].begin() + (gi + 1) * g), scheme);

  std::vector<int64_t> perm(k);
  std::iota(perm.begin(), perm.end(), 0);
  if (scheme.act_order) {
    std::stable_sort(perm.begin(), perm.end(),
                     [&](int64_t a, int64_t b) { return h[a][a] > h[b][b]; });
  }
  Mat wp(n, std::vector<double>(k)), hp(k, std::vector<double>(k)), u;
  for (int64_t r = 0; r < n; ++r)
    for (int64_t c = 0; c < k; ++c) wp[r][c] = w[r][perm[c]];
  for (int64_t i = 0; i < k; ++i)
    for (int64_t j = 0; j < k; ++j) hp[i][j] = h[perm[i]][perm[j]];
  SQ_CHECK(hinv_upper(hp, opts.damp_percent, u), "reference GPTQ: Hessian not positive definite");

  std::vector<Params> cur = fixed[0];
  std::vector<std::vector<Params>> found;
  if (opts.static_groups || n_groups == 1) found = fixed;
  auto codes = at::zeros({n, k}, at::kInt);
  auto deq = at::zeros({n, k}, at::kDouble);
  auto ca = codes.accessor<int32_t, 2>();
  auto da = deq.accessor<double, 2>();
  double loss = 0;
  for (int64_t c = 0; c < k; ++c) {
    if (opts.static_groups) {
      cur = fixed[perm[c] / g];
    } else if (n_groups > 1 && c % g == 0) {
      for (int64_t r = 0; r < n; ++r)
        cur[r] = gptq_params(std::vector<double>(wp[r].begin() + c, wp[r].begin() + c + g), scheme);
      found.push_back(cur);
    }
    for (int64_t r = 0; r < n; ++r) {
      const double q =
          std::clamp(std::nearbyint(wp[r][c] / cur[r].scale) + cur[r].zero, 0.0, max_q);
      const double dq = (q - cur[r].zero) * cur[r].scale;
      const double err = (wp[r][c] - dq) / u[c][c];
      loss += err * err / 2;
      for (int64_t j = c + 1; j < k; ++j) wp[r][j] -= err * u[c][j];
      ca[r][perm[c]] = static_cast<int32_t>(q);
      da[r][perm[c]] = dq;
    }
  }

  QuantizedLinear out;
  out.codes = codes;
  out.dequant = deq;
  out.scales = at::zeros({n_groups, n}, at::kDouble);
  out.zeros = at::zeros({n_groups, n}, at::kInt);
  auto sa = out.scales.accessor<double, 2>();
  auto za = out.zeros.accessor<int32_t, 2>();
  for (int64_t gi = 0; gi < n_groups; ++gi) {
    for (int64_t r = 0; r < n; ++r) {
      sa[gi][r] = found[gi][r].scale;
      za[gi][r] = static_cast<int32_t>(found[gi][r].zero);
    }
  }
  out.g_idx = at::zeros({k}, at::kInt);
  auto ga = out.g_idx.accessor<int32_t, 1>();
  for (int64_t p = 0; p < k; ++p) {
    const int64_t col = perm[p];
    ga[col] = static_cast<int32_t>((scheme.act_order && !opts.static_groups ? p : col) / g);
  }
  out.stats.error = loss;
  return out;
}

}  // namespace sq::solvers::reference
