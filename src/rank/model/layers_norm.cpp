// Norms and activations. Every norm computes in fp32 and returns x's dtype, as transformers'
// RMSNorm/LayerNorm modules do for half-precision inputs.
#include "common/check.h"
#include "rank/model/layers.h"
#include "solvers/cpu_tiles.h"

namespace sq::rank::layers {

at::Tensor norm(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                NormKind kind, double eps) {
  const auto in_dtype = x.scalar_type();
  at::Tensor h = x.to(at::kFloat);
  switch (kind) {
    case NormKind::Rms:
    case NormKind::RmsPlusOne: {
      h = h * at::rsqrt(h.pow(2).mean(-1, /*keepdim=*/true) + eps);
      if (kind == NormKind::RmsPlusOne) {
        if (weight.defined()) h = h * (weight.to(at::kFloat) + 1.0);
        return h.to(in_dtype);
      }
      // Llama casts back before the weight multiply; identical in fp32.
      h = h.to(in_dtype);
      return weight.defined() ? h * weight.to(in_dtype) : h;
    }
    case NormKind::LayerNorm:
    case NormKind::LayerNormNoBias: {
      at::Tensor mean = h.mean(-1, true);
      at::Tensor c = h - mean;
      h = c * at::rsqrt(c.pow(2).mean(-1, true) + eps);
      if (weight.defined()) h = h * weight.to(at::kFloat);
      if (bias.defined() && kind == NormKind::LayerNorm) h = h + bias.to(at::kFloat);
      return h.to(in_dtype);
    }
  }
  SQ_CHECK(false, "unhandled norm kind");
}

namespace {

at::Tensor activate_all(const at::Tensor& x, Activation a) {
  switch (a) {
    case Activation::Silu:
      return at::silu(x);
    case Activation::GeluTanh:
      return at::gelu(x, "tanh");
    case Activation::GeluErf:
      return at::gelu(x);
    case Activation::Relu:
      return at::relu(x);
  }
  SQ_CHECK(false, "unhandled activation");
}

}  // namespace

at::Tensor activate(const at::Tensor& x, Activation a) {
  // CPU: row tiles (silu, gelu… round differently on ATen's scalar and vector paths, and ATen
  // would put its thread splits anywhere).
  return solvers::tiles::map_rows(x, [a](const at::Tensor& t) { return activate_all(t, a); });
}

}  // namespace sq::rank::layers
