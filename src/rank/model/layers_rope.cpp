// Rotary embeddings. Inverse frequencies are computed in fp32 exactly as transformers'
// rope-init functions do; each rope type adjusts them through one row of kRopeTypes.
#include <cmath>
#include <functional>

#include "common/check.h"
#include "rank/model/fused.h"
#include "rank/model/layers.h"

namespace sq::rank::layers {
namespace {

struct RopeInit {
  at::Tensor inv_freq;  // [dim/2] fp32
  double attention_scaling = 1.0;
};

double param(const io::RopeConfig& r, const char* key, double fallback) {
  auto it = r.params.find(key);
  return (it != r.params.end() && it->is_number()) ? it->get<double>() : fallback;
}

at::Tensor base_inv_freq(double theta, int64_t dim) {
  at::Tensor exponent = at::arange(0, dim, 2, at::kLong).to(at::kFloat) / static_cast<float>(dim);
  return 1.0 / at::pow(theta, exponent);
}

RopeInit init_default(const io::RopeConfig& r, int64_t dim, int64_t, int64_t) {
  return {base_inv_freq(r.theta, dim), 1.0};
}
RopeInit init_linear(const io::RopeConfig& r, int64_t dim, int64_t, int64_t) {
  return {base_inv_freq(r.theta, dim) / param(r, "factor", 1.0), 1.0};
}
// Dynamic NTK: the base grows only once the sequence exceeds the trained length.
RopeInit init_dynamic(const io::RopeConfig& r, int64_t dim, int64_t max_pos, int64_t seq_len) {
  const double factor = param(r, "factor", 1.0);
  const double orig = param(r, "original_max_position_embeddings", static_cast<double>(max_pos));
  double base = r.theta;
  if (seq_len > orig)
    base = r.theta * std::pow(factor * seq_len / orig - (factor - 1), dim / (dim - 2.0));
  return {base_inv_freq(base, dim), 1.0};
}
RopeInit init_llama3(const io::RopeConfig& r, int64_t dim, int64_t, int64_t) {
  at::Tensor inv = base_inv_freq(r.theta, dim);
  const double factor = param(r, "factor", 8.0);
  const double lo = param(r, "low_freq_factor", 1.0);
  const double hi = param(r, "high_freq_factor", 4.0);
  const double old_ctx = param(r, "original_max_position_embeddings", 8192);
  const double lo_wavelen = old_ctx / lo, hi_wavelen = old_ctx / hi;
  at::Tensor wavelen = 2 * M_PI / inv;
  at::Tensor scaled = at::where(wavelen > lo_wavelen, inv / factor, inv);
  at::Tensor smooth = (old_ctx / wavelen - lo) / (hi - lo);
  at::Tensor smoothed = (1 - smooth) * scaled / factor + smooth * scaled;
  at::Tensor medium =
      at::logical_not(wavelen < hi_wavelen).logical_and(at::logical_not(wavelen > lo_wavelen));
  return {at::where(medium, smoothed, scaled), 1.0};
}
// YaRN: blend interpolated and extrapolated frequencies over a linear ramp of dimensions.
RopeInit init_yarn(const io::RopeConfig& r, int64_t dim, int64_t max_pos, int64_t) {
  const double factor = param(r, "factor", 1.0);
  const double orig = param(r, "original_max_position_embeddings", static_cast<double>(max_pos));
  const double beta_fast = param(r, "beta_fast", 32), beta_slow = param(r, "beta_slow", 1);
  auto get_mscale = [](double scale, double m) {
    return scale <= 1 ? 1.0 : 0.1 * m * std::log(scale) + 1.0;
  };
  double attn = param(r, "attention_factor", 0);
  if (attn == 0) {
    const double ms = param(r, "mscale", 0), msad = param(r, "mscale_all_dim", 0);
    attn = (ms != 0 && msad != 0) ? get_mscale(factor, ms) / get_mscale(factor, msad)
                                  : get_mscale(factor, 1.0);
  }
  auto corr = [&](double rot) {
    return (dim * std::log(orig / (rot * 2 * M_PI))) / (2 * std::log(r.theta));
  };
  double low = corr(beta_fast), high = corr(beta_slow);
  // transformers rounds the correction range outwards unless the config says truncate: false
  // (GPT-OSS).
  const auto trunc = r.params.find("truncate");
  if (trunc == r.params.end() || !trunc->is_boolean() || trunc->get<bool>())
    low = std::floor(low), high = std::ceil(high);
  low = std::max(low, 0.0);
  high = std::min(high, static_cast<double>(dim - 1));
  if (low == high) high += 0.001;
  at::Tensor pos_freqs = at::pow(r.theta, at::arange(0, dim, 2, at::kLong).to(at::kFloat) / dim);
  at::Tensor extra = 1.0 / pos_freqs, inter = 1.0 / (factor * pos_freqs);
  at::Tensor ramp = ((at::arange(dim / 2, at::kFloat) - low) / (high - low)).clamp(0, 1);
  at::Tensor extra_factor = 1 - ramp;
  return {inter * (1 - extra_factor) + extra * extra_factor, attn};
}

using InitFn = RopeInit (*)(const io::RopeConfig&, int64_t, int64_t, int64_t);
struct RopeType {
  const char* name;
  InitFn init;
};
constexpr RopeType kRopeTypes[] = {{"default", init_default},
                                   {"linear", init_linear},
                                   {"dynamic", init_dynamic},
                                   {"llama3", init_llama3},
                                   {"yarn", init_yarn}};

}  // namespace

Rotary rotary(const io::RopeConfig& rope, int64_t head_dim, int64_t max_pos,
              const at::Tensor& positions, at::ScalarType dtype, RopeStyle style,
              int64_t known_seq_len) {
  Rotary out;
  out.rot_dim = static_cast<int64_t>(head_dim * rope.partial_rotary_factor);
  out.rot_dim -= out.rot_dim % 2;
  const int64_t seq_len = known_seq_len > 0   ? known_seq_len
                          : positions.numel() ? positions.max().item<int64_t>() + 1
                                              : 0;
  const RopeType* type = nullptr;
  for (const auto& t : kRopeTypes)
    if (rope.type == t.name) type = &t;
  if (!type) {
    std::string list;
    for (const auto& t : kRopeTypes) list += (list.empty() ? "" : ", ") + std::string(t.name);
    SQ_THROW(InputError,
             "rope type \"" << rope.type << "\" is not implemented (have: " << list << ")");
  }
  RopeInit init = type->init(rope, out.rot_dim, max_pos, seq_len);
  at::Tensor inv = init.inv_freq.to(positions.device());
  // [B,T,1] × [dim/2] in fp32, as transformers' autocast-disabled matmul.
  at::Tensor freqs = positions.to(at::kFloat).unsqueeze(-1) * inv;
  at::Tensor emb =
      style == RopeStyle::Half ? at::cat({freqs, freqs}, -1) : freqs.repeat_interleave(2, -1);
  out.cos = (emb.cos() * init.attention_scaling).to(dtype);
  out.sin = (emb.sin() * init.attention_scaling).to(dtype);
  return out;
}

at::Tensor apply_rotary(const at::Tensor& x, const Rotary& r, RopeStyle style) {
  const int64_t d = r.rot_dim;
  // The fused kernel is this function's "half" style over the whole head, bit for bit.
  at::Tensor fused;
  if (style == RopeStyle::Half && d == x.size(-1) && rotary_half_fused(x, r.cos, r.sin, fused))
    return fused;
  at::Tensor rot = x.narrow(-1, 0, d);
  at::Tensor rotated;
  if (style == RopeStyle::Half) {
    at::Tensor x1 = rot.narrow(-1, 0, d / 2), x2 = rot.narrow(-1, d / 2, d / 2);
    rotated = at::cat({-x2, x1}, -1);
  } else {
    at::Tensor x1 = rot.slice(-1, 0, d, 2), x2 = rot.slice(-1, 1, d, 2);
    rotated = at::stack({-x2, x1}, -1).flatten(-2);
  }
  at::Tensor cos = r.cos.unsqueeze(1), sin = r.sin.unsqueeze(1);  // [B,1,T,d]
  at::Tensor out = rot * cos + rotated * sin;
  if (d == x.size(-1)) return out;
  return at::cat({out, x.narrow(-1, d, x.size(-1) - d)}, -1);
}

}  // namespace sq::rank::layers
