// GPT-OSS pieces the generic block does not have (issue 23): attention with learned sinks and
// the fused-expert MLP. Both are free functions on tensors; Block calls them when its row names
// the "sinks" / "fused_gate_up" roles.
//
// CONTRACT:
//   attention_with_sinks(q, k, v, sinks, bias, scaling)
//       q [B,Hq,T,D], k/v [B,Hkv,T,D] (grouped-query heads repeated), sinks [Hq] (one learned
//       logit per head), bias [B,1,T,T] additive (layers::attention_bias). Softmax over each
//       row's scores and its head's sink logit together (fp32), the sink's share dropped:
//       returns [B,Hq,T,D] = Σ_j p_j v_j with Σ_j p_j = 1 − p_sink.
//   fused_experts(x, experts, weights, gate_up, gate_up_bias, down, down_bias, alpha, limit)
//       x [N,H]; experts/weights [N,k] (routing); gate_up [E,H,2I] with gate and up
//       interleaved along the last dim (gate = [..., 0::2], up = [..., 1::2]), gate_up_bias
//       [E,2I], down [E,I,H], down_bias [E,H]. Per expert on its routed tokens:
//       g = min(gate, limit), u = clamp(up, −limit, limit), y = ((u + 1) · g·σ(α g)) down +
//       down_bias, weighted by the routing weight and summed. Returns [N,H] in x's dtype.
#pragma once

#include <ATen/ATen.h>

namespace sq::rank::gpt_oss {

at::Tensor attention_with_sinks(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                const at::Tensor& sinks, const at::Tensor& bias, double scaling);

at::Tensor fused_experts(const at::Tensor& x, const at::Tensor& experts, const at::Tensor& weights,
                         const at::Tensor& gate_up, const at::Tensor& gate_up_bias,
                         const at::Tensor& down, const at::Tensor& down_bias, double alpha,
                         double limit);

}  // namespace sq::rank::gpt_oss
