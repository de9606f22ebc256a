// Interim generic implementation: 2-D weights under the block prefix are linears, except
// routers. The forward-pass work replaces this with ArchSpec rows (rank/arch_table).
#include "rank/arch.h"

#include <algorithm>

namespace sq::rank {
namespace {

struct PrefixRow {
  const char* model_type;
  const char* prefix;
};
constexpr PrefixRow kPrefixes[] = {{"gpt2", "transformer.h."},
                                   {"falcon", "transformer.h."},
                                   {"gpt_neox", "gpt_neox.layers."},
                                   {"opt", "model.decoder.layers."}};

bool is_router(const std::string& n) {
  static const char* suffixes[] = {".mlp.gate", ".block_sparse_moe.gate", ".shared_expert_gate"};
  for (const char* s : suffixes) {
    std::string ss(s);
    if (n.size() >= ss.size() && n.compare(n.size() - ss.size(), ss.size(), ss) == 0) return true;
  }
  return false;
}

}  // namespace

std::string block_prefix(const io::ModelConfig& cfg, int64_t block) {
  for (const auto& r : kPrefixes)
    if (cfg.model_type == r.model_type) return r.prefix + std::to_string(block);
  return "model.layers." + std::to_string(block);
}

std::vector<LinearRef> block_linears(const io::ModelConfig& cfg, const io::ModelWeights& w,
                                     int64_t block) {
  const std::string pre = block_prefix(cfg, block) + ".";
  std::vector<LinearRef> out;
  for (const auto& n : w.names()) {
    if (n.compare(0, pre.size(), pre) != 0) continue;
    const std::string suffix = ".weight";
    if (n.size() < suffix.size() || n.compare(n.size() - suffix.size(), suffix.size(), suffix))
      continue;
    const auto& info = w.info(n);
    if (info.shape.size() != 2) continue;
    std::string base = n.substr(0, n.size() - suffix.size());
    if (is_router(base)) continue;
    LinearRef r;
    r.name = base;
    r.transposed = cfg.model_type == "gpt2";
    r.out_features = r.transposed ? info.shape[1] : info.shape[0];
    r.in_features = r.transposed ? info.shape[0] : info.shape[1];
    out.push_back(r);
  }
  return out;
}

std::vector<std::string> non_block_tensors(const io::ModelConfig& cfg, const io::ModelWeights& w) {
  std::string layers = block_prefix(cfg, 0);
  layers = layers.substr(0, layers.size() - 1);  // "model.layers."
  std::vector<std::string> out;
  for (const auto& n : w.names())
    if (n.compare(0, layers.size(), layers) != 0) out.push_back(n);
  return out;
}

}  // namespace sq::rank
