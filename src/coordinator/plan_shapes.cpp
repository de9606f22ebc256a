// The shape check of make_plan(): every tensor the rank layer's shape rules imply for this
// architecture (rank/arch_shapes.h; names from the ArchSpec row) is present with that shape.
// Tensors no rule covers (MLA projections, MoE experts) get only the generic checks.
#include <sstream>

#include "common/check.h"
#include "coordinator/plan_internal.h"
#include "io/shape_text.h"
#include "rank/arch.h"
#include "rank/arch_shapes.h"

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
    for (int64_t b = 0; b < cfg.num_hidden_layers; ++b)
      if (const auto want = rank::implied_shape(cfg, role, b))
        check_one(cfg, w, rank::block_prefix(cfg, b) + "." + spec.role(role) + ".weight", *want);
  }
}

}  // namespace sq::coordinator::detail
