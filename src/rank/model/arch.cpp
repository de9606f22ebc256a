// arch.h queries answered from the ArchSpec rows: the quantizable linears are exactly the
// members of the block's GPTQ steps (routers, norms and other tensors are never listed).
#include "rank/model/arch.h"

#include <set>

#include "common/check.h"
#include "rank/model/arch_table.h"

namespace sq::rank {

std::string block_prefix(const io::ModelConfig& cfg, int64_t block) {
  return arch_spec(cfg.model_type).layers_prefix + std::to_string(block);
}

std::vector<LinearRef> block_linears(const io::ModelConfig& cfg, const io::ModelWeights& w,
                                     int64_t block) {
  const ArchSpec& s = arch_spec(cfg.model_type);
  std::vector<LinearRef> out;
  for (const auto& step : gptq_steps(cfg, w, block))
    for (const auto& set : step.input_sets)
      for (const auto& name : set) {
        const auto& info = w.info(name + ".weight");
        SQ_REQUIRE(info.shape.size() == 2, w.file_of(name + ".weight")
                                               << ": tensor " << name
                                               << ".weight: expected 2-D, got " << info.shape.size()
                                               << " dims");
        LinearRef r;
        r.name = name;
        r.transposed = s.conv1d;
        r.out_features = r.transposed ? info.shape[1] : info.shape[0];
        r.in_features = r.transposed ? info.shape[0] : info.shape[1];
        out.push_back(r);
      }
  return out;
}

std::vector<std::string> non_block_tensors(const io::ModelConfig& cfg, const io::ModelWeights& w) {
  const std::string layers = arch_spec(cfg.model_type).layers_prefix;
  std::vector<std::string> out;
  for (const auto& n : w.names())
    if (n.compare(0, layers.size(), layers) != 0) out.push_back(n);
  return out;
}

std::vector<std::string> never_quantized_linears(const io::ModelConfig& cfg,
                                                 const io::ModelWeights& w) {
  const ArchSpec& s = arch_spec(cfg.model_type);
  std::set<std::string> out;
  const std::string weight = ".weight";
  SQ_CHECK(s.lm_head.size() > weight.size() &&
               s.lm_head.compare(s.lm_head.size() - weight.size(), weight.size(), weight) == 0,
           s.model_type << " row: lm_head \"" << s.lm_head << "\" is not a .weight tensor");
  out.insert(s.lm_head.substr(0, s.lm_head.size() - weight.size()));
  for (int64_t b = 0; b < cfg.num_hidden_layers; ++b) {
    std::set<std::string> quantizable;
    for (const auto& r : block_linears(cfg, w, b)) quantizable.insert(r.name);
    const std::string pre = block_prefix(cfg, b) + ".";
    const int64_t experts = num_experts(cfg, w, b);
    for (const auto& [role, rel] : s.names) {
      // Fused expert tensors (GPT-OSS mlp.experts.gate_up_proj): their module stays float.
      if (role.rfind("fused_", 0) == 0 && w.has(pre + rel) && rel.rfind('.') != std::string::npos)
        out.insert(pre + rel.substr(0, rel.rfind('.')));
      if (role_kind(role) != RoleKind::Linear) continue;
      const bool per_expert = rel.find("{e}") != std::string::npos;
      for (int64_t e = 0; e < (per_expert ? experts : 1); ++e) {
        const std::string name = pre + expand_expert(rel, e);
        if (w.has(name + weight) && !quantizable.count(name)) out.insert(name);
      }
    }
  }
  // Multimodal: every linear outside the language model (vision tower, projector) stays float.
  if (!s.language_prefix.empty())
    for (const auto& n : w.names())
      if (n.compare(0, s.language_prefix.size(), s.language_prefix) != 0 &&
          n.size() > weight.size() &&
          n.compare(n.size() - weight.size(), weight.size(), weight) == 0 &&
          w.info(n).shape.size() == 2)
        out.insert(n.substr(0, n.size() - weight.size()));
  return {out.begin(), out.end()};
}

std::vector<std::vector<std::string>> fused_linear_sets(const io::ModelConfig& cfg,
                                                        const io::ModelWeights& w, int64_t block) {
  std::vector<std::vector<std::string>> out;
  for (const auto& step : gptq_steps(cfg, w, block))
    for (const auto& set : step.input_sets)
      if (set.size() > 1) out.push_back(set);
  const std::string experts = experts_module(cfg, block);
  if (!experts.empty()) {
    std::vector<std::string> all;
    for (const auto& r : block_linears(cfg, w, block))
      if (r.name.compare(0, experts.size() + 1, experts + ".") == 0) all.push_back(r.name);
    if (all.size() > 1) out.push_back(all);
  }
  return out;
}

std::string experts_module(const io::ModelConfig& cfg, int64_t block) {
  if (!block_is_moe(cfg, block)) return "";
  const ArchSpec& s = arch_spec(cfg.model_type);
  for (const auto& [role, rel] : s.names) {
    const auto pos = rel.find(".{e}");
    if (role.rfind("expert_", 0) == 0 && pos != std::string::npos)
      return block_prefix(cfg, block) + "." + rel.substr(0, pos);
  }
  return "";
}

}  // namespace sq::rank
