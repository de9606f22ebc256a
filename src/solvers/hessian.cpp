// HessianAccumulator: raw Σ x xᵀ with a token count. Scaling happens once, in finalize(), so
// that sums from several batches or ranks combine exactly before the 2/N factor is applied.
#include "common/check.h"
#include "solvers/cpu_tiles.h"
#include "solvers/gptq.h"
#include "solvers/gram.h"

namespace sq::solvers {

HessianAccumulator::HessianAccumulator(int64_t in_features, at::Device device) : k_(in_features) {
  // The running sum is float64 everywhere. On CPU the GEMMs are float64 too (cheap there; no
  // accumulation error over ~10^5 tokens). On a GPU each batch's Σ x xᵀ is a float32 tensor-core
  // product (solvers/gram.h; exact products for bf16/fp16 inputs) and only the running sum is
  // float64: adding float32 values in float64 is exact for entries of comparable size, so the total
  // no longer depends on the order in which batches (or data-parallel ranks' partial sums) arrive —
  // a float32 running sum does, and GPTQ with quantized propagation amplifies that last-bit
  // difference into different codes.
  sum_ = at::zeros({k_, k_}, at::TensorOptions().dtype(at::kDouble).device(device));
}

void HessianAccumulator::add(const at::Tensor& x, const at::Tensor& mask) {
  SQ_CHECK(sum_.defined(), "HessianAccumulator used before construction");
  SQ_REQUIRE(x.dim() >= 1 && x.size(-1) == k_, "Hessian input: expected last dimension "
                                                   << k_ << " (in_features), got "
                                                   << (x.dim() ? x.size(-1) : 0));
  auto rows = x.reshape({-1, k_});
  if (mask.defined()) {
    auto m = mask.reshape({-1}).to(rows.device());
    SQ_REQUIRE(m.size(0) == rows.size(0),
               "Hessian mask: expected " << rows.size(0) << " tokens, got " << m.size(0));
    rows = rows.index_select(0, at::nonzero(m != 0).reshape({-1}));
  }
  if (rows.size(0) == 0) return;
  if (work_type() == at::kDouble) {
    auto xr = rows.to(sum_.device(), at::kDouble);
    tiles::gram_add_(sum_, xr);  // CPU: fixed tiles of rows of the sum, any thread count
  } else {
    sum_.add_(gram_f32(rows.to(sum_.device()), /*fast=*/false));
  }
  tokens_ += rows.size(0);
}

void HessianAccumulator::merge(const HessianAccumulator& other) {
  SQ_REQUIRE(other.k_ == k_, "Hessian merge: in_features " << k_ << " vs " << other.k_);
  sum_.add_(other.sum_.to(sum_.device(), sum_.scalar_type()));
  tokens_ += other.tokens_;
}

at::Tensor HessianAccumulator::finalize() const {
  SQ_CHECK(tokens_ > 0,
           "Hessian finalize: no calibration token was added (in_features " << k_ << ")");
  return (sum_ * (2.0 / static_cast<double>(tokens_))).to(work_type());
}

}  // namespace sq::solvers
