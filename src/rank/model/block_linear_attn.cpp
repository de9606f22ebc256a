// Qwen3-Next's Gated DeltaNet layers: the quantizable projections run through apply_linear (so
// the tap sees their inputs), the recurrence itself through rank/model/qwen3_next.h.
#include "common/check.h"
#include "rank/model/block.h"
#include "rank/model/qwen3_next.h"

namespace sq::rank {

at::Tensor Block::attention_linear(const at::Tensor& x_in, const BlockContext& ctx,
                                   ActivationTap* tap) const {
  const Linear *qkvz = find_linear_role("lin_qkvz"), *ba = find_linear_role("lin_ba"),
               *out = find_linear_role("lin_out");
  const Norm* norm = find_norm_role("lin_norm");
  auto param = [&](const std::string& role) {
    auto it = extras_.find(prefix_ + "." + spec_->role(role));
    SQ_REQUIRE(it != extras_.end(), "block " << prefix_ << ": missing " << spec_->role(role));
    return it->second;
  };
  SQ_REQUIRE(qkvz && ba && out && norm,
             "block " << prefix_ << ": linear_attention layer without in_proj_qkvz, in_proj_ba, "
                      << "out_proj or norm");
  const int64_t nk = cfg_.get_int("linear_num_key_heads", 0);
  const int64_t nv = cfg_.get_int("linear_num_value_heads", 0);
  const int64_t dk = cfg_.get_int("linear_key_head_dim", 0);
  const int64_t dv = cfg_.get_int("linear_value_head_dim", 0);
  SQ_REQUIRE(nk > 0 && nv > 0 && dk > 0 && dv > 0 && nv % nk == 0,
             cfg_.path << ": linear_num_key_heads / linear_num_value_heads / linear_key_head_dim "
                       << "/ linear_value_head_dim must be positive, value heads a multiple of "
                       << "key heads (got " << nk << ", " << nv << ", " << dk << ", " << dv << ")");
  at::Tensor x = x_in;
  if (ctx.padding_mask.defined())  // padded positions feed nothing into the recurrence
    x = x * ctx.padding_mask.to(x.device()).to(x.scalar_type()).unsqueeze(-1);
  const int64_t B = x.size(0), T = x.size(1);
  auto parts = qwen3_next::split_qkvz(apply_linear(*qkvz, x, tap), apply_linear(*ba, x, tap), nk,
                                      nv, dk, dv);
  at::Tensor mixed = qwen3_next::causal_conv_silu(at::cat({parts[0], parts[1], parts[2]}, -1),
                                                  param("lin_param_conv"));
  auto qkv = mixed.split_with_sizes({nk * dk, nk * dk, nv * dv}, -1);
  at::Tensor q = qkv[0].reshape({B, T, nk, dk}), k = qkv[1].reshape({B, T, nk, dk});
  at::Tensor v = qkv[2].reshape({B, T, nv, dv});
  at::Tensor beta = at::sigmoid(parts[4]);
  at::Tensor g = -param("lin_param_A_log").to(at::kFloat).exp() *
                 at::softplus(parts[5].to(at::kFloat) + param("lin_param_dt_bias").to(at::kFloat));
  if (nv > nk) {
    q = q.repeat_interleave(nv / nk, 2);
    k = k.repeat_interleave(nv / nk, 2);
  }
  at::Tensor core = qwen3_next::gated_delta_rule(q, k, v, g, beta);
  at::Tensor normed = qwen3_next::gated_rms_norm(core.reshape({-1, dv}), parts[3].reshape({-1, dv}),
                                                 norm->weight, cfg_.norm_eps);
  return apply_linear(*out, normed.reshape({B, T, nv * dv}), tap);
}

}  // namespace sq::rank
