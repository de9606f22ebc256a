// The architecture table: one ArchSpec row per supported HF model_type (arch_table.cpp).
//
// CONTRACT (stable API for the block code, the planner and the AWQ/GPTQ pipeline):
//   arch_spec(model_type)   the row; InputError naming the supported types when absent.
//   arch_specs()            every row, sorted by model_type: the one list of supported
//                           architectures (config parsing, shape rules and synth derive theirs).
//   load_model_config(path) io::load_model_config(), refusing (InputError naming the file, the
//   parse_model_config(j,o) model_type and the supported ones) a model_type without a row.
//   awq_groups(...)         the AWQ scaling groups of one block, expanded to full tensor
//                           prefixes (experts enumerated, conditions evaluated on the shapes).
//   gptq_steps(...)         the true-sequential GPTQ steps of one block; each step lists sets of
//                           linears that share one input (and therefore one Hessian).
// Names in a row are relative to the block prefix ("self_attn.q_proj"); "{e}" stands for an
// expert index. Per-checkpoint traits (biases, head_dim, rope, sliding window, parallel residual
// switches) come from config.json, never from the row; the row's checkpoint-layout columns
// (qkv_bias, qk_norm) say only what a family's checkpoints hold where config.json is silent.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "io/model/model_config.h"
#include "io/model/model_weights.h"

namespace sq::rank {

enum class BlockFamily { Decoder, ParallelResidual, Moe, Mla };
// Rms: x·rsqrt(mean x²+eps)·w (fp32). RmsPlusOne: ·(1+w) (Gemma). LayerNorm: with optional bias.
// LayerNormNoBias: mean-centred, weight only (Cohere).
enum class NormKind { Rms, RmsPlusOne, LayerNorm, LayerNormNoBias };
enum class Activation { Silu, GeluTanh, GeluErf, Relu };
// PreNorm: h = x + attn(n1 x); y = h + mlp(n2 h).
// Sandwich (gemma2/3): h = x + pn1(attn(n1 x)); y = h + pn2(mlp(n2 h)).
// PostNorm (olmo2): h = x + pn1(attn x); y = h + pn2(mlp h).
// ParallelShared (cohere, old falcon): y = x + attn(n1 x) + mlp(n1 x).
// ParallelTwoNorm (gpt_neox, falcon new decoder): y = x + attn(n1 x) + mlp(n2 x).
enum class ResidualStyle { PreNorm, Sandwich, PostNorm, ParallelShared, ParallelTwoNorm };
enum class AttnKind { Separate, FusedQkv, Mla };
// Row order of a fused qkv weight: Concat [q;k;v] (phi3, gpt2), NeoxPerHead [heads,3,hd],
// FalconGrouped [kv_heads, q_per_kv+2, hd].
enum class QkvLayout { None, Concat, NeoxPerHead, FalconGrouped };
enum class MlpKind { Gated, FusedGateUp, Plain, Moe };
// Rope pairing: Half = rotate_half on split halves (HF default); Interleaved = adjacent pairs
// (cohere, deepseek rope_interleave).
enum class RopeStyle { Half, Interleaved };
// Router variants: Softmax top-k (mixtral: renormalized; qwen: per norm_topk_prob), SparseMixer
// (phimoe), SigmoidGrouped (deepseek_v3, glm4_moe: correction bias, group-limited, routed
// scaling), SoftmaxCorrected (ernie4_5_moe: softmax probabilities, top-k chosen on probabilities
// + correction bias, weights = chosen probabilities / max(sum, moe_norm_min)), SigmoidTopK
// (llama4_text: top-k on the logits, weight = σ(logit), not renormalized).
enum class RouterKind {
  None,
  SoftmaxTopK,
  SparseMixer,
  SigmoidGrouped,
  SoftmaxCorrected,
  SigmoidTopK
};
// Experts stored as fused 3-D tensors (roles fused_gate_up [E,H,2I], fused_down [E,I,H]) and kept
// in floating point: GptOss (gate/up interleaved along 2I, biases, clamped SwiGLU, routing weight
// on the output). None: per-expert linears ({e} roles) or no experts. (Llama 4's fused experts
// are read per expert, io/model/expert_split.h, and quantized: see routing_weight_on_input.)
enum class FusedExperts { None, GptOss };
// The q/k norms a family's checkpoints hold: none, one per head ([head_dim]: qwen3, gemma3) or
// one over the whole projection ([heads × head_dim]: olmo2).
enum class QkNormLayout { None, PerHead, Full };

// When an AWQ group applies: Always; EqualShapes (v→o only when v and o weights have equal
// shape, i.e. not under GQA); ActScales (prev_op is an activation: needs a persistent *.scales
// tensor, the pipeline may skip it).
enum class GroupCondition { Always, EqualShapes, ActScales };

struct AwqGroupSpec {
  std::string prev_op;               // norm or linear (relative name), or "act:<linear>"
  std::vector<std::string> linears;  // members (relative, may contain {e})
  std::string inspect;               // scope: "attn", "mlp", "block" or a linear role
  GroupCondition condition = GroupCondition::Always;
  bool per_expert = false;  // expand once per expert (up→down on routed tokens)
};
struct GptqStepSpec {
  std::vector<std::vector<std::string>> input_sets;  // each inner list shares one input
  bool per_expert = false;                           // each set is expanded per expert
};

struct ArchSpec {
  std::string model_type;
  std::string layers_prefix;  // "model.layers." (block i = layers_prefix + i)
  // Multimodal wrappers: the prefix of the language model ("language_model."), already part of
  // layers_prefix, embed, final_norm and lm_head. Every tensor outside it (vision tower,
  // projector) is copied unchanged and its linears are never quantized. "" for text models.
  std::string language_prefix;
  BlockFamily family = BlockFamily::Decoder;
  NormKind norm = NormKind::Rms;
  Activation act = Activation::Silu;  // default; config hidden_act overrides
  ResidualStyle residual = ResidualStyle::PreNorm;
  AttnKind attn = AttnKind::Separate;
  QkvLayout qkv_layout = QkvLayout::None;
  MlpKind mlp = MlpKind::Gated;
  RopeStyle rope_style = RopeStyle::Half;
  RouterKind router = RouterKind::None;
  FusedExperts fused_experts = FusedExperts::None;
  // llama4_text: each routed expert's input is multiplied by the token's routing weight before
  // its gate/up linears (their captured inputs are those products); the expert output is summed
  // unweighted. false: the output is weighted (every other MoE row).
  bool routing_weight_on_input = false;
  bool rope = true;     // false: learned absolute positions (gpt2, opt)
  bool conv1d = false;  // linears stored [in, out] (GPT-2 Conv1D)
  // llama4_text: a weight-free L2 norm of each query/key head after rope, on rope layers, when
  // config use_qk_norm is true.
  bool l2_qk_norm = false;
  // qwen3_next: q_proj emits [query | gate] per head; the attention output is multiplied by
  // σ(gate) before o_proj.
  bool gated_attention = false;
  // Checkpoint layout that config.json does not state. The block code finds biases and norms by
  // their presence; the synthetic-model writer (synth.h) writes what these say:
  //   qkv_bias  q/k/v carry biases, o_proj none (qwen2), unless config attention_bias is false
  //             (in the other rows attention_bias: true gives q/k/v and o_proj biases);
  //   qk_norm   the q/k norms of every block (see QkNormLayout);
  //   synth_experts  MoE rows whose per-expert layout synth writes completely (checked against
  //             the family's fixture, ArchSources.SynthLayoutsAreTheFixtures); the other MoE rows
  //             have family tensors synth does not write.
  bool qkv_bias = false;
  QkNormLayout qk_norm = QkNormLayout::None;
  bool synth_experts = false;
  // Block tensors by role (relative to the block prefix). Roles: attn_norm, mlp_norm,
  // post_attn_norm, post_mlp_norm, q_norm, k_norm, q, k, v, qkv, o, gate, up, gate_up, down,
  // router, router_bias, expert_gate, expert_up, expert_down ({e}), shared_gate, shared_up,
  // shared_down, shared_expert_gate, q_a, q_a_norm, q_b, kv_a, kv_a_norm, kv_b; Gated DeltaNet
  // (qwen3_next linear_attention layers): lin_qkvz, lin_ba, lin_out, lin_norm (gated norm) and
  // the float parameters lin_param_conv, lin_param_A_log, lin_param_dt_bias.
  std::map<std::string, std::string> names;
  // Model-level tensors (full names; "" = absent).
  std::string embed, pos_embed, final_norm, lm_head;
  int64_t pos_offset = 0;  // OPT's learned positions start at 2
  std::vector<AwqGroupSpec> awq;
  std::vector<GptqStepSpec> gptq;
  // MoE rows: the groups of dense-MLP blocks (deepseek first_k_dense_replace, qwen mlp_only).
  std::vector<AwqGroupSpec> awq_dense;
  std::vector<GptqStepSpec> gptq_dense;

  // names.at(role), "" when the row has no such role.
  const std::string& role(const std::string& r) const;
};

// What a role in ArchSpec::names holds: a norm (the role name contains "norm"), a bare tensor
// ("router_bias", stored without a ".weight" suffix), or else a linear ("<name>.weight" [out, in],
// optional "<name>.bias").
enum class RoleKind { Norm, Tensor, Linear };
RoleKind role_kind(const std::string& role);

const ArchSpec& arch_spec(const std::string& model_type);
const std::vector<ArchSpec>& arch_specs();

io::ModelConfig load_model_config(const std::string& path);
io::ModelConfig parse_model_config(const nlohmann::json& j, const std::string& origin);

// Expanded AWQ group of one block. Names are full tensor prefixes ("model.layers.0.mlp.up_proj").
struct LinearGroup {
  std::string prev_op;               // norm or linear prefix ("" for ActScales groups)
  bool prev_is_norm = false;         // norm (scale weight/bias) vs linear (scale output rows)
  bool prev_plus_one = false;        // (1+w) norm: w = (1+w)/s − 1
  std::vector<std::string> linears;  // members, scaled per input column
  std::string inspect;  // forward_scope() argument: "attn", "mlp", "block" or a linear prefix
  GroupCondition condition = GroupCondition::Always;
  int64_t expert = -1;  // per-expert group: the expert index (tap inputs are its routed tokens)
};
std::vector<LinearGroup> awq_groups(const io::ModelConfig& cfg, const io::ModelWeights& w,
                                    int64_t block);

struct GptqStep {
  std::vector<std::vector<std::string>> input_sets;  // full prefixes; each set shares an input
};
std::vector<GptqStep> gptq_steps(const io::ModelConfig& cfg, const io::ModelWeights& w,
                                 int64_t block);

// The config's routed-expert count in its family's spelling (num_local_experts, num_experts,
// n_routed_experts, moe_num_experts); 0 when none is given.
int64_t config_expert_count(const io::ModelConfig& cfg);
// Number of routed experts of block `block` (0 for dense blocks, e.g. deepseek's first layers).
int64_t num_experts(const io::ModelConfig& cfg, const io::ModelWeights& w, int64_t block);
// Whether block `block` runs the MoE MLP (family Moe/Mla and not a dense-replaced layer).
bool block_is_moe(const io::ModelConfig& cfg, int64_t block);
// Replace {e} by the expert index.
std::string expand_expert(const std::string& pattern, int64_t e);

}  // namespace sq::rank
