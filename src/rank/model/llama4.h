// Llama 4 (text) pieces the generic block does not have (issue 23): the chunked-attention mask,
// the weight-free L2 qk-norm and the attention temperature of NoPE layers. Free functions on
// tensors; Block calls them when its row is llama4_text or the config asks. (The routed experts
// are per-expert linears, io/model/expert_split.h; ArchSpec::routing_weight_on_input.)
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
#pragma once

#include <ATen/ATen.h>

#include "rank/model/arch_table.h"

namespace sq::rank::llama4 {

at::Tensor chunked_attention_bias(int64_t batch, int64_t seq_len, int64_t chunk,
                                  const at::Tensor& padding_mask, const at::Device& device);

at::Tensor l2_norm(const at::Tensor& x, double eps);

at::Tensor temperature_scales(const at::Tensor& positions, double floor_scale, double attn_scale);

}  // namespace sq::rank::llama4
