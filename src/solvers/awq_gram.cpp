// See awq_gram.h. TF32 is a process-wide cuBLAS switch: set for the ΔW·H product, restored after.
#include "solvers/awq_gram.h"

#include <algorithm>

#include "common/check.h"
#include "solvers/gram.h"
#include "solvers/tf32.h"

namespace sq::solvers {

AwqGramLoss::AwqGramLoss(const at::Tensor& x_in, int64_t chunk_rows) {
  SQ_REQUIRE(x_in.dim() >= 1 && x_in.numel() > 0, "AWQ Gram loss: no input rows");
  const at::Tensor x = x_in.reshape({-1, x_in.size(-1)});
  const int64_t k = x.size(1);
  rows_ = x.size(0);
  h_ = at::zeros({k, k}, x.options().dtype(at::kFloat));
  const int64_t step = std::max<int64_t>(1, chunk_rows);
  for (int64_t r0 = 0; r0 < rows_; r0 += step)
    h_.add_(gram_f32(x.slice(0, r0, std::min(rows_, r0 + step)), /*fast=*/true));
}

at::Tensor AwqGramLoss::loss(const at::Tensor& w_trial, const at::Tensor& w) const {
  SQ_REQUIRE(w_trial.sizes() == w.sizes() && w.dim() == 2 && w.size(1) == h_.size(0),
             "AWQ Gram loss: weights " << w_trial.sizes() << " and " << w.sizes()
                                       << " for inputs of " << h_.size(0) << " features");
  const at::Tensor d = w_trial.to(at::kFloat) - w.to(at::kFloat);
  // ΔW is not exact in TF32 (see the header); float32 GEMMs would cost as much as the forwards.
  at::Tensor dh;
  {
    const CublasTf32 tf32(true);  // cuBLAS only: a CPU product is unaffected
    dh = at::mm(d, h_);
  }
  return at::sum(dh * d, at::kDouble);
}

}  // namespace sq::solvers
