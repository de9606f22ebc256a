// Attention masks and the attention core (eager attention as transformers writes it, with the
// softmax and the mask addition in fp32).
#include <algorithm>
#include <cstdlib>
#include <limits>

#include "common/check.h"
#include "rank/model/layers.h"
#include "solvers/cpu_threads.h"

#if __has_include(<torch/version.h>)
#include <torch/version.h>
#endif
#if defined(TORCH_VERSION_MAJOR) && \
    (TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 1))
#define SQ_HAVE_SDPA 1
#else
#define SQ_HAVE_SDPA 0
#endif
// enable_gqa (≥ 2.5): flash attention reads the grouped k/v heads in place instead of copies
// repeated to the query head count.
#if defined(TORCH_VERSION_MAJOR) && \
    (TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 5))
#define SQ_HAVE_SDPA_GQA 1
#else
#define SQ_HAVE_SDPA_GQA 0
#endif

namespace sq::rank::layers {

namespace {

// [B,1,T,T] bool: key j visible from query i (j ≤ i, i − j < window when window > 0, key is a
// real token). Shared by the eager bias and the fused path's mask.
at::Tensor attention_visibility(int64_t batch, int64_t seq_len, int64_t window,
                                const at::Tensor& padding_mask, const at::Device& device) {
  auto opts = at::TensorOptions().dtype(at::kLong).device(device);
  at::Tensor i = at::arange(seq_len, opts).unsqueeze(1), j = at::arange(seq_len, opts).unsqueeze(0);
  at::Tensor visible = j <= i;
  if (window > 0) visible = visible.logical_and(j > i - window);
  visible = visible.unsqueeze(0).unsqueeze(0).expand({batch, 1, seq_len, seq_len});
  if (padding_mask.defined())
    visible =
        visible.logical_and(padding_mask.to(device).to(at::kBool).view({batch, 1, 1, seq_len}));
  return visible;
}

// Grouped-query heads: k/v [B,Hkv,T,D] repeated to q's head count.
at::Tensor repeat_kv(const at::Tensor& kv, int64_t q_heads) {
  const int64_t rep = q_heads / kv.size(1);
  return rep > 1 ? kv.repeat_interleave(rep, 1) : kv;
}

// softmax(q kᵀ · scaling (+softcap) + bias) v for q [B,H,Tq,D] against k/v already repeated to
// H heads [B,H,Tk,·] and bias [B,1,Tq,Tk]; the eager path and each block of the chunked one.
at::Tensor attend_rows(const at::Tensor& q, const at::Tensor& kk, const at::Tensor& vv,
                       const at::Tensor& bias, double scaling, double softcap) {
  at::Tensor scores = at::matmul(q, kk.transpose(-1, -2)) * scaling;
  if (softcap > 0) scores = at::tanh(scores / softcap) * softcap;
  at::Tensor probs = at::softmax(scores.to(at::kFloat) + bias, -1).to(q.scalar_type());
  return at::matmul(probs, vv);
}

}  // namespace

at::Tensor attention_bias(int64_t batch, int64_t seq_len, int64_t window,
                          const at::Tensor& padding_mask, const at::Device& device) {
  const at::Tensor visible = attention_visibility(batch, seq_len, window, padding_mask, device);
  // A finite minimum keeps fully masked rows (padding queries) free of NaN.
  const float lowest = std::numeric_limits<float>::lowest();
  return at::where(visible, at::zeros({}, at::TensorOptions().device(device)),
                   at::full({}, lowest, at::TensorOptions().device(device)));
}

namespace {

// q [B,H,T,D] against k/v already repeated to H heads; query blocks of `chunk` (≤ 0: one block).
at::Tensor attend_chunked(const at::Tensor& q, const at::Tensor& kk, const at::Tensor& vv,
                          const at::Tensor& bias, double scaling, double softcap, int64_t chunk) {
  const int64_t T = q.size(2);
  if (chunk <= 0 || T <= chunk) return attend_rows(q, kk, vv, bias, scaling, softcap);
  at::Tensor out = at::empty({q.size(0), q.size(1), T, vv.size(3)}, vv.options());
  for (int64_t i0 = 0; i0 < T; i0 += chunk) {
    const int64_t i1 = std::min(T, i0 + chunk);
    // Queries [i0, i1) see keys [0, i1) at most; the bias masks the rest of that range.
    out.narrow(2, i0, i1 - i0)
        .copy_(attend_rows(q.narrow(2, i0, i1 - i0), kk.narrow(2, 0, i1), vv.narrow(2, 0, i1),
                           bias.narrow(2, i0, i1 - i0).narrow(3, 0, i1), scaling, softcap));
  }
  return out;
}

// On the CPU one tile per (sample, query head), each computed alone (solvers/cpu_threads.h):
// the same products per head as the batched call, on every thread count; the grouped k/v head
// is read in place instead of repeated.
at::Tensor attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                  const at::Tensor& bias, double scaling, double softcap, int64_t chunk) {
  if (!q.is_cpu())
    return attend_chunked(q, repeat_kv(k, q.size(1)), repeat_kv(v, q.size(1)), bias, scaling,
                          softcap, chunk);
  const int64_t B = q.size(0), H = q.size(1), rep = H / k.size(1);
  at::Tensor out = at::empty({B, H, q.size(2), v.size(3)}, v.options());
  solvers::parallel_tiles(B * H, [&](int64_t i) {
    const int64_t b = i / H, h = i % H, bb = bias.size(0) == 1 ? 0 : b;
    out.select(0, b).select(0, h).copy_(
        attend_chunked(q.narrow(0, b, 1).narrow(1, h, 1), k.narrow(0, b, 1).narrow(1, h / rep, 1),
                       v.narrow(0, b, 1).narrow(1, h / rep, 1), bias.narrow(0, bb, 1), scaling,
                       softcap, chunk)
            .select(0, 0)
            .select(0, 0));
  });
  return out;
}

}  // namespace

at::Tensor attention_core(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                          const at::Tensor& bias, double scaling, double softcap) {
  return attend(q, k, v, bias, scaling, softcap, 0);
}

at::Tensor attention_causal_chunked(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                    const at::Tensor& bias, double scaling, double softcap,
                                    int64_t chunk) {
  return attend(q, k, v, bias, scaling, softcap, chunk);
}

bool fast_attention_usable(const at::Tensor& q, double softcap) {
  static const bool eager_forced = std::getenv("SQ_EAGER_ATTENTION") != nullptr;
  return SQ_HAVE_SDPA && !eager_forced && q.is_cuda() && softcap <= 0;
}

at::Tensor attention_fast(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                          int64_t window, const at::Tensor& padding_mask, double scaling) {
#if SQ_HAVE_SDPA
  const int64_t B = q.size(0), T = q.size(2);
  if (window <= 0 && !padding_mask.defined()) {  // the common case: flash attention, no mask
#if SQ_HAVE_SDPA_GQA
    // Only here and only in half precision (flash): with a mask, or fp32, the memory-efficient
    // kernel would run, and it has no GQA (SDPA would fall back to the math kernel).
    if (k.size(1) != q.size(1) && q.scalar_type() != at::kFloat)
      return at::scaled_dot_product_attention(q, k, v, {}, 0.0, /*is_causal=*/true, scaling,
                                              /*enable_gqa=*/true);
#endif
    return at::scaled_dot_product_attention(q, repeat_kv(k, q.size(1)), repeat_kv(v, q.size(1)), {},
                                            0.0, /*is_causal=*/true, scaling);
  }
  const at::Tensor kk = repeat_kv(k, q.size(1)), vv = repeat_kv(v, q.size(1));
  // The diagonal stays visible so that no row is fully masked (a padding query would otherwise
  // produce NaN in some kernels).
  const at::Tensor diagonal =
      at::eye(T, at::TensorOptions().dtype(at::kBool).device(q.device())).view({1, 1, T, T});
  const at::Tensor visible =
      attention_visibility(B, T, window, padding_mask, q.device()).logical_or(diagonal);
  return at::scaled_dot_product_attention(q, kk, vv, visible, 0.0, false, scaling);
#else
  (void)q, (void)k, (void)v, (void)window, (void)padding_mask, (void)scaling;
  SQ_THROW(InternalError, "attention_fast called in a build without scaled_dot_product_attention");
#endif
}

}  // namespace sq::rank::layers
