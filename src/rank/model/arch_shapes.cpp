// The shape rules (arch_shapes.h) as one table: a rule names a role, the config values of its
// rows and columns, and the layouts it holds for. Names come from the row, so a family needs no
// entry here unless it brings a new kind of tensor.
#include "rank/model/arch_shapes.h"

#include <algorithm>

#include "common/check.h"

namespace sq::rank {
namespace {

enum class Dim {
  kHidden,
  kInter,
  kInter2,
  kQ,
  kKv,
  kQkv,
  kVocab,
  kEmbed,
  kPositions,
  // MoE blocks
  kExperts,
  kMoeInter,
  kSharedInter,
  kOne,
  // MLA attention (deepseek_v3)
  kQLora,
  kQHeads,
  kKvA,
  kKvLora,
  kKvB,
  kOMla
};

// The shared expert's width: qwen2_moe states it, deepseek_v3 has n_shared_experts of the
// routed width side by side; 0 when the model has none.
int64_t shared_inter(const io::ModelConfig& c) {
  if (c.get_int("shared_expert_intermediate_size", 0) > 0)
    return c.get_int("shared_expert_intermediate_size", 0);
  return c.get_int("n_shared_experts", 0) * c.get_int("moe_intermediate_size", 0);
}
int64_t mla_qk_head(const io::ModelConfig& c) {
  return c.get_int("qk_nope_head_dim", 128) + c.get_int("qk_rope_head_dim", 64);
}

struct DimRow {
  Dim dim;
  const char* what;  // how the config implies it
  int64_t (*get)(const io::ModelConfig&, const ArchSpec&);
};
const DimRow kDims[] = {
    {Dim::kHidden, "hidden_size",
     [](const io::ModelConfig& c, const ArchSpec&) { return c.hidden_size; }},
    // Dense-MLP width: llama4's dense blocks use intermediate_size_mlp (intermediate_size is
    // its experts').
    {Dim::kInter, "intermediate_size (intermediate_size_mlp where present)",
     [](const io::ModelConfig& c, const ArchSpec&) {
       return c.get_int("intermediate_size_mlp", c.intermediate_size);
     }},
    {Dim::kInter2, "2 × intermediate_size (intermediate_size_mlp where present)",
     [](const io::ModelConfig& c, const ArchSpec&) {
       return 2 * c.get_int("intermediate_size_mlp", c.intermediate_size);
     }},
    {Dim::kQ, "num_attention_heads × head_dim",
     [](const io::ModelConfig& c, const ArchSpec&) { return c.num_attention_heads * c.head_dim; }},
    {Dim::kKv, "num_key_value_heads × head_dim",
     [](const io::ModelConfig& c, const ArchSpec&) { return c.num_key_value_heads * c.head_dim; }},
    {Dim::kQkv, "(num_attention_heads + 2 × num_key_value_heads) × head_dim",
     [](const io::ModelConfig& c, const ArchSpec&) {
       return (c.num_attention_heads + 2 * c.num_key_value_heads) * c.head_dim;
     }},
    {Dim::kVocab, "vocab_size",
     [](const io::ModelConfig& c, const ArchSpec&) { return c.vocab_size; }},
    // OPT's embeddings may be narrower than the blocks (word_embed_proj_dim).
    {Dim::kEmbed, "hidden_size",
     [](const io::ModelConfig& c, const ArchSpec&) {
       return c.get_int("word_embed_proj_dim", c.hidden_size);
     }},
    {Dim::kPositions, "max_position_embeddings (+ the row's position offset)",
     [](const io::ModelConfig& c, const ArchSpec& s) {
       return c.max_position_embeddings + s.pos_offset;
     }},
    {Dim::kExperts,
     "routed experts (num_local_experts / num_experts / n_routed_experts / moe_num_experts)",
     [](const io::ModelConfig& c, const ArchSpec&) { return config_expert_count(c); }},
    // Mixtral and PhiMoE name the expert width intermediate_size.
    {Dim::kMoeInter, "moe_intermediate_size (else intermediate_size)",
     [](const io::ModelConfig& c, const ArchSpec&) {
       return c.get_int("moe_intermediate_size", c.intermediate_size);
     }},
    {Dim::kSharedInter,
     "shared_expert_intermediate_size (else n_shared_experts × moe_intermediate_size)",
     [](const io::ModelConfig& c, const ArchSpec&) { return shared_inter(c); }},
    {Dim::kOne, "1", [](const io::ModelConfig&, const ArchSpec&) -> int64_t { return 1; }},
    {Dim::kQLora, "q_lora_rank",
     [](const io::ModelConfig& c, const ArchSpec&) { return c.get_int("q_lora_rank", 0); }},
    {Dim::kQHeads, "num_attention_heads × (qk_nope_head_dim + qk_rope_head_dim)",
     [](const io::ModelConfig& c, const ArchSpec&) {
       return c.num_attention_heads * mla_qk_head(c);
     }},
    {Dim::kKvA, "kv_lora_rank + qk_rope_head_dim",
     [](const io::ModelConfig& c, const ArchSpec&) {
       return c.get_int("kv_lora_rank", 512) + c.get_int("qk_rope_head_dim", 64);
     }},
    {Dim::kKvLora, "kv_lora_rank",
     [](const io::ModelConfig& c, const ArchSpec&) { return c.get_int("kv_lora_rank", 512); }},
    {Dim::kKvB, "num_attention_heads × (qk_nope_head_dim + v_head_dim)",
     [](const io::ModelConfig& c, const ArchSpec&) {
       return c.num_attention_heads *
              (c.get_int("qk_nope_head_dim", 128) + c.get_int("v_head_dim", 128));
     }},
    {Dim::kOMla, "num_attention_heads × v_head_dim",
     [](const io::ModelConfig& c, const ArchSpec&) {
       return c.num_attention_heads * c.get_int("v_head_dim", 128);
     }},
};

const DimRow& dim(Dim d) {
  for (const auto& r : kDims)
    if (r.dim == d) return r;
  SQ_CHECK(false, "no dimension row " << static_cast<int>(d));
}

// Where a rule holds: in every model (model-level tensors), in blocks with separate q/k/v, with
// separate or fused attention (o), with a fused qkv, in dense-MLP blocks, in MoE blocks (routed
// and shared experts, routers), or with MLA attention.
enum class Where { kModel, kSeparateAttn, kAnyAttn, kFusedAttn, kDenseMlp, kMoeMlp, kMla };

// A rule that holds only for some configs of its rows (nullptr: all of them).
using Applies = bool (*)(const io::ModelConfig&);
bool has_shared(const io::ModelConfig& c) {
  return shared_inter(c) > 0;
}
bool has_shared_gate(const io::ModelConfig& c) {
  return c.get_int("shared_expert_intermediate_size", 0) > 0;
}
bool q_lora(const io::ModelConfig& c) {
  return c.get_int("q_lora_rank", 0) > 0;
}
bool no_q_lora(const io::ModelConfig& c) {
  return !q_lora(c);
}

struct ShapeRule {
  const char* role;
  Dim rows, cols;  // as [out, in]; Conv1D rows store the transpose
  Where where;
  Applies applies = nullptr;
};
const ShapeRule kRules[] = {
    {"embed", Dim::kVocab, Dim::kEmbed, Where::kModel},
    {"q", Dim::kQ, Dim::kHidden, Where::kSeparateAttn},
    {"k", Dim::kKv, Dim::kHidden, Where::kSeparateAttn},
    {"v", Dim::kKv, Dim::kHidden, Where::kSeparateAttn},
    {"qkv", Dim::kQkv, Dim::kHidden, Where::kFusedAttn},
    {"o", Dim::kHidden, Dim::kQ, Where::kAnyAttn},
    {"gate", Dim::kInter, Dim::kHidden, Where::kDenseMlp},
    {"up", Dim::kInter, Dim::kHidden, Where::kDenseMlp},
    {"gate_up", Dim::kInter2, Dim::kHidden, Where::kDenseMlp},
    {"down", Dim::kHidden, Dim::kInter, Where::kDenseMlp},
    {"router", Dim::kExperts, Dim::kHidden, Where::kMoeMlp},
    {"expert_gate", Dim::kMoeInter, Dim::kHidden, Where::kMoeMlp},
    {"expert_up", Dim::kMoeInter, Dim::kHidden, Where::kMoeMlp},
    {"expert_down", Dim::kHidden, Dim::kMoeInter, Where::kMoeMlp},
    {"shared_gate", Dim::kSharedInter, Dim::kHidden, Where::kMoeMlp, has_shared},
    {"shared_up", Dim::kSharedInter, Dim::kHidden, Where::kMoeMlp, has_shared},
    {"shared_down", Dim::kHidden, Dim::kSharedInter, Where::kMoeMlp, has_shared},
    {"shared_expert_gate", Dim::kOne, Dim::kHidden, Where::kMoeMlp, has_shared_gate},
    {"q_a", Dim::kQLora, Dim::kHidden, Where::kMla, q_lora},
    {"q_b", Dim::kQHeads, Dim::kQLora, Where::kMla, q_lora},
    {"q_proj", Dim::kQHeads, Dim::kHidden, Where::kMla, no_q_lora},
    {"kv_a", Dim::kKvA, Dim::kHidden, Where::kMla},
    {"kv_b", Dim::kKvB, Dim::kKvLora, Where::kMla},
    {"o", Dim::kHidden, Dim::kOMla, Where::kMla},
    {"lm_head", Dim::kVocab, Dim::kEmbed, Where::kModel},
    {"pos_embed", Dim::kPositions, Dim::kHidden, Where::kModel},
};

// Whether the rule can hold anywhere in a model of row `s`.
bool holds_for_row(const ShapeRule& r, const ArchSpec& s) {
  switch (r.where) {
    case Where::kModel:
      return !model_tensor(s, r.role).empty();
    case Where::kSeparateAttn:
      return s.attn == AttnKind::Separate && !s.role(r.role).empty();
    case Where::kAnyAttn:
      return s.attn != AttnKind::Mla && !s.role(r.role).empty();
    case Where::kFusedAttn:
      return s.attn == AttnKind::FusedQkv && !s.role(r.role).empty();
    case Where::kDenseMlp:
      return !s.role(r.role).empty();
    case Where::kMoeMlp:
      return s.mlp == MlpKind::Moe && !s.role(r.role).empty();
    case Where::kMla:
      return s.attn == AttnKind::Mla && !s.role(r.role).empty();
  }
  return false;
}

// The rule for `role` in row `s` (a role may have one rule per attention kind, e.g. "o").
const ShapeRule* rule_of(const std::string& role, const ArchSpec& s) {
  for (const auto& r : kRules)
    if (role == r.role && holds_for_row(r, s)) return &r;
  return nullptr;
}

}  // namespace

std::string model_tensor(const ArchSpec& s, const std::string& role) {
  if (role == "embed") return s.embed;
  if (role == "lm_head") return s.lm_head;
  if (role == "pos_embed") return s.pos_embed;
  return "";
}

std::optional<ImpliedShape> implied_shape(const io::ModelConfig& cfg, const std::string& role,
                                          int64_t block) {
  const ArchSpec& s = arch_spec(cfg.model_type);
  const ShapeRule* r = rule_of(role, s);
  if (!r || (r->applies && !r->applies(cfg))) return std::nullopt;
  if (r->where == Where::kDenseMlp && block_is_moe(cfg, block)) return std::nullopt;
  if (r->where == Where::kMoeMlp && !block_is_moe(cfg, block)) return std::nullopt;
  // qwen3_next linear_attention blocks have no q/k/v/o (their projections have no rule).
  const bool attn_rule = r->where == Where::kSeparateAttn || r->where == Where::kAnyAttn ||
                         r->where == Where::kFusedAttn;
  if (attn_rule && block < static_cast<int64_t>(cfg.layer_types.size()) &&
      cfg.layer_types[block] == "linear_attention")
    return std::nullopt;
  const DimRow* d[2] = {&dim(r->rows), &dim(r->cols)};
  if (s.conv1d && r->where != Where::kModel) std::swap(d[0], d[1]);
  ImpliedShape out;
  for (const DimRow* x : d) {
    out.shape.push_back(x->get(cfg, s));
    out.why += (out.why.empty() ? "" : ", ") + std::string(x->what) + " " +
               std::to_string(out.shape.back());
  }
  if (s.gated_attention && role == "q") {  // qwen3_next: query and gate rows per head
    out.shape[0] *= 2;
    out.why = "2 × " + out.why;
  }
  return out;
}

std::vector<std::string> shaped_roles(const ArchSpec& s) {
  std::vector<std::string> out;
  for (const auto& r : kRules)
    if (holds_for_row(r, s) && std::find(out.begin(), out.end(), r.role) == out.end())
      out.push_back(r.role);
  return out;
}

}  // namespace sq::rank
