// Architecture queries used by the planner and the workers.
//
// CONTRACT (stable API; the implementation becomes table-driven from ArchSpec rows):
//   block_prefix(cfg, i)          "model.layers.3" (family-specific: "transformer.h.3" for gpt2 …)
//   block_linears(cfg, w, i)      the quantizable linears of block i, in GPTQ solve order, each
//                                 with its checkpoint tensor prefix and [out, in] shape. Routers
//                                 and anything else never quantized are excluded.
//   non_block_tensors(cfg, w)     every tensor that is not inside a block (embeddings, final norm,
//                                 lm_head), kept in floating point.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/model_config.h"
#include "io/model_weights.h"

namespace sq::rank {

struct LinearRef {
  std::string name;  // tensor prefix, e.g. "model.layers.0.self_attn.q_proj" (+ ".weight")
  int64_t out_features = 0;
  int64_t in_features = 0;
  bool transposed = false;  // stored [in, out] (GPT-2 Conv1D)
};

std::string block_prefix(const io::ModelConfig& cfg, int64_t block);
std::vector<LinearRef> block_linears(const io::ModelConfig& cfg, const io::ModelWeights& w,
                                     int64_t block);
std::vector<std::string> non_block_tensors(const io::ModelConfig& cfg, const io::ModelWeights& w);

}  // namespace sq::rank
