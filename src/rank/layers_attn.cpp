// Attention masks and the attention core (eager attention as transformers writes it, with the
// softmax and the mask addition in fp32).
#include <limits>

#include "rank/layers.h"

namespace sq::rank::layers {

at::Tensor attention_bias(int64_t batch, int64_t seq_len, int64_t window,
                          const at::Tensor& padding_mask, const at::Device& device) {
  auto opts = at::TensorOptions().dtype(at::kLong).device(device);
  at::Tensor i = at::arange(seq_len, opts).unsqueeze(1), j = at::arange(seq_len, opts).unsqueeze(0);
  at::Tensor visible = j <= i;
  if (window > 0) visible = visible.logical_and(j > i - window);
  visible = visible.unsqueeze(0).unsqueeze(0).expand({batch, 1, seq_len, seq_len});
  if (padding_mask.defined())
    visible =
        visible.logical_and(padding_mask.to(device).to(at::kBool).view({batch, 1, 1, seq_len}));
  // A finite minimum keeps fully masked rows (padding queries) free of NaN.
  const float lowest = std::numeric_limits<float>::lowest();
  return at::where(visible, at::zeros({}, at::TensorOptions().device(device)),
                   at::full({}, lowest, at::TensorOptions().device(device)));
}

at::Tensor attention_core(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                          const at::Tensor& bias, double scaling, double softcap) {
  const int64_t rep = q.size(1) / k.size(1);
  at::Tensor kk = rep > 1 ? k.repeat_interleave(rep, 1) : k;
  at::Tensor vv = rep > 1 ? v.repeat_interleave(rep, 1) : v;
  at::Tensor scores = at::matmul(q, kk.transpose(-1, -2)) * scaling;
  if (softcap > 0) scores = at::tanh(scores / softcap) * softcap;
  at::Tensor probs = at::softmax(scores.to(at::kFloat) + bias, -1).to(q.scalar_type());
  return at::matmul(probs, vv);
}

}  // namespace sq::rank::layers
