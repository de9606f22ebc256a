// Block construction: only this block's tensors are read (by role, from the row's names), cast
// to the block's dtype and moved to its device. Every tensor under the block prefix must be
// claimed by a role, so a checkpoint with an unexpected layout fails loudly instead of running a
// silently different model.
#include "rank/model/block.h"

#include <algorithm>
#include <set>

#include "common/check.h"
#include "io/model/release_pages.h"
#include "rank/model/arch.h"

namespace sq::rank {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Non-parameter buffers some exporters save; never part of the computation.
constexpr const char* kIgnoredSuffixes[] = {".inv_freq", ".attn.bias", ".attn.masked_bias"};

// config.json hidden_act spellings → activation.
struct ActRow {
  const char* name;
  Activation act;
};
constexpr ActRow kActivations[] = {
    {"silu", Activation::Silu},           {"swish", Activation::Silu},
    {"gelu", Activation::GeluErf},        {"gelu_pytorch_tanh", Activation::GeluTanh},
    {"gelu_new", Activation::GeluTanh},   {"gelu_fast", Activation::GeluTanh},
    {"gelu_python", Activation::GeluErf}, {"relu", Activation::Relu},
};

}  // namespace

Activation activation_from_config(const std::string& hidden_act, Activation fallback) {
  if (hidden_act.empty()) return fallback;
  for (const auto& r : kActivations)
    if (hidden_act == r.name) return r.act;
  SQ_THROW(InputError, "unsupported activation \"" << hidden_act << "\" in config.json");
}

BlockContext make_context(int64_t batch, int64_t seq_len, const at::Device& device) {
  BlockContext c;
  c.positions = at::arange(seq_len, at::TensorOptions().dtype(at::kLong).device(device))
                    .unsqueeze(0)
                    .expand({batch, seq_len})
                    .contiguous();
  c.default_positions_len = seq_len;
  return c;
}

Block::Block(const io::ModelWeights& w, const io::ModelConfig& cfg, int64_t index,
             const at::Device& device, at::ScalarType dtype)
    : spec_(&arch_spec(cfg.model_type)),
      cfg_(cfg),
      index_(index),
      prefix_(block_prefix(cfg, index)),
      device_(device),
      dtype_(dtype) {
  SQ_REQUIRE(index >= 0 && index < cfg.num_hidden_layers,
             cfg.path << ": block " << index
                      << " out of range (num_hidden_layers = " << cfg.num_hidden_layers << ")");
  act_ = activation_from_config(cfg.hidden_act, spec_->act);
  moe_ = block_is_moe(cfg, index);
  n_experts_ = num_experts(cfg, w, index);
  if (!cfg.layer_types.empty() && index < static_cast<int64_t>(cfg.layer_types.size()))
    layer_type_ = cfg.layer_types[index];
  else
    layer_type_ = "full_attention";
  const bool sliding_enabled = cfg.get_bool("use_sliding_window", true);
  if (!cfg.layer_types.empty())
    sliding_ = layer_type_ == "sliding_attention" && cfg.sliding_window.has_value();
  else
    sliding_ = sliding_enabled && cfg.sliding_window.has_value();
  // NoPE layers: transformers' no_rope_layers holds 1 for a layer that applies rope, 0 for one
  // that does not (smollm3, llama4).
  if (const auto& nr = cfg.raw.value("no_rope_layers", nlohmann::json());
      nr.is_array() && index < static_cast<int64_t>(nr.size()) && nr[index].is_number_integer())
    use_rope_ = nr[index].get<int64_t>() != 0;
  else if (const int64_t every = cfg.get_int("no_rope_layer_interval", 0); every > 0)
    use_rope_ = (index + 1) % every != 0;  // llama4 configs without the list: its default
  // Chunked attention (llama4): the layer_types entry, or every rope layer in configs without
  // layer_types (transformers' default for them).
  if (const int64_t chunk = cfg.get_int("attention_chunk_size", 0); chunk > 0) {
    if (cfg.layer_types.empty()) layer_type_ = use_rope_ ? "chunked_attention" : "full_attention";
    if (layer_type_ == "chunked_attention") attention_chunk_ = chunk;
  }
  load_tensors(w);

  // Per-checkpoint residual switches: gpt_neox use_parallel_residual, falcon parallel_attn, and
  // a two-norm parallel row whose checkpoint has a single shared norm (old falcon).
  residual_ = spec_->residual;
  if (!cfg.get_bool("use_parallel_residual", true) || !cfg.get_bool("parallel_attn", true))
    residual_ = ResidualStyle::PreNorm;
  else if (residual_ == ResidualStyle::ParallelTwoNorm && !find_norm_role("mlp_norm"))
    residual_ = ResidualStyle::ParallelShared;
}

void Block::load_tensors(const io::ModelWeights& w) {
  const std::string pre = prefix_ + ".";
  std::set<std::string> claimed;
  auto load = [&](const std::string& name) {
    claimed.insert(name);
    return w.get_on(name, dtype_, device_);  // FP8/MXFP4 sources dequantize on the device
  };
  for (const auto& [role, rel] : spec_->names) {
    const bool expert = rel.find("{e}") != std::string::npos;
    const int64_t reps = expert ? n_experts_ : 1;
    for (int64_t e = 0; e < reps; ++e) {
      const std::string name = pre + expand_expert(rel, e);
      if (role_kind(role) == RoleKind::Tensor) {
        if (w.has(name)) {
          claimed.insert(name);
          extras_[name] = w.get_as(name, at::kFloat).to(device_);
        }
        continue;
      }
      if (!w.has(name + ".weight")) continue;
      if (role_kind(role) == RoleKind::Norm) {
        Norm n;
        n.name = name;
        n.kind = spec_->norm;
        n.eps = cfg_.norm_eps;
        n.weight = load(name + ".weight");
        if (w.has(name + ".bias")) n.bias = load(name + ".bias");
        norms_[name] = n;
      } else {
        Linear l;
        l.name = name;
        l.transposed = spec_->conv1d;
        l.weight = load(name + ".weight");
        if (l.transposed) l.weight = l.weight.t().contiguous();
        if (w.has(name + ".bias")) l.bias = load(name + ".bias");
        linears_[name] = l;
      }
    }
  }
  for (const auto& n : w.names()) {
    if (n.compare(0, pre.size(), pre) != 0 || claimed.count(n)) continue;
    if (std::any_of(std::begin(kIgnoredSuffixes), std::end(kIgnoredSuffixes),
                    [&](const char* s) { return ends_with(n, s); }))
      continue;
    SQ_THROW(InputError, w.file_of(n) << ": tensor " << n << " is not part of the "
                                      << spec_->model_type << " block layout (unexpected tensor)");
  }
  // Every tensor is a copy now (get_as/get_on never return views): the shards' pages of this
  // block can leave the process's resident set, so host memory does not grow block by block.
  io::release_pages(w, std::vector<std::string>(claimed.begin(), claimed.end()));
}

std::string Block::full(const std::string& name) const {
  const std::string pre = prefix_ + ".";
  return name.compare(0, pre.size(), pre) == 0 ? name : pre + name;
}

bool Block::has_linear(const std::string& name) const {
  return linears_.count(full(name)) != 0;
}
Linear& Block::linear(const std::string& name) {
  return const_cast<Linear&>(static_cast<const Block*>(this)->linear(name));
}
const Linear& Block::linear(const std::string& name) const {
  auto it = linears_.find(full(name));
  SQ_REQUIRE(it != linears_.end(), "block " << prefix_ << " has no linear " << name);
  return it->second;
}
std::vector<std::string> Block::linear_names() const {
  std::vector<std::string> out;
  for (const auto& [k, v] : linears_) out.push_back(k);
  return out;
}
bool Block::has_norm(const std::string& name) const {
  return norms_.count(full(name)) != 0;
}
Norm& Block::norm(const std::string& name) {
  return const_cast<Norm&>(static_cast<const Block*>(this)->norm(name));
}
const Norm& Block::norm(const std::string& name) const {
  auto it = norms_.find(full(name));
  SQ_REQUIRE(it != norms_.end(), "block " << prefix_ << " has no norm " << name);
  return it->second;
}
std::vector<std::string> Block::norm_names() const {
  std::vector<std::string> out;
  for (const auto& [k, v] : norms_) out.push_back(k);
  return out;
}

const Linear* Block::find_linear_role(const std::string& role) const {
  const std::string& rel = spec_->role(role);
  if (rel.empty()) return nullptr;
  auto it = linears_.find(prefix_ + "." + rel);
  return it == linears_.end() ? nullptr : &it->second;
}
const Norm* Block::find_norm_role(const std::string& role) const {
  for (const std::string& r : {role, role + "_alt"}) {
    const std::string& rel = spec_->role(r);
    if (rel.empty()) continue;
    auto it = norms_.find(prefix_ + "." + rel);
    if (it != norms_.end()) return &it->second;
  }
  return nullptr;
}

}  // namespace sq::rank
