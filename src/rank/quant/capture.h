// Activation taps used by the quantization pipeline (DESIGN.md §1 step 3).
//
// CONTRACT
//   InputCapture   keeps the input of every wanted linear over all micro-batches, concatenated
//                  along the token dimension into [tokens, in] on the block's device (dense
//                  linears: all B·T tokens in sample order, padding included, so the caller can
//                  view it as [n, T, in] and mask it itself). Linears fed the same tensor (q,k,v;
//                  gate,up) share ONE stored tensor (so scaling it in place scales it for all of
//                  them). MoE expert inputs are the routed tokens only. piece_rows(name) gives
//                  the rows each micro-batch contributed, in order (sums that must not depend on
//                  how samples are grouped — data-parallel shares — are taken piece by piece).
//   HessianCapture adds every wanted linear's input to the solvers::HessianAccumulator of its
//                  input set (linears sharing an input share one accumulator), masking padding.
#pragma once

#include <ATen/ATen.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "rank/model/block.h"
#include "solvers/gptq.h"

namespace sq::rank {

class InputCapture : public ActivationTap {
 public:
  // Empty `wanted` = every linear.
  explicit InputCapture(std::set<std::string> wanted = {}) : wanted_(std::move(wanted)) {}
  bool wants(const std::string& linear) const override;
  void on_input(const std::string& linear, const at::Tensor& x) override;
  // Call before each micro-batch forward.
  void begin_batch();
  // Concatenates the micro-batches. After this, input(name) returns [tokens, in].
  void finish();
  bool has(const std::string& linear) const { return slot_of_.count(linear) != 0; }
  at::Tensor& input(const std::string& linear);
  // Rows of input(linear) per micro-batch, in order (they sum to input(linear).size(0)); a
  // micro-batch that routed no token to an expert contributes no entry.
  const std::vector<int64_t>& piece_rows(const std::string& linear) const;

 private:
  std::set<std::string> wanted_;
  // Within one micro-batch, the same tensor object (data pointer) seen for several linears maps
  // to one slot; slots hold the per-micro-batch pieces, then the concatenation.
  // The tensor is held so its memory cannot be reused by another activation in the same batch.
  struct Seen {
    size_t slot;
    at::Tensor x;
  };
  std::map<const void*, Seen> batch_ptr_slot_;
  std::map<std::string, size_t> slot_of_;
  std::vector<std::vector<at::Tensor>> pieces_;
  std::vector<at::Tensor> joined_;
  std::vector<std::vector<int64_t>> piece_rows_;
};

class HessianCapture : public ActivationTap {
 public:
  // input_sets: each inner list shares one input (and one Hessian).
  HessianCapture(const std::vector<std::vector<std::string>>& input_sets,
                 const std::map<std::string, int64_t>& in_features, at::Device device);
  bool wants(const std::string& linear) const override { return set_of_.count(linear) != 0; }
  void on_input(const std::string& linear, const at::Tensor& x) override;
  // Call before each micro-batch forward with its [B,T] bool mask of real tokens (undefined =
  // all real); padding never enters a Hessian.
  void begin_batch(const at::Tensor& mask) {
    mask_ = mask;
    seen_.assign(acc_.size(), false);
    n_seen_ = 0;
  }
  // stop_early: done() once every set has received this micro-batch's input, so the rest of
  // the forward is skipped (used when the block output is not needed). A set that sees no
  // input in a forward (an expert no token was routed to) simply keeps done() false.
  void set_stop_early(bool on) { stop_early_ = on; }
  bool done() const override { return stop_early_ && n_seen_ == acc_.size(); }
  solvers::HessianAccumulator& accumulator(const std::string& linear);

 private:
  std::map<std::string, size_t> set_of_;
  std::vector<std::string> first_;  // the linear whose input feeds each set's accumulator
  std::vector<solvers::HessianAccumulator> acc_;
  at::Tensor mask_;
  bool stop_early_ = false;
  std::vector<bool> seen_;  // per set, in the current micro-batch
  size_t n_seen_ = 0;
};

}  // namespace sq::rank
