// Attention masks and the attention core (eager attention as transformers writes it, with the
// softmax and the mask addition in fp32).
#include <cstdlib>
#include <limits>

#include "common/check.h"
#include "rank/layers.h"

#if __has_include(<torch/version.h>)
#include <torch/version.h>
#endif
#if defined(TORCH_VERSION_MAJOR) && \
    (TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 1))
#define SQ_HAVE_SDPA 1
#else
#define SQ_HAVE_SDPA 0
#endif

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

bool fast_attention_usable(const at::Tensor& q, double softcap) {
  static const bool eager_forced = std::getenv("SQ_EAGER_ATTENTION") != nullptr;
  return SQ_HAVE_SDPA && !eager_forced && q.is_cuda() && softcap <= 0;
}

at::Tensor attention_fast(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                          int64_t window, const at::Tensor& padding_mask, double scaling) {
#if SQ_HAVE_SDPA
  const int64_t B = q.size(0), T = q.size(2), rep = q.size(1) / k.size(1);
  at::Tensor kk = rep > 1 ? k.repeat_interleave(rep, 1) : k;
  at::Tensor vv = rep > 1 ? v.repeat_interleave(rep, 1) : v;
  if (window <= 0 && !padding_mask.defined())  // the common case: flash attention, no mask
    return at::scaled_dot_product_attention(q, kk, vv, {}, 0.0, /*is_causal=*/true, scaling);
  // Boolean visibility; the diagonal stays visible so that no row is fully masked (a padding
  // query would otherwise produce NaN in some kernels).
  auto opts = at::TensorOptions().dtype(at::kLong).device(q.device());
  at::Tensor i = at::arange(T, opts).unsqueeze(1), j = at::arange(T, opts).unsqueeze(0);
  at::Tensor visible = j <= i;
  if (window > 0) visible = visible.logical_and(j > i - window);
  visible = visible.unsqueeze(0).unsqueeze(0).expand({B, 1, T, T});
  if (padding_mask.defined())
    visible = visible.logical_and(padding_mask.to(q.device()).to(at::kBool).view({B, 1, 1, T}));
  visible = visible.logical_or(i == j);
  return at::scaled_dot_product_attention(q, kk, vv, visible, 0.0, false, scaling);
#else
  (void)q, (void)k, (void)v, (void)window, (void)padding_mask, (void)scaling;
  SQ_THROW(InternalError, "attention_fast called in a build without scaled_dot_product_attention");
#endif
}

}  // namespace sq::rank::layers
