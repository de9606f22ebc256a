// See awq_batched.h. The candidates are made with the ops of awq_scale_candidates applied to all
// experts' rows at once (element-wise ops and per-row max/min: the same values bit for bit); the
// trial weights with awq_trial_weight_as per expert (its CUDA kernel); the losses with one TF32
// batched product per chunk, like AwqGramLoss's single product.
#include "solvers/awq_batched.h"

#include <algorithm>

#include "common/check.h"
#include "solvers/awq_gram.h"
#include "solvers/tf32.h"

namespace sq::solvers {
namespace {

// awq_scale_candidates of every row of xm / wm [E, K] at once.
at::Tensor candidates_rows(const at::Tensor& xm, const at::Tensor& wm, double alpha, bool duo) {
  at::Tensor s = duo ? xm.pow(alpha) / (wm.pow(1.0 - alpha) + 1e-4) : xm.pow(alpha);
  s = s.clamp_min(1e-4);
  s = s / (std::get<0>(s.max(1, true)) * std::get<0>(s.min(1, true))).sqrt();
  return at::where(at::isfinite(s), s, at::ones_like(s));
}

}  // namespace

std::vector<AwqSearchResult> awq_search_experts(const AwqExpertInputs& in, int n_grid, bool duo,
                                                const QuantScheme& scheme, at::ScalarType dtype,
                                                uint64_t chunk_bytes) {
  const size_t E = in.w.size();
  SQ_REQUIRE(n_grid > 0, "AWQ expert search: n_grid must be positive, got " << n_grid);
  SQ_REQUIRE(
      in.x.size() == E && in.x_mean.size() == E && in.w_mean.size() == E && in.names.size() == E,
      "AWQ expert search: inputs for " << E << " experts disagree in count");
  if (E == 0) return {};
  const int64_t N = in.w[0].size(0), K = in.w[0].size(1);
  for (size_t e = 0; e < E; ++e)
    SQ_REQUIRE(in.w[e].dim() == 2 && in.w[e].size(0) == N && in.w[e].size(1) == K &&
                   in.x[e].size(-1) == K && in.x[e].numel() > 0,
               "AWQ expert search: " << in.names[e] << " has weight " << in.w[e].sizes()
                                     << " and input " << in.x[e].sizes() << ", expected [" << N
                                     << ", " << K << "] and rows of " << K);
  const at::Device dev = in.w[0].device();
  const at::Tensor xm = at::stack(in.x_mean).to(dev, at::kFloat);
  const at::Tensor wm = at::stack(in.w_mean).to(dev, at::kFloat);
  std::vector<at::Tensor> cand(n_grid);  // [E, K] per α
  for (int a = 0; a < n_grid; ++a) cand[a] = candidates_rows(xm, wm, double(a) / n_grid, duo);

  // Per expert: weights, trial weights, ΔW and ΔW·H in float32, plus H.
  const uint64_t per_expert = 4 * uint64_t(N) * K * sizeof(float) + uint64_t(K) * K * sizeof(float);
  const size_t chunk = std::max<size_t>(1, std::min<size_t>(E, chunk_bytes / per_expert));
  at::Tensor losses =
      at::empty({n_grid, static_cast<int64_t>(E)}, at::TensorOptions(at::kDouble).device(dev));
  std::vector<double> rows(E);
  for (size_t e0 = 0; e0 < E; e0 += chunk) {
    const size_t e1 = std::min(E, e0 + chunk);
    std::vector<at::Tensor> hs, ws;
    for (size_t e = e0; e < e1; ++e) {
      const AwqGramLoss g(in.x[e]);
      rows[e] = static_cast<double>(g.rows());
      hs.push_back(g.gram());
      ws.push_back(in.w[e]);
    }
    const at::Tensor H = at::stack(hs);  // [c, K, K]
    hs.clear();
    const at::Tensor W = at::stack(ws).to(at::kFloat);  // [c, N, K]
    for (int a = 0; a < n_grid; ++a) {
      std::vector<at::Tensor> trial;
      for (size_t e = e0; e < e1; ++e)
        trial.push_back(awq_trial_weight_as(in.w[e], cand[a][e], scheme, dtype));
      const at::Tensor D = at::stack(trial).to(at::kFloat) - W;
      trial.clear();
      at::Tensor DH;
      {
        const CublasTf32 tf32(true);  // as AwqGramLoss::loss
        DH = at::bmm(D, H);
      }
      losses[a].slice(0, e0, e1).copy_(at::sum(DH * D, {1, 2}, false, at::kDouble));
    }
  }
  const at::Tensor host = losses.cpu().contiguous();  // one read-back for the whole search
  const double* p = host.data_ptr<double>();
  std::vector<AwqSearchResult> out(E);
  for (size_t e = 0; e < E; ++e) {
    AwqSearchResult& r = out[e];
    const double n_elements = rows[e] * static_cast<double>(N);
    for (int a = 0; a < n_grid; ++a) {
      r.losses.push_back(p[a * E + e] / n_elements);
      r.alphas.push_back(double(a) / n_grid);
    }
    r.best_index = awq_pick_best(r.losses, in.names[e]);
    r.best_alpha = r.alphas[r.best_index];
    r.best_loss = r.losses[r.best_index];
    r.scales = cand[r.best_index][e].clone();
  }
  return out;
}

}  // namespace sq::solvers
