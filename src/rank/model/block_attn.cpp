// Attention for the Separate / FusedQkv layouts and for MLA (deepseek). Per-checkpoint traits
// come from config.json: head_dim, KV heads, qk-norms (per head when the norm is head_dim wide,
// over the whole projection otherwise — olmo2), scaling (query_pre_attn_scalar, granite
// attention_multiplier), logit soft-capping, sliding window and the rope of the layer type.
#include <cmath>

#include "common/check.h"
#include "rank/model/block.h"
#include "rank/model/gpt_oss.h"
#include "rank/model/layers.h"
#include "rank/model/llama4.h"

namespace sq::rank {
namespace {

// [B,T,heads*D] → [B,heads,T,D]
at::Tensor heads(const at::Tensor& t, int64_t n, int64_t d) {
  return t.view({t.size(0), t.size(1), n, d}).transpose(1, 2);
}

}  // namespace

layers::Rotary Block::rotary_for(const BlockContext& ctx, int64_t dim) const {
  auto build = [&] {
    return layers::rotary(cfg_.rope_for(layer_type_), dim, cfg_.max_position_embeddings,
                          ctx.positions.to(device_), dtype_, spec_->rope_style,
                          ctx.default_positions_len);
  };
  if (ctx.default_positions_len <= 0) return build();
  const std::array<int64_t, 3> key = {ctx.positions.size(0), ctx.default_positions_len, dim};
  auto it = rotary_cache_.find(key);
  if (it == rotary_cache_.end()) it = rotary_cache_.emplace(key, build()).first;
  return it->second;
}

at::Tensor Block::attend(at::Tensor q, at::Tensor k, const at::Tensor& v, const BlockContext& ctx,
                         double scaling) const {
  const int64_t B = q.size(0), T = q.size(2);
  const int64_t window = sliding_ ? cfg_.sliding_window.value_or(0) : 0;
  // transformers' default (sdpa) attention ignores attn_logit_softcapping; only its eager path
  // applies it. The fixtures (and HF perplexities) follow the default; ctx opts into eager.
  const double softcap = ctx.attn_softcap ? cfg_.get_double("attn_logit_softcapping", 0.0) : 0.0;
  at::Tensor o;  // [B,H,T,Dv]
  const std::string& sinks_rel = spec_->role("sinks");
  auto sinks = sinks_rel.empty() ? extras_.end() : extras_.find(prefix_ + "." + sinks_rel);
  if (attention_chunk_ > 0) {
    // Llama 4 chunked layers: causal within chunks of attention_chunk_size tokens.
    at::Tensor bias =
        llama4::chunked_attention_bias(B, T, attention_chunk_, ctx.padding_mask, device_);
    o = layers::attention_causal_chunked(q, k, v, bias, scaling, softcap);
  } else if (sinks != extras_.end()) {
    // GPT-OSS: a learned per-head logit joins every softmax (no fused kernel takes it).
    at::Tensor bias = layers::attention_bias(B, T, window, ctx.padding_mask, device_);
    o = gpt_oss::attention_with_sinks(q, k, v, sinks->second, bias, scaling);
  } else if (layers::fast_attention_usable(q, softcap)) {
    o = layers::attention_fast(q, k, v, window, ctx.padding_mask, scaling);
  } else {
    at::Tensor bias = layers::attention_bias(B, T, window, ctx.padding_mask, device_);
    // attention_bias is causal, so the query-chunked form applies (half the work and chunk/T of
    // the score memory at long sequence lengths; the CPU path spends most of its time here).
    o = layers::attention_causal_chunked(q, k, v, bias, scaling, softcap);
  }
  return o.transpose(1, 2).reshape({B, T, -1});
}

at::Tensor Block::attention(const at::Tensor& x, const BlockContext& ctx,
                            ActivationTap* tap) const {
  if (spec_->attn == AttnKind::Mla) return attention_mla(x, ctx, tap);
  if (layer_type_ == "linear_attention") return attention_linear(x, ctx, tap);
  const int64_t B = x.size(0), T = x.size(1);
  const int64_t nh = cfg_.num_attention_heads, hd = cfg_.head_dim;
  int64_t nkv = cfg_.num_key_value_heads;
  at::Tensor q, k, v, gate;
  if (spec_->attn == AttnKind::FusedQkv) {
    const Linear* qkv = find_linear_role("qkv");
    SQ_REQUIRE(qkv, "block " << prefix_ << ": missing fused qkv linear");
    at::Tensor f = apply_linear(*qkv, x, tap);
    switch (spec_->qkv_layout) {
      case QkvLayout::NeoxPerHead: {
        auto parts = f.view({B, T, nh, 3 * hd}).chunk(3, -1);
        q = parts[0].reshape({B, T, nh * hd});
        k = parts[1].reshape({B, T, nh * hd});
        v = parts[2].reshape({B, T, nh * hd});
        break;
      }
      case QkvLayout::FalconGrouped: {
        at::Tensor g = f.view({B, T, nkv, nh / nkv + 2, hd});
        q = g.narrow(3, 0, nh / nkv).reshape({B, T, nh * hd});
        k = g.narrow(3, nh / nkv, 1).reshape({B, T, nkv * hd});
        v = g.narrow(3, nh / nkv + 1, 1).reshape({B, T, nkv * hd});
        break;
      }
      default: {
        auto parts = f.split_with_sizes({nh * hd, nkv * hd, nkv * hd}, -1);
        q = parts[0], k = parts[1], v = parts[2];
      }
    }
    if (spec_->qkv_layout == QkvLayout::NeoxPerHead) nkv = nh;
  } else {
    const Linear *lq = find_linear_role("q"), *lk = find_linear_role("k"),
                 *lv = find_linear_role("v");
    SQ_REQUIRE(lq && lk && lv, "block " << prefix_ << ": missing q/k/v linears");
    q = apply_linear(*lq, x, tap);
    if (spec_->gated_attention) {
      // qwen3_next: per head [query | gate].
      auto qg = q.view({B, T, nh, 2 * hd}).chunk(2, -1);
      q = qg[0].reshape({B, T, nh * hd});
      gate = qg[1].reshape({B, T, nh * hd});
    }
    k = apply_linear(*lk, x, tap);
    v = apply_linear(*lv, x, tap);
  }
  const Norm* qn = find_norm_role("q_norm");
  const Norm* kn = find_norm_role("k_norm");
  // Whole-projection qk-norm (olmo2) runs before the head split.
  if (qn && qn->weight.numel() != hd) q = apply_norm(qn, q);
  if (kn && kn->weight.numel() != hd) k = apply_norm(kn, k);
  at::Tensor qh = heads(q, nh, hd), kh = heads(k, nkv, hd), vh = heads(v, nkv, hd);
  if (qn && qn->weight.numel() == hd) qh = apply_norm(qn, qh);
  if (kn && kn->weight.numel() == hd) kh = apply_norm(kn, kh);
  if (spec_->rope && use_rope_) {
    const layers::Rotary r = rotary_for(ctx, hd);
    qh = layers::apply_rotary(qh, r, spec_->rope_style);
    kh = layers::apply_rotary(kh, r, spec_->rope_style);
    if (spec_->l2_qk_norm && cfg_.get_bool("use_qk_norm", false)) {
      qh = llama4::l2_norm(qh, cfg_.norm_eps);
      kh = llama4::l2_norm(kh, cfg_.norm_eps);
    }
  } else if (cfg_.get_bool("attn_temperature_tuning", false)) {
    // Llama 4 NoPE layers: queries sharpened with the position (long-context temperature).
    qh = (qh.to(at::kFloat) * llama4::temperature_scales(ctx.positions.to(device_),
                                                         cfg_.get_double("floor_scale", 8192),
                                                         cfg_.get_double("attn_scale", 0.1)))
             .to(qh.scalar_type());
  }
  double scaling = 1.0 / std::sqrt(static_cast<double>(hd));
  if (cfg_.has("query_pre_attn_scalar"))
    scaling = 1.0 / std::sqrt(cfg_.get_double("query_pre_attn_scalar", hd));
  if (cfg_.has("attention_multiplier")) scaling = cfg_.get_double("attention_multiplier", scaling);
  at::Tensor o = attend(qh, kh, vh, ctx, scaling);
  if (gate.defined()) o = o * at::sigmoid(gate);
  const Linear* lo = find_linear_role("o");
  SQ_REQUIRE(lo, "block " << prefix_ << ": missing attention output linear");
  return apply_linear(*lo, o, tap);
}

// Multi-head latent attention: low-rank q (q_a → norm → q_b, or a plain q_proj), compressed kv
// (kv_a → [latent; shared rope key]) expanded by kv_b into per-head nope keys and values.
at::Tensor Block::attention_mla(const at::Tensor& x, const BlockContext& ctx,
                                ActivationTap* tap) const {
  const int64_t B = x.size(0), T = x.size(1), nh = cfg_.num_attention_heads;
  const int64_t nope = cfg_.get_int("qk_nope_head_dim", 128);
  const int64_t rope = cfg_.get_int("qk_rope_head_dim", 64);
  const int64_t vd = cfg_.get_int("v_head_dim", 128);
  const int64_t rank = cfg_.get_int("kv_lora_rank", 512);
  at::Tensor q;
  if (const Linear* qa = find_linear_role("q_a")) {
    const Linear* qb = find_linear_role("q_b");
    SQ_REQUIRE(qb, "block " << prefix_ << ": q_a_proj without q_b_proj");
    q = apply_linear(*qb, apply_norm(find_norm_role("q_a_norm"), apply_linear(*qa, x, tap)), tap);
  } else {
    const Linear* qp = find_linear_role("q_proj");
    SQ_REQUIRE(qp, "block " << prefix_ << ": missing q_proj / q_a_proj");
    q = apply_linear(*qp, x, tap);
  }
  at::Tensor qh = heads(q, nh, nope + rope);
  at::Tensor q_nope = qh.narrow(-1, 0, nope), q_pe = qh.narrow(-1, nope, rope);
  const Linear *kva = find_linear_role("kv_a"), *kvb = find_linear_role("kv_b");
  SQ_REQUIRE(kva && kvb, "block " << prefix_ << ": missing kv_a_proj_with_mqa / kv_b_proj");
  at::Tensor ckv = apply_linear(*kva, x, tap);
  at::Tensor latent = ckv.narrow(-1, 0, rank), k_pe = ckv.narrow(-1, rank, rope);
  at::Tensor kv = heads(apply_linear(*kvb, apply_norm(find_norm_role("kv_a_norm"), latent), tap),
                        nh, nope + vd);
  at::Tensor k_nope = kv.narrow(-1, 0, nope), v = kv.narrow(-1, nope, vd);
  at::Tensor kpe = k_pe.view({B, 1, T, rope});
  const layers::Rotary r = rotary_for(ctx, rope);
  q_pe = layers::apply_rotary(q_pe, r, spec_->rope_style);
  kpe = layers::apply_rotary(kpe, r, spec_->rope_style).expand({B, nh, T, rope});
  at::Tensor qq = at::cat({q_nope, q_pe}, -1), kk = at::cat({k_nope, kpe}, -1);
  double scaling = 1.0 / std::sqrt(static_cast<double>(nope + rope));
  const auto& rp = cfg_.rope.params;
  if (cfg_.rope.type == "yarn" && rp.contains("mscale_all_dim") &&
      rp["mscale_all_dim"].is_number()) {
    const double m = rp["mscale_all_dim"].get<double>(), f = rp.value("factor", 1.0);
    if (m > 0 && f > 1) {
      const double mscale = 0.1 * m * std::log(f) + 1.0;
      scaling *= mscale * mscale;
    }
  }
  at::Tensor o = attend(qq, kk, v, ctx, scaling);
  const Linear* lo = find_linear_role("o");
  SQ_REQUIRE(lo, "block " << prefix_ << ": missing o_proj");
  return apply_linear(*lo, o, tap);
}

}  // namespace sq::rank
