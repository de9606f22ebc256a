// arch.h queries answered from the ArchSpec rows: the quantizable linears are exactly the
// members of the block's GPTQ steps (routers, norms and other tensors are never listed).
#include "rank/arch.h"

#include "common/check.h"
#include "rank/arch_table.h"

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

}  // namespace sq::rank
