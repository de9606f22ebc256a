// Streaming keeps the pipeline full: a rank forwards each micro-batch downstream before computing
// the next one, so with R ranks all of them work at once after R−1 micro-batches of fill.
#include "rank/worker/worker.h"

#include "common/check.h"
#include "rank/quant/block_quant.h"

namespace sq::rank {

std::vector<MicroBatch> micro_batches(const StreamShape& s) {
  std::vector<MicroBatch> out;
  const int64_t mb = std::max<int64_t>(1, s.micro_batch);
  for (int64_t b0 = 0, k = 0; b0 < s.n; b0 += mb, ++k)
    out.push_back({k, b0, std::min(s.n, b0 + mb)});
  return out;
}

at::Tensor recv_activations(Transport& t, int src, const StreamShape& s, const MicroBatch& mb) {
  at::Tensor x = at::empty({mb.last - mb.first, s.T, s.hidden},
                           at::TensorOptions().dtype(s.dtype).device(t.device()));
  t.recv(x, src, kActivationTag + static_cast<int>(mb.k));
  return x.to(s.device);
}

void send_activations(Transport& t, int dst, const at::Tensor& x, const MicroBatch& mb) {
  t.send(x.contiguous(), dst, kActivationTag + static_cast<int>(mb.k));
}

std::vector<at::Tensor> stream_fp(const std::vector<Block*>& blocks, const StreamShape& s,
                                  const MicroSource& source, const MicroSink& sink) {
  std::vector<std::vector<at::Tensor>> inputs(blocks.size());
  for (const auto& mb : micro_batches(s)) {
    at::Tensor x = source(mb);
    SQ_CHECK(x.size(0) == mb.last - mb.first, "micro-batch " << mb.k << ": expected "
                                                             << mb.last - mb.first
                                                             << " samples, got " << x.size(0));
    at::Tensor m = s.mask.defined() ? s.mask.slice(0, mb.first, mb.last) : at::Tensor();
    for (size_t i = 0; i < blocks.size(); ++i) {
      inputs[i].push_back(x);
      // One micro-batch per call: the same boundaries as the single-process run_block.
      x = run_block(*blocks[i], x, m, mb.last - mb.first);
    }
    if (sink) sink(mb, x);
  }
  std::vector<at::Tensor> out;
  for (auto& parts : inputs) out.push_back(parts.size() == 1 ? parts[0] : at::cat(parts, 0));
  return out;
}

at::Tensor collect(const StreamShape& s, const MicroSource& source) {
  std::vector<at::Tensor> parts;
  for (const auto& mb : micro_batches(s)) parts.push_back(source(mb));
  return parts.size() == 1 ? parts[0] : at::cat(parts, 0);
}

}  // namespace sq::rank
