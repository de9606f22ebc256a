// Qwen3-Next's Gated DeltaNet token mixer (issue 23) as free functions on tensors; Block's
// linear-attention layers (layer_types "linear_attention") call them around their quantizable
// projections in_proj_qkvz, in_proj_ba and out_proj. The conv weight, A_log and dt_bias are
// kept in floating point.
//
// CONTRACT (nk key heads of dk, nv value heads of dv, r = nv / nk):
//   split_qkvz(qkvz [B,T,nk·(2dk+2r·dv)], ba [B,T,nk·2r], nk, nv, dk, dv) → {q, k, v, z, b, a}:
//       per key head the projection holds [q (dk) | k (dk) | v (r·dv) | z (r·dv)] and
//       [b (r) | a (r)]. q, k: [B,T,nk·dk]; v, z: [B,T,nv·dv]; b, a: [B,T,nv].
//   causal_conv_silu(x [B,T,C], weight [C,1,K]) → [B,T,C]: the depthwise causal convolution
//       (zero left context) followed by SiLU, in x's dtype.
//   gated_delta_rule(q [B,T,nv,dk], k [B,T,nv,dk], v [B,T,nv,dv], g [B,T,nv], beta [B,T,nv])
//       → [B,T,nv,dv] in v's dtype: q, k L2-normalized (eps 1e-6 under the root of the sum of
//       squares), q scaled by dk^−½, then per head with state S [dk,dv] = 0:
//       S ← S·exp(g_t); S ← S + k_t ⊗ (v_t − Sᵀk_t)·β_t; o_t = Sᵀq_t (fp32 throughout).
//   gated_rms_norm(x [N,d], z [N,d], weight [d], eps) → [N,d] in x's dtype:
//       weight · (x · rsqrt(mean x² + eps)) · silu(z), the norm in fp32.
#pragma once

#include <ATen/ATen.h>

#include <array>

namespace sq::rank::qwen3_next {

std::array<at::Tensor, 6> split_qkvz(const at::Tensor& qkvz, const at::Tensor& ba, int64_t nk,
                                     int64_t nv, int64_t dk, int64_t dv);

at::Tensor causal_conv_silu(const at::Tensor& x, const at::Tensor& weight);

at::Tensor gated_delta_rule(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                            const at::Tensor& g, const at::Tensor& beta);

at::Tensor gated_rms_norm(const at::Tensor& x, const at::Tensor& z, const at::Tensor& weight,
                          double eps);

}  // namespace sq::rank::qwen3_next
