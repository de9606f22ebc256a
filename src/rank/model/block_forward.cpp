// Block::forward: the residual wiring of each ResidualStyle, the dense MLP variants and the
// inspect scopes AWQ measures its loss on.
#include "common/check.h"
#include "rank/model/block.h"
#include "rank/model/fused.h"
#include "rank/model/layers.h"
#include "solvers/cpu_tiles.h"

namespace sq::rank {

at::Tensor Block::apply_linear(const Linear& l, const at::Tensor& x, ActivationTap* tap) const {
  if (tap && tap->wants(l.name)) {
    tap->on_input(l.name, x);
    if (tap->done()) throw ForwardStopped{};
  }
  at::Tensor w = tap ? tap->weight_for(l) : at::Tensor();
  // CPU: fixed row tiles, so the bits do not depend on the thread count (solvers/cpu_tiles.h).
  return solvers::tiles::linear(x, w.defined() ? w : l.weight,
                                l.bias.defined() ? l.bias : at::Tensor());
}

at::Tensor Block::apply_norm(const Norm* n, const at::Tensor& x) const {
  if (!n) return x;
  return layers::norm(x, n->weight, n->bias, n->kind, n->eps);
}

at::Tensor Block::forward(const at::Tensor& x, const BlockContext& ctx, ActivationTap* tap) const {
  SQ_REQUIRE(x.dim() == 3 && x.size(2) == cfg_.hidden_size,
             "block " << prefix_ << ": expected input [B,T," << cfg_.hidden_size << "], got "
                      << x.sizes());
  const Norm* n1 = find_norm_role("attn_norm");
  const Norm* n2 = find_norm_role("mlp_norm");
  const Norm* p1 = find_norm_role("post_attn_norm");
  const Norm* p2 = find_norm_role("post_mlp_norm");
  // Granite scales each branch before adding it to the residual stream.
  const double rm = cfg_.get_double("residual_multiplier", 1.0);
  auto branch = [&](const at::Tensor& t) { return rm == 1.0 ? t : t * rm; };
  switch (residual_) {
    case ResidualStyle::PreNorm: {
      at::Tensor h = x + branch(attention(apply_norm(n1, x), ctx, tap));
      return h + branch(mlp(apply_norm(n2, h), tap));
    }
    case ResidualStyle::Sandwich: {
      at::Tensor h = x + apply_norm(p1, attention(apply_norm(n1, x), ctx, tap));
      return h + apply_norm(p2, mlp(apply_norm(n2, h), tap));
    }
    case ResidualStyle::PostNorm: {
      at::Tensor h = x + apply_norm(p1, attention(x, ctx, tap));
      return h + apply_norm(p2, mlp(h, tap));
    }
    case ResidualStyle::ParallelShared: {
      at::Tensor n = apply_norm(n1, x);
      at::Tensor a = attention(n, ctx, tap);
      return x + a + mlp(n, tap);
    }
    case ResidualStyle::ParallelTwoNorm: {
      at::Tensor a = attention(apply_norm(n1, x), ctx, tap);
      return x + a + mlp(apply_norm(n2, x), tap);
    }
  }
  SQ_CHECK(false, "unhandled residual style");
}

at::Tensor Block::forward_scope(const std::string& scope, const at::Tensor& x,
                                const BlockContext& ctx, ActivationTap* tap) const {
  if (scope == "attn") return attention(x, ctx, tap);
  if (scope == "mlp") return mlp(x, tap);
  if (scope == "block") return attention(x, ctx, tap) + mlp(x, tap);
  return apply_linear(linear(scope), x, tap);
}

at::Tensor Block::dense_mlp(const at::Tensor& x, const std::string& gate, const std::string& up,
                            const std::string& down, ActivationTap* tap) const {
  const Linear* g = find_linear_role(gate);
  const Linear* u = find_linear_role(up);
  const Linear* d = find_linear_role(down);
  SQ_REQUIRE(u && d, "block " << prefix_ << ": missing MLP linears (" << up << ", " << down
                              << ") for " << spec_->model_type);
  return apply_linear(*d, mlp_hidden(g, *u, x, tap), tap);
}

at::Tensor Block::mlp_hidden(const Linear* g, const Linear& u, const at::Tensor& x,
                             ActivationTap* tap) const {
  if (!g) return layers::activate(apply_linear(u, x, tap), act_);
  return gated_act(apply_linear(*g, x, tap), apply_linear(u, x, tap), act_);
}

at::Tensor Block::mlp(const at::Tensor& x, ActivationTap* tap) const {
  if (moe_) return moe(x, tap);
  if (spec_->mlp == MlpKind::FusedGateUp) {
    const Linear* gu = find_linear_role("gate_up");
    const Linear* d = find_linear_role("down");
    SQ_REQUIRE(gu && d, "block " << prefix_ << ": missing gate_up/down linears");
    auto parts = apply_linear(*gu, x, tap).chunk(2, -1);  // [gate; up]
    return apply_linear(*d, gated_act(parts[0], parts[1], act_), tap);
  }
  return dense_mlp(x, "gate", "up", "down", tap);
}

}  // namespace sq::rank
