#include "io/safetensors/tensor.h"

#include <cmath>
#include <cstring>

#include "common/check.h"

namespace sq::io {
namespace {

struct Row {
  DType d;
  at::ScalarType s;
};
constexpr Row kMap[] = {
    {DType::F64, at::kDouble},    {DType::F32, at::kFloat}, {DType::F16, at::kHalf},
    {DType::BF16, at::kBFloat16}, {DType::I64, at::kLong},  {DType::I32, at::kInt},
    {DType::I16, at::kShort},     {DType::I8, at::kChar},   {DType::U8, at::kByte},
    {DType::BOOL, at::kBool},
};

// OCP FP8 decoding. E4M3 (fn variant): bias 7, no infinities, 0x7F/0xFF = NaN.
// E5M2: bias 15, IEEE-like with inf/NaN.
float decode_fp8(uint8_t v, DType d) {
  const bool e4m3 = d == DType::F8_E4M3;
  const int mbits = e4m3 ? 3 : 2, ebits = e4m3 ? 4 : 5, bias = e4m3 ? 7 : 15;
  const int sign = v >> 7;
  const int exp = (v >> mbits) & ((1 << ebits) - 1);
  const int man = v & ((1 << mbits) - 1);
  float out;
  if (e4m3 && exp == 15 && man == 7) {
    out = NAN;
  } else if (!e4m3 && exp == 31) {
    out = man ? NAN : INFINITY;
  } else if (exp == 0) {
    out = std::ldexp(static_cast<float>(man) / (1 << mbits), 1 - bias);
  } else {
    out = std::ldexp(1.0f + static_cast<float>(man) / (1 << mbits), exp - bias);
  }
  return sign ? -out : out;
}

}  // namespace

at::ScalarType to_scalar_type(DType d) {
  for (const auto& r : kMap)
    if (r.d == d) return r.s;
  SQ_THROW(InputError, "dtype " << dtype_name(d) << " has no ATen equivalent in this build");
}

DType from_scalar_type(at::ScalarType t) {
  for (const auto& r : kMap)
    if (r.s == t) return r.d;
  SQ_THROW(InternalError, "no safetensors dtype for ATen type " << c10::toString(t));
}

at::Tensor view(const std::shared_ptr<SafetensorsFile>& file, const TensorInfo& t) {
  if (t.dtype == DType::F8_E4M3 || t.dtype == DType::F8_E5M2) {
    at::Tensor out = at::empty(t.shape, at::kFloat);
    float* dst = out.data_ptr<float>();
    const uint8_t* src = file->data(t);
    for (int64_t i = 0; i < t.numel(); ++i) dst[i] = decode_fp8(src[i], t.dtype);
    return out;
  }
  auto keep = file;  // the deleter holds the mapping alive
  void* ptr = const_cast<uint8_t*>(file->data(t));
  if (t.numel() == 0) return at::empty(t.shape, at::TensorOptions().dtype(to_scalar_type(t.dtype)));
  if (reinterpret_cast<uintptr_t>(ptr) % dtype_size(t.dtype) != 0) {
    // safetensors does not promise aligned data (writers pad the header to 8 bytes, a hostile or
    // hand-made file need not): a typed read through a misaligned pointer is undefined
    // behaviour (found by fuzzing), so such a tensor is copied into aligned memory.
    at::Tensor out = at::empty(t.shape, at::TensorOptions().dtype(to_scalar_type(t.dtype)));
    std::memcpy(out.data_ptr(), ptr, t.nbytes());
    return out;
  }
  return at::from_blob(
      ptr, t.shape, [keep](void*) mutable { keep.reset(); },
      at::TensorOptions().dtype(to_scalar_type(t.dtype)));
}

}  // namespace sq::io
