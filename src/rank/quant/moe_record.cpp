#include "rank/quant/moe_record.h"

#include "common/check.h"
#include "common/interrupt.h"

namespace sq::rank {

MoeRecorder::MoeRecorder(ActivationTap& inner, std::string router, bool host)
    : inner_(inner), router_(std::move(router)), host_(host) {
  SQ_CHECK(!router_.empty(), "MoeRecorder without a router linear");
}

void MoeRecorder::begin_batch(const at::Tensor& mask) {
  batches_.push_back(Batch{mask, {}, {}, {}});
}

bool MoeRecorder::wants(const std::string& linear) const {
  return linear == router_ || inner_.wants(linear);
}

void MoeRecorder::on_input(const std::string& linear, const at::Tensor& x) {
  if (linear == router_) {
    SQ_CHECK(!batches_.empty(), "MoeRecorder: begin_batch() not called");
    // Held, not copied, on the device: forward() never writes into the MoE input afterwards.
    batches_.back().x = host_ ? x.to(at::kCPU) : x;
  }
  if (inner_.wants(linear)) inner_.on_input(linear, x);
}

void MoeRecorder::on_routing(const std::string& router, const at::Tensor& experts,
                             const at::Tensor& weights) {
  if (router == router_ && !batches_.empty()) {
    batches_.back().experts = experts;
    batches_.back().weights = weights;
  }
  inner_.on_routing(router, experts, weights);
}

bool MoeRecorder::complete() const {
  for (const auto& b : batches_)
    if (!b.x.defined() || !b.experts.defined()) return false;
  return !batches_.empty();
}

void MoeRecorder::replay(const Block& block, HessianCapture& hc) const {
  SQ_CHECK(complete(), "MoeRecorder::replay: a micro-batch never reached the router " << router_);
  for (const auto& b : batches_) {
    abandon_point();  // as in run_block: a stop need not wait for the pass
    hc.begin_batch(b.mask);
    block.replay_moe_inputs(b.x.to(block.device()), b.experts, b.weights, &hc);
  }
}

}  // namespace sq::rank
