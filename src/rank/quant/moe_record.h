// MoeRecorder: what an MoE block's own linears compute their inputs from, recorded once per
// forward so that later Hessian passes need no block forward (GPTQ, block_gptq.cpp).
//
// CONTRACT
//   Wraps the tap of one run_block() forward (`inner` need outlive only that forward; replay()
//   does not use it): every call passes through to `inner` unchanged
//   (wants, on_input, done, on_routing, weight_for), and in addition, per micro-batch, the
//   recorder keeps the mask given to begin_batch(), the MoE input the router is tapped with
//   ([B,T,H], as forward() made it) and the routing (experts [N,k], weights [N,k]).
//   begin_batch(mask): call at the start of each micro-batch (run_block's on_batch).
//   complete(): every recorded micro-batch reached the router (its input and routing were seen).
//   replay(block, hc): for each micro-batch in order, hc.begin_batch(its mask) then
//   block.replay_moe_inputs(...): hc's accumulators receive, set by set and micro-batch by
//   micro-batch, the same tensors a forward of `block` (with its current weights) would feed
//   them — valid while nothing upstream of the MoE input (attention, norms, router) has changed
//   since the recording. hc must not stop early. InternalError unless complete().
//   host = true keeps the MoE inputs in host memory (copied back to the block's device per
//   micro-batch at replay: a copy changes no bit); false keeps them where the forward made them.
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "rank/model/block.h"
#include "rank/quant/capture.h"

namespace sq::rank {

class MoeRecorder : public ActivationTap {
 public:
  MoeRecorder(ActivationTap& inner, std::string router, bool host);
  void begin_batch(const at::Tensor& mask);
  bool wants(const std::string& linear) const override;
  void on_input(const std::string& linear, const at::Tensor& x) override;
  bool done() const override { return inner_.done(); }
  void on_routing(const std::string& router, const at::Tensor& experts,
                  const at::Tensor& weights) override;
  at::Tensor weight_for(const Linear& l) const override { return inner_.weight_for(l); }

  bool complete() const;
  void replay(const Block& block, HessianCapture& hc) const;

 private:
  struct Batch {
    at::Tensor mask, x, experts, weights;
  };
  ActivationTap& inner_;
  std::string router_;
  bool host_;
  std::vector<Batch> batches_;
};

}  // namespace sq::rank
