// The per-rank side of --parallel blocks (issue 6 point 3): activations stream between
// neighbouring ranks in micro-batches, so rank r runs the full-precision forward of its blocks on
// micro-batch k while rank r−1 already computes micro-batch k+1.
//
// CONTRACT
//   * A micro-batch is samples [b0, b1) with b0 = k·micro_batch — the same boundaries the
//     single-process run uses for embedding and run_block, so every activation is bit-identical to
//     a single-process run with the same thread count.
//   * recv_activations / send_activations move one [n, T, hidden] tensor between two ranks, one
//     message per micro-batch (tag = kActivationTag + k), in order; both sides must agree on
//     n, T, hidden, dtype (a mismatch is the transport's BackendError).
//   * stream_fp runs `blocks` (in order, weights unchanged) over every micro-batch that `source`
//     yields, hands each output micro-batch to `sink` as soon as it is computed, and returns the
//     input of every block, concatenated over micro-batches ([n, T, hidden] each).
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <vector>

#include "rank/model/block.h"
#include "rank/transport/transport.h"

namespace sq::rank {

constexpr int kActivationTag = 1000;

struct StreamShape {
  int64_t n = 0, T = 0, hidden = 0;
  int64_t micro_batch = 1;
  at::ScalarType dtype = at::kFloat;
  at::Device device = at::Device(at::kCPU);
  at::Tensor mask;  // [n, T] bool on `device`, or undefined (no padding)
};

// Micro-batch k covers samples [first, last).
struct MicroBatch {
  int64_t k = 0, first = 0, last = 0;
};
std::vector<MicroBatch> micro_batches(const StreamShape& s);

at::Tensor recv_activations(Transport& t, int src, const StreamShape& s, const MicroBatch& mb);
void send_activations(Transport& t, int dst, const at::Tensor& x, const MicroBatch& mb);

using MicroSource = std::function<at::Tensor(const MicroBatch&)>;
using MicroSink = std::function<void(const MicroBatch&, const at::Tensor&)>;

std::vector<at::Tensor> stream_fp(const std::vector<Block*>& blocks, const StreamShape& s,
                                  const MicroSource& source, const MicroSink& sink);

// The whole [n, T, hidden] input from `source`, micro-batch after micro-batch (the relay of
// GPTQ with quantized propagation: the previous rank's quantized output).
at::Tensor collect(const StreamShape& s, const MicroSource& source);

}  // namespace sq::rank
