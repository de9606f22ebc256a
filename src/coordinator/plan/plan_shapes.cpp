// The shape check of make_plan(): every tensor the rank layer's shape rules imply for this
// architecture (rank/model/arch_shapes.h; names from the ArchSpec row) is present with that shape.
// Tensors no rule covers (norms, biases, fused expert tensors) get only the generic checks.
#include <sstream>

#include "common/check.h"
#include "coordinator/plan/plan_internal.h"
#include "io/safetensors/shape_text.h"
#include "rank/model/arch.h"
#include "rank/model/arch_shapes.h"

namespace sq::coordinator::detail {
namespace {

using io::shape_str;

void check_one(const io::ModelConfig& cfg, const io::ModelWeights& w, const std::string& name,
               const rank::ImpliedShape& want) {
  SQ_REQUIRE(w.has(name), w.dir() << ": tensor " << name << " is missing (config.json "
                                  << cfg.model_type << " implies it, shape "
                                  << shape_str(want.shape) << ")");
  const auto& got = w.info(name).shape;
  SQ_REQUIRE(got == want.shape, w.file_of(name)
                                    << ": tensor " << name << " has shape " << shape_str(got)
                                    << " but config.json implies " << shape_str(want.shape) << " ("
                                    << want.why << ")");
}

}  // namespace

void check_shapes(const io::ModelConfig& cfg, const io::ModelWeights& w) {
  const rank::ArchSpec& spec = rank::arch_spec(cfg.model_type);
  for (const auto& role : rank::shaped_roles(spec)) {
    const std::string model_name = rank::model_tensor(spec, role);
    if (!model_name.empty()) {
      // A tied lm_head may be absent; when present it must have the embedding's shape.
      if (role == "lm_head" && cfg.tie_word_embeddings && !w.has(model_name)) continue;
      check_one(cfg, w, model_name, *rank::implied_shape(cfg, role, 0));
      continue;
    }
    const bool per_expert = spec.role(role).find("{e}") != std::string::npos;
    for (int64_t b = 0; b < cfg.num_hidden_layers; ++b) {
      const auto want = rank::implied_shape(cfg, role, b);
      if (!want) continue;
      const std::string name = rank::block_prefix(cfg, b) + "." + spec.role(role) + ".weight";
      if (!per_expert) {
        check_one(cfg, w, name, *want);
        continue;
      }
      for (int64_t e = 0, n = rank::num_experts(cfg, w, b); e < n; ++e)
        check_one(cfg, w, rank::expand_expert(name, e), *want);
    }
  }
}

}  // namespace sq::coordinator::detail
