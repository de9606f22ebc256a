#include "common/interrupt.h"
#include "rank/model/arch.h"
#include "rank/quant/block_quant.h"

namespace sq::rank {

at::Tensor run_block(const Block& block, const at::Tensor& x, const at::Tensor& mask,
                     int64_t micro_batch, ActivationTap* tap,
                     const std::function<void(const at::Tensor&)>& on_batch) {
  const int64_t n = x.size(0), T = x.size(1);
  const int64_t mb = std::max<int64_t>(1, micro_batch);
  std::vector<at::Tensor> outs;
  bool stopped = false;
  for (int64_t b0 = 0; b0 < n; b0 += mb) {
    abandon_point();  // a stop need not wait for the block (common/interrupt.h)
    const int64_t b1 = std::min(n, b0 + mb);
    BlockContext ctx = make_context(b1 - b0, T, block.device());
    at::Tensor m;
    if (mask.defined()) {
      m = mask.slice(0, b0, b1).to(block.device());
      if (!m.all().item<bool>()) ctx.padding_mask = m;
    }
    if (on_batch) on_batch(m);
    try {
      outs.push_back(block.forward(x.slice(0, b0, b1), ctx, tap));
    } catch (const ForwardStopped&) {
      stopped = true;  // the tap has what it needs from this micro-batch
    }
  }
  if (stopped) return at::Tensor();
  return outs.size() == 1 ? outs[0] : at::cat(outs, 0);
}

std::vector<std::string> quantizable_linears(const Block& block, const io::ModelConfig& cfg,
                                             const io::ModelWeights& w, const KeepFp& keep_fp) {
  std::vector<std::string> out;
  for (const auto& ref : block_linears(cfg, w, block.index()))
    if (!keep_fp || !keep_fp(ref.name)) out.push_back(ref.name);
  return out;
}

}  // namespace sq::rank

namespace sq::rank {

void store_result(solvers::QuantizedLinear& q, ResultStore where) {
  if (where == ResultStore::kFull) return;
  // The block's linear already holds the fake-quantized weight; nobody reads dequant again.
  q.dequant = at::Tensor();
  // Codes are 0 .. 2^bits − 1 with bits ≤ 8: uint8 keeps every value and a quarter of the bytes.
  q.codes = q.codes.to(at::kByte);
  if (where == ResultStore::kCompactHost) {
    for (at::Tensor* t : {&q.codes, &q.zeros, &q.scales, &q.g_idx})
      if (t->defined()) *t = t->to(at::kCPU);
  }
}

}  // namespace sq::rank
