// Expansion of a row's linear groups for one block: roles → full tensor prefixes, experts
// enumerated, absent tensors dropped (e.g. olmo2 has no pre-attention norm), conditions
// evaluated on the checkpoint's shapes.
#include <algorithm>

#include "common/check.h"
#include "rank/model/arch.h"
#include "rank/model/arch_table.h"

namespace sq::rank {
namespace {

// Config keys for the routed-expert count, in the spelling of each family.
constexpr const char* kExpertKeys[] = {"num_local_experts", "num_experts", "n_routed_experts",
                                       "moe_num_experts"};

bool is_expert_role(const std::string& role) {
  return role.rfind("expert_", 0) == 0;
}

bool exists(const io::ModelWeights& w, const std::string& prefix) {
  return w.has(prefix + ".weight");
}

std::vector<int64_t> shape_of(const io::ModelWeights& w, const std::string& prefix) {
  const auto& s = w.info(prefix + ".weight").shape;
  return std::vector<int64_t>(s.begin(), s.end());
}

struct Expander {
  const ArchSpec& spec;
  const io::ModelConfig& cfg;
  const io::ModelWeights& w;
  std::string pre;  // "model.layers.3."
  int64_t experts;

  // Role → full prefixes (one per expert for expert roles; empty when absent in the checkpoint).
  std::vector<std::string> resolve(const std::string& role) const {
    const std::string& rel = spec.role(role);
    std::vector<std::string> out;
    if (rel.empty()) return out;
    if (is_expert_role(role)) {
      for (int64_t e = 0; e < experts; ++e) {
        std::string p = pre + expand_expert(rel, e);
        if (exists(w, p)) out.push_back(p);
      }
    } else if (exists(w, pre + rel)) {
      out.push_back(pre + rel);
    }
    return out;
  }
  std::string resolve_one(const std::string& role, int64_t e) const {
    const std::string& rel = spec.role(role);
    if (rel.empty()) return "";
    std::string p = pre + expand_expert(rel, e);
    return exists(w, p) ? p : "";
  }

  // v → o only without GQA: the value projection (or qkv's value slice) must be [H, H] like o.
  bool equal_shapes(const std::string& prev, const std::string& member) const {
    auto o = shape_of(w, member);
    std::vector<int64_t> v = shape_of(w, prev);
    if (spec.attn == AttnKind::FusedQkv) v = {cfg.num_key_value_heads * cfg.head_dim, v[1]};
    if (spec.conv1d) std::swap(o[0], o[1]), v = {cfg.hidden_size, cfg.hidden_size};
    return v == o;
  }
};

}  // namespace

bool block_is_moe(const io::ModelConfig& cfg, int64_t block) {
  const ArchSpec& s = arch_spec(cfg.model_type);
  if (s.mlp != MlpKind::Moe) return false;
  // llama4_text: the MoE blocks listed in moe_layers, or (configs written before that key) every
  // interleave_moe_layer_step-th block, as transformers derives the list.
  if (const auto& ml = cfg.raw.value("moe_layers", nlohmann::json()); ml.is_array())
    return std::any_of(ml.begin(), ml.end(), [&](const nlohmann::json& v) {
      return v.is_number_integer() && v.get<int64_t>() == block;
    });
  if (const int64_t step = cfg.get_int("interleave_moe_layer_step", 0); step > 0)
    return (block + 1) % step == 0;
  if (block < cfg.get_int("first_k_dense_replace", 0)) return false;
  if (block % cfg.get_int("moe_layer_freq", 1) != 0) return false;
  if (cfg.has("mlp_only_layers"))
    for (const auto& v : cfg.raw["mlp_only_layers"])
      if (v.is_number_integer() && v.get<int64_t>() == block) return false;
  const int64_t step = cfg.get_int("decoder_sparse_step", 1);
  if (step > 1 && (block + 1) % step != 0) return false;
  // ernie4_5_moe: MoE on layers start..end (inclusive) where (layer + 1) % interval == 0.
  if (cfg.has("moe_layer_start_index") || cfg.has("moe_layer_end_index")) {
    const int64_t interval = std::max<int64_t>(1, cfg.get_int("moe_layer_interval", 1));
    if (block < cfg.get_int("moe_layer_start_index", 0) ||
        block > cfg.get_int("moe_layer_end_index", cfg.num_hidden_layers - 1) ||
        (block + 1) % interval != 0)
      return false;
  }
  return true;
}

int64_t config_expert_count(const io::ModelConfig& cfg) {
  for (const char* k : kExpertKeys)
    if (cfg.get_int(k, 0) > 0) return cfg.get_int(k, 0);
  return 0;
}

int64_t num_experts(const io::ModelConfig& cfg, const io::ModelWeights& w, int64_t block) {
  if (!block_is_moe(cfg, block)) return 0;
  if (const int64_t n = config_expert_count(cfg)) return n;
  SQ_THROW(InputError, cfg.path << ": MoE model without an expert count (looked for "
                                << "num_local_experts, num_experts, n_routed_experts, "
                                   "moe_num_experts)");
}

std::vector<LinearGroup> awq_groups(const io::ModelConfig& cfg, const io::ModelWeights& w,
                                    int64_t block) {
  const ArchSpec& s = arch_spec(cfg.model_type);
  const bool moe = block_is_moe(cfg, block);
  Expander x{s, cfg, w, block_prefix(cfg, block) + ".", num_experts(cfg, w, block)};
  const auto& specs = (s.mlp == MlpKind::Moe && !moe) ? s.awq_dense : s.awq;
  std::vector<LinearGroup> out;
  for (const auto& g : specs) {
    const int64_t reps = g.per_expert ? x.experts : 1;
    for (int64_t e = 0; e < reps; ++e) {
      LinearGroup lg;
      lg.condition = g.condition;
      lg.expert = g.per_expert ? e : -1;
      const bool act = g.prev_op.rfind("act:", 0) == 0;
      const std::string prev_role = act ? g.prev_op.substr(4) : g.prev_op;
      const bool prev_norm = role_kind(prev_role) == RoleKind::Norm;
      if (!act) {
        lg.prev_op = g.per_expert ? x.resolve_one(prev_role, e)
                                  : (x.resolve(prev_role).empty() ? "" : x.resolve(prev_role)[0]);
        if (lg.prev_op.empty()) continue;  // e.g. no pre-norm (olmo2)
        lg.prev_is_norm = prev_norm;
        lg.prev_plus_one = prev_norm && s.norm == NormKind::RmsPlusOne;
      }
      for (const auto& m : g.linears) {
        if (g.per_expert) {
          std::string p = x.resolve_one(m, e);
          if (!p.empty()) lg.linears.push_back(p);
        } else {
          for (auto& p : x.resolve(m)) lg.linears.push_back(p);
        }
      }
      if (lg.linears.empty()) continue;
      if (g.inspect == "attn" || g.inspect == "mlp" || g.inspect == "block")
        lg.inspect = g.inspect;
      else
        lg.inspect = g.per_expert ? x.resolve_one(g.inspect, e) : lg.linears.front();
      if (g.condition == GroupCondition::EqualShapes &&
          !x.equal_shapes(lg.prev_op, lg.linears.front()))
        continue;
      out.push_back(std::move(lg));
    }
  }
  return out;
}

std::vector<GptqStep> gptq_steps(const io::ModelConfig& cfg, const io::ModelWeights& w,
                                 int64_t block) {
  const ArchSpec& s = arch_spec(cfg.model_type);
  const bool moe = block_is_moe(cfg, block);
  Expander x{s, cfg, w, block_prefix(cfg, block) + ".", num_experts(cfg, w, block)};
  const auto& specs = (s.mlp == MlpKind::Moe && !moe) ? s.gptq_dense : s.gptq;
  std::vector<GptqStep> out;
  for (const auto& st : specs) {
    GptqStep step;
    for (const auto& set : st.input_sets) {
      const bool per_expert = st.per_expert && std::any_of(set.begin(), set.end(), is_expert_role);
      const int64_t reps = per_expert ? x.experts : 1;
      for (int64_t e = 0; e < reps; ++e) {
        std::vector<std::string> names;
        for (const auto& role : set) {
          if (per_expert) {
            std::string p = x.resolve_one(role, e);
            if (!p.empty()) names.push_back(p);
          } else {
            for (auto& p : x.resolve(role)) names.push_back(p);
          }
        }
        if (!names.empty()) step.input_sets.push_back(std::move(names));
      }
    }
    if (!step.input_sets.empty()) out.push_back(std::move(step));
  }
  return out;
}

}  // namespace sq::rank
