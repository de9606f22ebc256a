// The per-block step of every quantization run (issue 18 point 1), written once: build the block,
// capture and solve it (AWQ or GPTQ), export it, report it, back off on out-of-memory, prefetch
// the next block, log the block line with its ETA. A single process (world 1) and both
// --parallel modes call it; the modes only decide which blocks a rank steps through and where
// its input comes from.
//
// CONTRACT
//   * BlockWorker::step(i, a, next, built) quantizes block i on the calibration activations `a`
//     (its input; replaced by the next block's input on return), hands the exported tensors of
//     the block to the sink (when there is one) and returns the block's result without tensors
//     (reports, notes, phase_seconds; `quantized` empty, `next_input` undefined) with the
//     seconds the whole step took.
//   * `built` (optional): block i already built on the device with unchanged weights (the FP
//     stream of --parallel blocks built it); the first attempt uses it, a retry rebuilds.
//   * `next` ≥ 0: the block this rank steps through after i; its tensors are paged in while i is
//     solved (rank/worker/prefetch.h).
//   * Out of memory (a CUDA OOM, or the --gpu-mem-limit estimate above its limit): the block is
//     rebuilt and retried with halved sequences (rank/worker/oom.h); the shorter seq_len stays in
//     `a`. With a Reducer of more than one rank (--parallel data) the ranks' solves are collective,
//     so the estimate is checked by every rank and the halving agreed (all halve when any rank
//     is over); a real OOM there cannot be retried by one rank alone and fails the block as a
//     BackendError instead.
//   * Every solve uses micro-batches of micro_batch_for(settings.micro_batch, seq_len).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "io/model/model_config.h"
#include "io/model/model_weights.h"
#include "rank/quant/block_export.h"
#include "rank/quant/block_quant.h"
#include "rank/transport/reduce.h"
#include "rank/worker/oom.h"
#include "rank/worker/prefetch.h"

namespace sq::rank {

struct StepSettings {
  bool awq = true;  // else GPTQ
  AwqSettings awq_settings;
  GptqSettings gptq_settings;
  KeepFp keep_fp;
  ExportOptions export_opts;
  int64_t micro_batch = 0;            // --micro-batch; 0 = 16384 tokens' worth at the seq_len
  uint64_t gpu_mem_limit_bytes = 0;   // --gpu-mem-limit; 0 = none
  std::vector<std::string> prefixes;  // every block's prefix (for the prefetch)
  // Whether the next block's input is this block's full-precision output (else the quantized one).
  bool propagate_fp() const { return awq ? awq_settings.propagate_fp : gptq_settings.propagate_fp; }
};

// Halves a's sequences (halve_sequences) until its seq_len is at most `seq_len`.
void halve_to(CalibActivations& a, int64_t seq_len);

// Samples per forward micro-batch: `requested` when > 0, else 16384 tokens' worth; at least 1.
int64_t micro_batch_for(int64_t requested, int64_t seq_len);
double mean_error(const BlockQuantResult& r);

// What the worker spent its time on, summed over its blocks (seconds).
struct WorkerTimes {
  double blocks = 0;      // whole steps
  double load = 0;        // building blocks on the device
  double quant_only = 0;  // the solves alone
  double export_ = 0;     // packing + handing tensors to the sink
};

// Receives the exported tensors of block `index` (the rank's fragment writer).
using BlockSink = std::function<void(int64_t index, NamedTensors&& tensors,
                                     const std::vector<std::string>& unpacked_qzeros)>;

struct StepResult {
  BlockQuantResult result;
  double seconds = 0;
};

class BlockWorker {
 public:
  // `blocks_here`: how many blocks this rank steps through (for the ETA); `reducer`: --parallel
  // data, else nullptr; `sink`: null on a rank that does not export (data mode, rank > 0).
  BlockWorker(StepSettings settings, const io::ModelWeights& w, const io::ModelConfig& cfg,
              at::Device dev, at::ScalarType dtype, int64_t blocks_here,
              const Reducer* reducer = nullptr, BlockSink sink = {});

  StepResult step(int64_t i, CalibActivations& a, int64_t next = -1,
                  std::unique_ptr<Block> built = nullptr);

  const WorkerTimes& times() const { return times_; }
  int64_t micro_batch(int64_t seq_len) const { return micro_batch_for(s_.micro_batch, seq_len); }

 private:
  BlockQuantResult solve(Block& block, const CalibActivations& a);
  void check_memory(const CalibActivations& a, int64_t i) const;

  StepSettings s_;
  const io::ModelWeights& w_;
  const io::ModelConfig& cfg_;
  at::Device dev_;
  at::ScalarType dtype_;
  int64_t blocks_here_;
  const Reducer* reducer_;
  BlockSink sink_;
  BlockPrefetcher prefetcher_;
  WorkerTimes times_;
  int64_t done_ = 0;
};

}  // namespace sq::rank
