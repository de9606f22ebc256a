// See awq_gram.h. TF32 is a process-wide cuBLAS switch: set for each product, restored after.
#include "solvers/awq_gram.h"

#include <algorithm>

#include "common/check.h"

namespace sq::solvers {
namespace {

class Tf32Scope {
 public:
  explicit Tf32Scope(bool on) : on_(on) {
    if (!on_) return;
    saved_ = at::globalContext().allowTF32CuBLAS();
    at::globalContext().setAllowTF32CuBLAS(true);
  }
  ~Tf32Scope() {
    if (on_) at::globalContext().setAllowTF32CuBLAS(saved_);
  }
  Tf32Scope(const Tf32Scope&) = delete;
  Tf32Scope& operator=(const Tf32Scope&) = delete;

 private:
  bool on_;
  bool saved_ = false;
};

}  // namespace

AwqGramLoss::AwqGramLoss(const at::Tensor& x_in, int64_t chunk_rows) {
  SQ_REQUIRE(x_in.dim() >= 1 && x_in.numel() > 0, "AWQ Gram loss: no input rows");
  const at::Tensor x = x_in.reshape({-1, x_in.size(-1)});
  const int64_t k = x.size(1);
  rows_ = x.size(0);
  h_ = at::zeros({k, k}, x.options().dtype(at::kFloat));
  // bf16/fp16 values are exact in TF32, so only the accumulation differs from an fp32 GEMM.
  const bool half_inputs = x.scalar_type() == at::kBFloat16 || x.scalar_type() == at::kHalf;
  Tf32Scope tf32(x.is_cuda() && half_inputs);
  const int64_t step = std::max<int64_t>(1, chunk_rows);
  for (int64_t r0 = 0; r0 < rows_; r0 += step) {
    const at::Tensor c = x.slice(0, r0, std::min(rows_, r0 + step)).to(at::kFloat);
    h_.addmm_(c.t(), c);
  }
}

at::Tensor AwqGramLoss::loss(const at::Tensor& w_trial, const at::Tensor& w) const {
  SQ_REQUIRE(w_trial.sizes() == w.sizes() && w.dim() == 2 && w.size(1) == h_.size(0),
             "AWQ Gram loss: weights " << w_trial.sizes() << " and " << w.sizes()
                                       << " for inputs of " << h_.size(0) << " features");
  const at::Tensor d = w_trial.to(at::kFloat) - w.to(at::kFloat);
  Tf32Scope tf32(d.is_cuda());
  const at::Tensor dh = at::mm(d, h_);
  return at::sum(dh * d, at::kDouble);
}

}  // namespace sq::solvers
