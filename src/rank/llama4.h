// Llama 4 (text) pieces the generic block does not have (issue 23): the chunked-attention mask,
// the weight-free L2 qk-norm, the attention temperature of NoPE layers and the fused-expert MLP
// whose routing weight scales the expert input. Free functions on tensors; Block calls them when
// its row is llama4_text (FusedExperts::Llama4, RouterKind::SigmoidTopK) or the config asks.
//
// CONTRACT:
//   chunked_attention_bias(B, T, chunk, padding_mask, device)
//       additive fp32 bias [B,1,T,T]: 0 where key j is visible from query i — j ≤ i, both in the
//       same chunk (i / chunk == j / chunk) and j a real token — else the lowest float (as
//       layers::attention_bias). chunk > 0.
//   l2_norm(x, eps)             x · rsqrt(mean(x², last dim) + eps), computed in fp32, x's dtype.
//   temperature_scales(positions [B,T], floor_scale, attn_scale)
//       [B,1,T,1] fp32: log1p(floor((pos + 1) / floor_scale)) · attn_scale + 1, the factor a
//       NoPE layer multiplies its queries [B,H,T,D] by (attn_temperature_tuning).
//   fused_experts(x, experts, weights, gate_up, down, act)
//       x [N,H]; experts/weights [N,k] (routing); gate_up [E,H,2I] = [gate | up] along the last
//       dim; down [E,I,H]. Per expert on its routed tokens: xe = x · weight (in x's dtype),
//       y = (act(xe gate) · xe up) down; the k outputs of a token summed. Returns [N,H] in x's
//       dtype (the product runs in x's dtype, as transformers' bmm does).
#pragma once

#include <ATen/ATen.h>

#include "rank/arch_table.h"

namespace sq::rank::llama4 {

at::Tensor chunked_attention_bias(int64_t batch, int64_t seq_len, int64_t chunk,
                                  const at::Tensor& padding_mask, const at::Device& device);

at::Tensor l2_norm(const at::Tensor& x, double eps);

at::Tensor temperature_scales(const at::Tensor& positions, double floor_scale, double attn_scale);

at::Tensor fused_experts(const at::Tensor& x, const at::Tensor& experts, const at::Tensor& weights,
                         const at::Tensor& gate_up, const at::Tensor& down, Activation act);

}  // namespace sq::rank::llama4
