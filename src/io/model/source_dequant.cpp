// FP8 E4M3 and MXFP4 decoding (source_formats.h). LibTorch 1.13 has no float8 type, so the
// codes are looked up in tables of float32 values built here from the format definitions; the
// lookups and products are plain ATen ops and run on the tensors' device.
#include <cmath>
#include <limits>

#include "common/check.h"
#include "io/model/source_formats.h"

namespace sq::io {
namespace {

at::Tensor table_on(const float* values, int64_t n, at::Device device) {
  return at::from_blob(const_cast<float*>(values), {n}, at::kFloat).clone().to(device);
}

}  // namespace

const std::array<float, 256>& e4m3_values() {
  static const std::array<float, 256> t = [] {
    std::array<float, 256> v{};
    for (int b = 0; b < 256; ++b) {
      const int exp = (b >> 3) & 15, man = b & 7;
      float x;
      if (exp == 15 && man == 7)
        x = std::numeric_limits<float>::quiet_NaN();  // E4M3FN: the only NaN, no infinity
      else if (exp == 0)
        x = std::ldexp(static_cast<float>(man), -9);  // subnormal: man/8 · 2^(1−7)
      else
        x = std::ldexp(static_cast<float>(8 + man), exp - 10);  // (1 + man/8) · 2^(exp−7)
      v[b] = (b & 0x80) ? -x : x;
    }
    return v;
  }();
  return t;
}

const std::array<float, 16>& e2m1_values() {
  static const std::array<float, 16> t = {0.0f,  0.5f,  1.0f,  1.5f,  2.0f,  3.0f,  4.0f,  6.0f,
                                          -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};
  return t;
}

at::Tensor dequant_fp8(const at::Tensor& bytes, const at::Tensor& scale, int64_t br, int64_t bc) {
  SQ_CHECK(
      bytes.scalar_type() == at::kByte && bytes.dim() == 2,
      "dequant_fp8: bytes must be U8 [N, K], got " << bytes.scalar_type() << " " << bytes.sizes());
  const int64_t N = bytes.size(0), K = bytes.size(1);
  const int64_t R = (N + br - 1) / br, C = (K + bc - 1) / bc;
  SQ_CHECK(scale.dim() == 2 && scale.size(0) == R && scale.size(1) == C,
           "dequant_fp8: scale " << scale.sizes() << " does not tile [" << N << ", " << K
                                 << "] in blocks of [" << br << ", " << bc << "]");
  const at::Tensor table = table_on(e4m3_values().data(), 256, bytes.device());
  at::Tensor out = table.index_select(0, bytes.reshape({-1}).to(at::kInt)).reshape({N, K});
  const at::Tensor s = scale.to(bytes.device(), at::kFloat);
  if (C == 1) {
    // One scale per row block across all columns (per tensor, per channel): one broadcast.
    out.mul_(s.repeat_interleave(br, 0).narrow(0, 0, N));
  } else {
    // Row block by row block, so the expanded scales take K floats, not N·K.
    for (int64_t r = 0; r < R; ++r) {
      const int64_t r0 = r * br, rows = std::min(br, N - r0);
      out.narrow(0, r0, rows).mul_(s[r].repeat_interleave(bc, 0).narrow(0, 0, K));
    }
  }
  return out;
}

at::Tensor dequant_mxfp4(const at::Tensor& blocks, const at::Tensor& scales) {
  SQ_CHECK(blocks.scalar_type() == at::kByte && scales.scalar_type() == at::kByte &&
               blocks.dim() >= 2 && blocks.size(-1) == 16 && scales.dim() == blocks.dim() - 1,
           "dequant_mxfp4: blocks must be U8 [..., G, 16] and scales U8 [..., G], got "
               << blocks.sizes() << " and " << scales.sizes());
  for (int64_t d = 0; d < scales.dim(); ++d)
    SQ_CHECK(scales.size(d) == blocks.size(d), "dequant_mxfp4: scales " << scales.sizes()
                                                                        << " do not match blocks "
                                                                        << blocks.sizes());
  const at::Device dev = blocks.device();
  const at::Tensor b = blocks.to(at::kInt);
  // Element 2i sits in the low nibble of byte i, element 2i + 1 in the high nibble.
  const at::Tensor codes = at::stack({at::bitwise_and(b, 15), at::__rshift__(b, 4)}, -1);
  const at::Tensor fp4 = table_on(e2m1_values().data(), 16, dev);
  std::vector<int64_t> shape = scales.sizes().vec();
  shape.push_back(32);
  at::Tensor vals = fp4.index_select(0, codes.reshape({-1})).reshape(shape);
  // E8M0: 2^(s − 127) for s = 0..254 (2^−127 is a float32 subnormal, still exact); 255 = NaN.
  static const std::array<float, 256> pow2 = [] {
    std::array<float, 256> v{};
    for (int s = 0; s < 255; ++s) v[s] = std::ldexp(1.0f, s - 127);
    v[255] = std::numeric_limits<float>::quiet_NaN();
    return v;
  }();
  const at::Tensor sc = table_on(pow2.data(), 256, dev)
                            .index_select(0, scales.reshape({-1}).to(at::kInt))
                            .reshape(scales.sizes())
                            .unsqueeze(-1);
  vals.mul_(sc);
  std::vector<int64_t> out_shape(scales.sizes().begin(), scales.sizes().end() - 1);
  out_shape.push_back(scales.size(-1) * 32);
  return vals.reshape(out_shape);
}

}  // namespace sq::io
