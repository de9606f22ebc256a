// Shared transformer layers as pure functions on tensors (norms, activations, rotary embeddings,
// masks, attention core). Each mirrors what transformers computes, including where it upcasts to
// fp32 (norms, softmax, rope frequencies).
#pragma once

#include <ATen/ATen.h>

#include <optional>

#include "io/model/model_config.h"
#include "rank/model/arch_table.h"

namespace sq::rank::layers {

// Norm over the last dimension in fp32, result cast back to x's dtype. weight/bias may be
// undefined.
at::Tensor norm(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                NormKind kind, double eps);

at::Tensor activate(const at::Tensor& x, Activation a);

// Rotary tables for `positions` [B,T]: cos/sin [B,T,rot_dim] (fp32 then cast to `dtype`),
// already multiplied by the rope type's attention scaling (yarn, longrope). rot_dim = head_dim ·
// partial_rotary_factor (even). `max_pos` is config.max_position_embeddings.
struct Rotary {
  at::Tensor cos, sin;
  int64_t rot_dim = 0;
};
// seq_len > 0 gives max(positions)+1 without reading the device (callers that built the
// positions know it).
Rotary rotary(const io::RopeConfig& rope, int64_t head_dim, int64_t max_pos,
              const at::Tensor& positions, at::ScalarType dtype, RopeStyle style,
              int64_t seq_len = 0);
// Rotates the first rot_dim features of x [B,heads,T,D].
at::Tensor apply_rotary(const at::Tensor& x, const Rotary& r, RopeStyle style);

// Additive attention bias [B,1,T,T] in fp32: 0 where key j is visible from query i (j ≤ i,
// i − j < window when window > 0, key is a real token), −inf elsewhere.
at::Tensor attention_bias(int64_t batch, int64_t seq_len, int64_t window,
                          const at::Tensor& padding_mask, const at::Device& device);

// softmax(q kᵀ · scaling (+softcap) + bias) v with fp32 softmax; q [B,Hq,T,D], k [B,Hkv,T,D],
// v [B,Hkv,T,Dv] (grouped-query heads repeated). softcap ≤ 0 disables soft-capping.
at::Tensor attention_core(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                          const at::Tensor& bias, double scaling, double softcap);

// attention_core() for a causal `bias` (attention_bias(): key j > query i is always masked),
// computed in blocks of `chunk` queries, each against only the keys it can see ([0, end of the
// block)): the masked upper triangle is never multiplied, soft-maxed or stored, so a long
// sequence costs about half the work and chunk/T of the score memory. Equal to attention_core
// up to summation order (tests/rank/model/test_attention_chunked.cpp: relative 2e-6 in fp32). T ≤
// chunk is attention_core itself.
at::Tensor attention_causal_chunked(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                    const at::Tensor& bias, double scaling, double softcap,
                                    int64_t chunk = 128);

// Fused attention (at::scaled_dot_product_attention: flash / memory-efficient kernels, no
// [B,H,T,T] score tensor) for what attention_core() computes from attention_bias(): causal,
// optional sliding window and key padding. Padding *queries* may differ from the eager path
// (they see their own position instead of a uniform mix); every caller drops those rows.
// Available when the LibTorch build has it (≥ 2.1), the tensors are on CUDA, there is no
// soft-capping and SQ_EAGER_ATTENTION is unset (the eager path stays the reference; a GPU test
// compares the two). Callers check fast_attention_usable() first.
bool fast_attention_usable(const at::Tensor& q, double softcap);
at::Tensor attention_fast(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                          int64_t window, const at::Tensor& padding_mask, double scaling);

}  // namespace sq::rank::layers
