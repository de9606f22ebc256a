// OOM detection, the memory estimate and the sequence split (oom.h). LibTorch 1.13 and 2.x
// name the CUDA OOM differently (2.x: c10::OutOfMemoryError, a c10::Error), so the message is
// the common ground: the caching allocator's text always contains "out of memory".
#include "rank/worker/oom.h"

#include <c10/util/Exception.h>

#include <algorithm>
#include <sstream>

#include "common/check.h"

namespace sq::rank {

bool is_out_of_memory(const std::exception& e) {
  if (dynamic_cast<const MemoryLimitExceeded*>(&e)) return true;
  if (!dynamic_cast<const c10::Error*>(&e)) return false;
  const std::string msg = e.what();
  return msg.find("out of memory") != std::string::npos ||
         msg.find("CUDA_ERROR_OUT_OF_MEMORY") != std::string::npos;
}

uint64_t estimate_block_bytes(const io::ModelConfig& c, const MemoryEstimateInput& in) {
  const double e = static_cast<double>(c10::elementSize(in.dtype));
  const double H = c.hidden_size, I = c.intermediate_size, hd = c.head_dim;
  const double nq = c.num_attention_heads, nkv = c.num_key_value_heads;
  const double n = in.samples, T = in.seq_len, B = std::min(in.micro_batch, in.samples);
  const double weights = e * (H * (nq + 2 * nkv) * hd + nq * hd * H + 3 * H * I);
  const double acts = 2 * e * n * T * H;
  // GPTQ: float64 Hessian sums of the block's input sets, plus one set's float32 per-batch product
  // and finalized H (solvers/gptq.h).
  const double max_in = std::max({H, nq * hd, I});
  const double captures = in.awq ? e * n * T * (2 * H + nq * hd + I)
                                 : 8 * (2 * H * H + nq * hd * nq * hd + I * I + max_in * max_in);
  const double working = B * T * e * ((nq + 2 * nkv) * hd + 3 * I + 4 * H) + 4 * B * nq * T * T;
  return static_cast<uint64_t>(weights + acts + captures + working);
}

void check_memory_limit(uint64_t limit, const io::ModelConfig& cfg, const MemoryEstimateInput& in,
                        int64_t block_index) {
  if (limit == 0) return;
  const uint64_t need = estimate_block_bytes(cfg, in);
  if (need <= limit) return;
  std::ostringstream os;
  os << "block " << block_index << ": estimated memory " << need << " bytes at seq_len "
     << in.seq_len << " (" << in.samples << " samples, micro-batch " << in.micro_batch
     << ") exceeds --gpu-mem-limit " << limit << " bytes: out of memory";
  throw MemoryLimitExceeded(os.str());
}

void halve_sequences(CalibActivations& a) {
  const int64_t n = a.x.size(0), t = a.x.size(1), half = t / 2;
  SQ_CHECK(half > 0, "halve_sequences: seq_len " << t << " cannot be halved");
  a.x = a.x.slice(1, 0, 2 * half).contiguous().view({2 * n, half, a.x.size(2)});
  if (a.mask.defined()) a.mask = a.mask.slice(1, 0, 2 * half).contiguous().view({2 * n, half});
}

}  // namespace sq::rank
