// Shape rules: the shape config.json implies for a tensor of an ArchSpec row, by role.
//
// CONTRACT (used by the planner's shape check and by the synthetic-model writer, so that what
// `synth` writes is exactly what the planner accepts):
//   implied_shape(cfg, role, block)  the stored shape of the role's weight in block `block`
//       (Conv1D rows transposed: [in, out]) with the config values that imply it, or nullopt
//       when no rule covers the role there. Model-level roles: "embed", "lm_head", "pos_embed".
//       Covered: q, k, v (separate attention), qkv (fused), o (any attention), gate, up,
//       gate_up, down (a dense MLP block: never an MoE block's), router, expert_gate/up/down
//       (one shape for every expert of an MoE block; the row's name holds "{e}"), shared_gate/
//       up/down and shared_expert_gate (when the config has a shared expert), the MLA
//       projections q_a, q_b (with q_lora_rank) or q_proj (without), kv_a, kv_b, the embeddings
//       and lm_head. Not covered (the planner checks them only generically): norms, biases,
//       router_bias, fused expert tensors.
//   shaped_roles(spec)  the roles of `spec` for which some block may have a rule, in the order
//       the planner checks them (embed, block linears, lm_head, pos_embed). Every row has at
//       least the embedding's.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "io/model/model_config.h"
#include "rank/model/arch_table.h"

namespace sq::rank {

struct ImpliedShape {
  std::vector<int64_t> shape;  // as stored
  std::string why;             // "num_attention_heads × head_dim 32, hidden_size 32"
};

std::optional<ImpliedShape> implied_shape(const io::ModelConfig& cfg, const std::string& role,
                                          int64_t block);
std::vector<std::string> shaped_roles(const ArchSpec& spec);

// Full tensor name of a model-level role ("embed" → spec.embed, …; "" when the row has none).
std::string model_tensor(const ArchSpec& spec, const std::string& role);

}  // namespace sq::rank
