// Architecture queries used by the planner and the workers.
//
// CONTRACT (stable API; the implementation becomes table-driven from ArchSpec rows):
//   block_prefix(cfg, i)          "model.layers.3" (family-specific: "transformer.h.3" for gpt2 …)
//   block_linears(cfg, w, i)      the quantizable linears of block i, in GPTQ solve order, each
//                                 with its checkpoint tensor prefix and [out, in] shape. Routers
//                                 and anything else never quantized are excluded.
//   non_block_tensors(cfg, w)     every tensor that is not inside a block (embeddings, final norm,
//                                 lm_head), kept in floating point.
//   never_quantized_linears(cfg, w)  the linear modules no option quantizes, by module name (the
//                                 tensor prefix, as transformers' named_modules() spells it),
//                                 sorted: the output head (the row's lm_head; a module even when
//                                 tied to the embedding and absent from the checkpoint) and, in
//                                 every block, each linear role that block_linears() leaves out
//                                 (MoE routers, shared-expert gates, ...); for a multimodal
//                                 checkpoint also every 2-D "<M>.weight" outside the language
//                                 model (vision tower, projector: module <M>).
//   fused_linear_sets(cfg, w, i)  sets of block i's quantizable linears that runtimes load as one
//                                 layer, so a checkpoint must quantize all or none of a set: each
//                                 set sharing one input (q,k,v → vLLM's qkv_proj; gate,up →
//                                 gate_up_proj; q_a,kv_a → fused_qkv_a_proj; an expert's gate,up)
//                                 and, in an MoE block, all routed-expert linears (one
//                                 fused-experts layer). Sets of one linear are not listed.
//   experts_module(cfg, i)        the module holding block i's routed experts
//                                 ("model.layers.3.mlp.experts"); "" for a dense block.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/model/model_config.h"
#include "io/model/model_weights.h"

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
std::vector<std::string> never_quantized_linears(const io::ModelConfig& cfg,
                                                 const io::ModelWeights& w);
std::vector<std::vector<std::string>> fused_linear_sets(const io::ModelConfig& cfg,
                                                        const io::ModelWeights& w, int64_t block);
std::string experts_module(const io::ModelConfig& cfg, int64_t block);

}  // namespace sq::rank
