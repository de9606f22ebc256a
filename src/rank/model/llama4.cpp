// Llama 4 chunked attention, L2 qk-norm and NoPE temperature (contracts in llama4.h).
#include "rank/model/llama4.h"

#include <limits>

#include "rank/model/layers.h"

namespace sq::rank::llama4 {

at::Tensor chunked_attention_bias(int64_t batch, int64_t seq_len, int64_t chunk,
                                  const at::Tensor& padding_mask, const at::Device& device) {
  auto opts = at::TensorOptions().dtype(at::kLong).device(device);
  at::Tensor i = at::arange(seq_len, opts).unsqueeze(1), j = at::arange(seq_len, opts).unsqueeze(0);
  at::Tensor visible = (j <= i).logical_and(i.div(chunk, "floor") == j.div(chunk, "floor"));
  visible = visible.unsqueeze(0).unsqueeze(0).expand({batch, 1, seq_len, seq_len});
  if (padding_mask.defined())
    visible =
        visible.logical_and(padding_mask.to(device).to(at::kBool).view({batch, 1, 1, seq_len}));
  const float lowest = std::numeric_limits<float>::lowest();
  return at::where(visible, at::zeros({}, at::TensorOptions().device(device)),
                   at::full({}, lowest, at::TensorOptions().device(device)));
}

at::Tensor l2_norm(const at::Tensor& x, double eps) {
  at::Tensor f = x.to(at::kFloat);
  return (f * at::rsqrt(f.pow(2).mean(-1, true) + eps)).to(x.scalar_type());
}

at::Tensor temperature_scales(const at::Tensor& positions, double floor_scale, double attn_scale) {
  at::Tensor p = positions.to(at::kFloat);
  at::Tensor s = at::log1p(at::floor((p + 1.0) / floor_scale)) * attn_scale + 1.0;
  return s.unsqueeze(1).unsqueeze(-1);
}

}  // namespace sq::rank::llama4
