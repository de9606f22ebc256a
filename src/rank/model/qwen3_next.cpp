// Gated DeltaNet pieces (contracts in qwen3_next.h). The recurrence runs token by token in fp32:
// the same sums as transformers' chunked form up to summation order.
#include "rank/model/qwen3_next.h"

#include <cmath>
#include <vector>

namespace sq::rank::qwen3_next {

std::array<at::Tensor, 6> split_qkvz(const at::Tensor& qkvz, const at::Tensor& ba, int64_t nk,
                                     int64_t nv, int64_t dk, int64_t dv) {
  const int64_t B = qkvz.size(0), T = qkvz.size(1), r = nv / nk;
  auto parts =
      qkvz.view({B, T, nk, 2 * dk + 2 * r * dv}).split_with_sizes({dk, dk, r * dv, r * dv}, 3);
  auto bap = ba.view({B, T, nk, 2 * r}).split_with_sizes({r, r}, 3);
  return {parts[0].reshape({B, T, nk * dk}), parts[1].reshape({B, T, nk * dk}),
          parts[2].reshape({B, T, nv * dv}), parts[3].reshape({B, T, nv * dv}),
          bap[0].reshape({B, T, nv}),        bap[1].reshape({B, T, nv})};
}

at::Tensor causal_conv_silu(const at::Tensor& x, const at::Tensor& weight) {
  const int64_t T = x.size(1), C = x.size(2), K = weight.size(-1);
  at::Tensor y = at::conv1d(x.transpose(1, 2), weight.to(x.scalar_type()), {}, {1}, {K - 1}, {1}, C)
                     .narrow(2, 0, T);
  return at::silu(y).transpose(1, 2);
}

at::Tensor gated_delta_rule(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                            const at::Tensor& g, const at::Tensor& beta) {
  auto l2 = [](const at::Tensor& x) { return x * at::rsqrt((x * x).sum(-1, true) + 1e-6); };
  // [B,H,T,·] in fp32, as transformers transposes them.
  at::Tensor qf = l2(q).transpose(1, 2).to(at::kFloat), kf = l2(k).transpose(1, 2).to(at::kFloat);
  at::Tensor vf = v.transpose(1, 2).to(at::kFloat);
  at::Tensor gf = g.transpose(1, 2).to(at::kFloat), bf = beta.transpose(1, 2).to(at::kFloat);
  qf = qf * (1.0 / std::sqrt(static_cast<double>(q.size(-1))));
  const int64_t B = qf.size(0), H = qf.size(1), T = qf.size(2), dk = qf.size(3), dv = vf.size(3);
  at::Tensor S = at::zeros({B, H, dk, dv}, vf.options());
  std::vector<at::Tensor> outs;
  outs.reserve(T);
  for (int64_t t = 0; t < T; ++t) {
    at::Tensor q_t = qf.select(2, t), k_t = kf.select(2, t), v_t = vf.select(2, t);
    S = S * gf.select(2, t).exp().unsqueeze(-1).unsqueeze(-1);
    at::Tensor kv_mem = (S * k_t.unsqueeze(-1)).sum(-2);
    at::Tensor delta = (v_t - kv_mem) * bf.select(2, t).unsqueeze(-1);
    S = S + k_t.unsqueeze(-1) * delta.unsqueeze(-2);
    outs.push_back((S * q_t.unsqueeze(-1)).sum(-2));
  }
  return at::stack(outs, 2).transpose(1, 2).contiguous().to(v.scalar_type());
}

at::Tensor gated_rms_norm(const at::Tensor& x, const at::Tensor& z, const at::Tensor& weight,
                          double eps) {
  at::Tensor f = x.to(at::kFloat);
  at::Tensor n = (f * at::rsqrt(f.pow(2).mean(-1, true) + eps)).to(x.scalar_type());
  at::Tensor h = weight.to(x.scalar_type()) * n;
  return (h.to(at::kFloat) * at::silu(z.to(at::kFloat))).to(x.scalar_type());
}

}  // namespace sq::rank::qwen3_next
