// AWQ statistics, scale candidates, the grid search and scale application (REFERENCE.md §1.3–4).
// The loss is the caller's: only it can run the inspect scope. Everything here is element-wise
// or a reduction, done in float32 on the inputs' device.
#include <array>
#include <cmath>
#include <limits>

#include "common/check.h"
#include "solvers/awq.h"
#include "solvers/awq_trial_kernel.h"
#include "solvers/quant_grid.h"

namespace sq::solvers {

at::Tensor awq_x_abs_sum(const at::Tensor& x) {
  SQ_REQUIRE(x.dim() >= 1, "AWQ statistics: input has no feature dimension");
  return x.reshape({-1, x.size(-1)}).to(at::kFloat).abs().sum(0);
}

at::Tensor awq_x_mean(const at::Tensor& x) {
  const int64_t tokens = x.numel() / std::max<int64_t>(x.size(-1), 1);
  SQ_REQUIRE(tokens > 0, "AWQ statistics: no calibration token reached this linear");
  return awq_x_abs_sum(x) / static_cast<double>(tokens);
}

at::Tensor awq_w_mean(const std::vector<at::Tensor>& member_weights, int64_t group_size) {
  SQ_REQUIRE(!member_weights.empty(), "AWQ w_mean: no member weight given");
  const int64_t k = member_weights.front().size(-1);
  std::vector<at::Tensor> rows;
  for (const auto& m : member_weights) {
    SQ_REQUIRE(m.dim() == 2 && m.size(1) == k,
               "AWQ w_mean: member weights must share in_features " << k << ", got " << m.sizes());
    rows.push_back(m.to(at::kFloat));
  }
  auto w = at::cat(rows, 0);
  const int64_t g = group_size_for(group_size, k);
  SQ_REQUIRE(k % g == 0, "AWQ w_mean: group size " << g << " does not divide " << k);
  auto a = w.abs().reshape({-1, g});
  auto scaled = a / (a.amax(1, /*keepdim=*/true) + 1e-6);
  return scaled.reshape(w.sizes()).mean(0);
}

at::Tensor awq_scale_candidates(const at::Tensor& x_mean, const at::Tensor& w_mean, double alpha,
                                bool duo) {
  auto xm = x_mean.to(at::kFloat);
  at::Tensor s = duo ? xm.pow(alpha) / (w_mean.to(xm.device(), at::kFloat).pow(1.0 - alpha) + 1e-4)
                     : xm.pow(alpha);
  s = s.clamp_min(1e-4).reshape({-1});
  s = s / (s.max() * s.min()).sqrt();
  return at::where(at::isfinite(s), s, at::ones_like(s));
}

int awq_pick_best(const std::vector<double>& losses, const std::string& group_name) {
  int best = -1;
  double best_loss = std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < losses.size(); ++i) {
    if (std::isfinite(losses[i]) && (best < 0 || losses[i] < best_loss)) {
      best = static_cast<int>(i);
      best_loss = losses[i];
    }
  }
  SQ_REQUIRE(best >= 0, "AWQ scale search for " << group_name << ": no grid point gave a finite "
                                                << "loss (" << losses.size()
                                                << " tried); check the weights and calibration "
                                                   "activations for overflow or NaN");
  return best;
}

AwqSearchResult awq_search_scales(const at::Tensor& x_mean, const at::Tensor& w_mean, int n_grid,
                                  bool duo, const AwqTensorLossFn& loss_fn,
                                  const std::string& group_name, const AwqLossReduce& reduce,
                                  const AwqRefine& refine) {
  SQ_REQUIRE(n_grid > 0,
             "AWQ scale search for " << group_name << ": n_grid must be positive, got " << n_grid);
  SQ_REQUIRE(refine.rounds >= 1 && refine.points_per_side >= 1,
             "AWQ scale search for " << group_name << ": --iter and --search-step must be >= 1");
  AwqSearchResult r;
  std::vector<at::Tensor> candidates;
  // Evaluates one round with a single read-back: the device keeps working through every trial
  // without waiting for the host.
  auto run_round = [&](const std::vector<double>& alphas) {
    std::vector<at::Tensor> losses;
    for (double a : alphas) {
      candidates.push_back(awq_scale_candidates(x_mean, w_mean, a, duo));
      losses.push_back(loss_fn(candidates.back()).to(at::kDouble).reshape({}));
    }
    at::Tensor all = at::stack(losses);
    if (reduce) reduce(all);
    all = all.cpu().contiguous();
    const double* p = all.data_ptr<double>();
    r.losses.insert(r.losses.end(), p, p + alphas.size());
    r.alphas.insert(r.alphas.end(), alphas.begin(), alphas.end());
  };
  std::vector<double> grid;
  for (int k = 0; k < n_grid; ++k) grid.push_back(double(k) / n_grid);
  run_round(grid);
  r.best_index = awq_pick_best(r.losses, group_name);

  double spacing = 1.0 / n_grid;
  for (int round = 2; round <= refine.rounds; ++round) {
    spacing /= refine.points_per_side + 1;
    if (spacing < kAwqRefineMinSpacing) break;
    const double center = r.alphas[r.best_index];
    std::vector<double> alphas;
    for (int j = 1; j <= refine.points_per_side; ++j)
      for (double a : {center - j * spacing, center + j * spacing})
        if (a >= 0.0 && a <= 1.0) alphas.push_back(a);
    if (alphas.empty()) break;
    const size_t first = r.losses.size();
    run_round(alphas);
    for (size_t i = first; i < r.losses.size(); ++i)
      if (std::isfinite(r.losses[i]) && r.losses[i] < r.losses[r.best_index])
        r.best_index = static_cast<int>(i);
    r.rounds = round;
  }
  r.best_alpha = r.alphas[r.best_index];
  r.best_loss = r.losses[r.best_index];
  r.scales = candidates[r.best_index];
  return r;
}

AwqSearchResult awq_search_scales_host(const at::Tensor& x_mean, const at::Tensor& w_mean,
                                       int n_grid, bool duo, const AwqLossFn& loss_fn,
                                       const std::string& group_name, const AwqRefine& refine) {
  return awq_search_scales(
      x_mean, w_mean, n_grid, duo,
      [&](const at::Tensor& s) { return at::scalar_tensor(loss_fn(s), at::kDouble); }, group_name,
      {}, refine);
}

std::vector<int64_t> salient_columns(const at::Tensor& stat, double quota) {
  const int64_t k = stat.numel();
  if (quota <= 0 || k == 0) return {};
  const auto count =
      std::min<int64_t>(k, std::max<int64_t>(1, static_cast<int64_t>(std::ceil(quota * k))));
  // Stable descending sort: ties keep the lower column first on every device.
  const auto order =
      std::get<1>(at::sort(stat.reshape({-1}).to(at::kCPU, at::kDouble), /*stable=*/true,
                           /*dim=*/0, /*descending=*/true));
  const int64_t* p = order.data_ptr<int64_t>();
  return std::vector<int64_t>(p, p + count);
}

at::Tensor awq_trial_weight(const at::Tensor& w, const at::Tensor& scales,
                            const QuantScheme& scheme) {
  auto s = scales.to(w.device(), at::kFloat).reshape({1, -1});
  return pseudo_quantize(w.to(at::kFloat) * s, scheme, GridKind::kAwq) / s;
}

at::Tensor awq_trial_weight_as(const at::Tensor& w, const at::Tensor& scales,
                               const QuantScheme& scheme, at::ScalarType dtype) {
#ifdef SQ_WITH_CUDA
  static constexpr std::array<std::pair<at::ScalarType, int>, 3> kKernelTypes = {
      {{at::kFloat, 0}, {at::kBFloat16, 1}, {at::kHalf, 2}}};
  int code = -1;
  for (const auto& [t, c] : kKernelTypes)
    if (t == dtype) code = c;
  if (w.is_cuda() && w.dim() == 2 && w.scalar_type() == dtype && code >= 0) {
    const int64_t k = w.size(1), g = scheme.group_for(k);
    SQ_REQUIRE(k % g == 0, "AWQ trial weight: group size " << g << " does not divide " << k);
    const at::Tensor wc = w.contiguous();
    const at::Tensor s = scales.to(w.device(), at::kFloat).reshape({-1}).contiguous();
    SQ_REQUIRE(s.numel() == k,
               "AWQ trial weight: " << s.numel() << " scales for " << k << " input features");
    at::Tensor out = at::empty_like(wc);
    kernel::AwqTrialArgs a;
    a.w = wc.data_ptr();
    a.s = s.data_ptr<float>();
    a.out = out.data_ptr();
    a.n_rows = wc.size(0);
    a.k = k;
    a.group = g;
    a.dtype = code;
    a.max_q = static_cast<int>(scheme.max_q());
    a.half_q = 1 << (scheme.bits - 1);
    a.zero_point = scheme.zero_point ? 1 : 0;
    const int rc = kernel::awq_trial_cuda(a, nullptr);
    if (rc != 0)
      SQ_THROW(BackendError,
               "AWQ trial-weight kernel launch failed (cudaError " << rc << ") for " << w.sizes());
    return out;
  }
#endif
  return awq_trial_weight(w, scales, scheme).to(dtype);
}

namespace {

// Math in float32, or float64 when the tensor already is (references and tests); the result is
// written back in the tensor's own dtype.
at::ScalarType work_type(const at::Tensor& t) {
  return t.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
}
at::Tensor widened(const at::Tensor& t) {
  return t.to(work_type(t));
}

void assign(at::Tensor& dst, const at::Tensor& value) {
  dst.copy_(value.to(dst.dtype()));
}

at::Tensor as_work(const at::Tensor& s, const at::Tensor& like) {
  return s.to(like.device(), work_type(like)).reshape({-1});
}

void check_len(const at::Tensor& t, int64_t dim, const at::Tensor& s, const char* what) {
  SQ_REQUIRE(t.size(dim) == s.numel(), "AWQ apply: " << what << " has " << t.size(dim)
                                                     << " features, scales have " << s.numel());
}

}  // namespace

void awq_apply_to_norm(at::Tensor& weight, at::Tensor* bias, const at::Tensor& scales,
                       NormKind kind) {
  auto s = as_work(scales, weight);
  check_len(weight, 0, s, "norm weight");
  auto w = widened(weight);
  assign(weight, kind == NormKind::kOffsetOne ? (w + 1.0) / s - 1.0 : w / s);
  if (bias && bias->defined()) {
    check_len(*bias, 0, s, "norm bias");
    assign(*bias, widened(*bias) / s);
  }
}

void awq_apply_to_prev_linear(at::Tensor& weight, at::Tensor* bias, const at::Tensor& scales) {
  auto s = as_work(scales, weight);
  const int64_t n = weight.size(0), m = s.numel();
  SQ_REQUIRE(weight.dim() == 2 && n >= m, "AWQ apply: previous linear has " << n << " output rows, "
                                                                            << "scales have " << m);
  auto rows = weight.slice(0, n - m);
  assign(rows, widened(rows) / s.unsqueeze(1));
  if (bias && bias->defined()) {
    auto b = bias->slice(0, bias->size(0) - m);
    assign(b, widened(b) / s);
  }
}

void awq_apply_to_member(at::Tensor& weight, const at::Tensor& scales) {
  auto s = as_work(scales, weight);
  check_len(weight, 1, s, "member weight");
  assign(weight, widened(weight) * s.unsqueeze(0));
}

void awq_scale_inputs(at::Tensor& x, const at::Tensor& scales) {
  auto s = as_work(scales, x);
  check_len(x, x.dim() - 1, s, "cached input");
  assign(x, widened(x) / s);
}

bool awq_clip_applies(const std::string& linear_name) {
  // AutoAWQ's exclusion list: query/key projections are never clipped (their errors are
  // amplified by the softmax).
  static constexpr std::array<const char*, 5> kNeverClipped = {"q_", "k_", "query", "key", "Wqkv"};
  for (const char* pat : kNeverClipped) {
    if (linear_name.find(pat) != std::string::npos) return false;
  }
  return true;
}

}  // namespace sq::solvers
