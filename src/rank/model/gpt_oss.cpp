// GPT-OSS attention sinks and fused experts (contracts in gpt_oss.h). Both run in fp32 and cast
// back: the sink softmax like every softmax here, the experts because their tensors stay in
// floating point (they are not quantized, see arch_table.cpp) and are held as fp32 extras.
#include "rank/model/gpt_oss.h"

namespace sq::rank::gpt_oss {

at::Tensor attention_with_sinks(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                const at::Tensor& sinks, const at::Tensor& bias, double scaling) {
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), rep = H / k.size(1);
  at::Tensor kk = rep == 1 ? k : k.repeat_interleave(rep, 1);
  at::Tensor vv = rep == 1 ? v : v.repeat_interleave(rep, 1);
  at::Tensor scores = at::matmul(q.to(at::kFloat), kk.to(at::kFloat).transpose(-1, -2)) * scaling;
  scores = scores + bias.to(scores.device());
  at::Tensor sink = sinks.to(at::kFloat).reshape({1, H, 1, 1}).expand({B, H, T, 1});
  at::Tensor p = at::softmax(at::cat({scores, sink}, -1), -1).narrow(-1, 0, scores.size(-1));
  return at::matmul(p, vv.to(at::kFloat)).to(q.scalar_type());
}

at::Tensor fused_experts(const at::Tensor& x, const at::Tensor& experts, const at::Tensor& weights,
                         const at::Tensor& gate_up, const at::Tensor& gate_up_bias,
                         const at::Tensor& down, const at::Tensor& down_bias, double alpha,
                         double limit) {
  at::Tensor xf = x.to(at::kFloat);
  at::Tensor out = at::zeros_like(xf);
  for (int64_t e = 0; e < gate_up.size(0); ++e) {
    at::Tensor hit = (experts == e).nonzero();  // [n,2]: token, slot
    if (hit.size(0) == 0) continue;
    at::Tensor tok = hit.select(1, 0), slot = hit.select(1, 1);
    at::Tensor h = at::matmul(xf.index_select(0, tok), gate_up[e]) + gate_up_bias[e];
    at::Tensor g = h.slice(-1, 0, h.size(-1), 2).clamp_max(limit);
    at::Tensor u = h.slice(-1, 1, h.size(-1), 2).clamp(-limit, limit);
    at::Tensor y = at::matmul((u + 1) * (g * at::sigmoid(g * alpha)), down[e]) + down_bias[e];
    out.index_add_(0, tok, y * weights.index({tok, slot}).to(at::kFloat).unsqueeze(-1));
  }
  return out.to(x.scalar_type());
}

}  // namespace sq::rank::gpt_oss
