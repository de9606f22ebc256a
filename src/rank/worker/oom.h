// OOM-aware calibration (issue 7): when a block runs out of GPU memory — a real CUDA OOM, or
// the --gpu-mem-limit estimate below exceeding its limit — the block is retried with the
// calibration split into shorter sequences: [n, T, H] → [2n, T/2, H] (mask likewise), seq_len
// halved each time down to kMinSeqLen; below that the run fails with a BackendError (exit 3).
// The shorter seq_len stays for the rest of the run.
//
// Memory estimate of one block at seq_len T (bytes; e = element size of the compute dtype,
// B = micro-batch samples, n = samples, hd = head_dim, nq/nkv = query/KV heads):
//   weights     e·(H·(nq+2·nkv)·hd + nq·hd·H + 3·H·I)            block weights on the device
//   activations 2·e·n·T·H                                        block input + next input
//   captures    AWQ: e·n·T·(2H + nq·hd + I) (every linear's input kept for the search)
//               GPTQ: 8·(2H² + (nq·hd)² + I² + max_in²) (float64 Hessian sums + one
//               set's float32 product and finalized H)
//   working     B·T·e·((nq+2·nkv)·hd + 3·I + 4·H) + 4·B·nq·T²     projections, MLP, fp32 scores
// The T² attention term is what halving T (at constant B·T) reduces.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <exception>
#include <functional>
#include <string>

#include "common/errors.h"
#include "io/model/model_config.h"
#include "rank/device/device.h"

namespace sq::rank {

constexpr int64_t kMinSeqLen = 64;

// Thrown when the estimate exceeds --gpu-mem-limit; treated exactly like a CUDA OOM.
class MemoryLimitExceeded : public BackendError {
 public:
  using BackendError::BackendError;
};

// A CUDA out-of-memory error (c10::OutOfMemoryError in LibTorch 2.x, c10::Error with "out of
// memory" in 1.13), std::bad_alloc is NOT one (host memory), or MemoryLimitExceeded.
bool is_out_of_memory(const std::exception& e);

struct MemoryEstimateInput {
  int64_t samples = 0, seq_len = 0, micro_batch = 1;
  bool awq = true;
  at::ScalarType dtype = at::kFloat;
};
uint64_t estimate_block_bytes(const io::ModelConfig& cfg, const MemoryEstimateInput& in);
// Throws MemoryLimitExceeded naming the estimate, the limit and seq_len when limit > 0 and the
// estimate exceeds it.
void check_memory_limit(uint64_t limit_bytes, const io::ModelConfig& cfg,
                        const MemoryEstimateInput& in, int64_t block_index);

// The calibration state the block loop carries from block to block.
struct CalibActivations {
  at::Tensor x;     // [n, T, H]
  at::Tensor mask;  // [n, T] bool or undefined (no padding)
  int64_t samples() const { return x.size(0); }
  int64_t seq_len() const { return x.size(1); }
};
// [n, T, H] → [2n, T/2, H] (an odd last position is dropped); the mask follows.
void halve_sequences(CalibActivations& a);

// Runs attempt(a) and, on an out-of-memory error, frees the device cache, halves a's sequences
// and tries again; on_halve(old_T, new_T, what) is called before each retry. BackendError once
// T/2 < kMinSeqLen, naming the block, the last seq_len and the error.
template <typename Result>
Result with_seq_len_backoff(
    CalibActivations& a, int64_t block_index, const at::Device& dev,
    const std::function<Result(const CalibActivations&)>& attempt,
    const std::function<void(int64_t, int64_t, const std::string&)>& on_halve);

}  // namespace sq::rank

#include "rank/worker/oom_impl.h"
