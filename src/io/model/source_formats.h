// Source checkpoints stored in low-precision floating point (REFERENCE.md §3.5), read as if they
// held the model's own dtype: block-scaled FP8 (DeepSeek-V3/R1, Kimi K2, Qwen3-*-FP8),
// compressed-tensors FP8 (per-tensor, per-channel or block scales) and MXFP4 (GPT-OSS experts).
//
// CONTRACT
//   source_format(config.json, context): nullopt when the config has no quantization_config or
//   its method is not one of these (io/format/quantized_view.h handles AWQ/GPTQ/pack-quantized);
//   the scheme otherwise. A float method with settings we cannot read (fp8 fmt other than e4m3,
//   compressed-tensors float weights of other than 8 bits, a malformed weight_block_size) is an
//   InputError naming `context`, the key and the value found.
//
//   plan_source_tensors(format, stored infos, dtype, context) lists the virtual tensors:
//   - FP8 schemes: every stored "<L>.weight" of dtype F8_E4M3 becomes a virtual "<L>.weight" of
//     the same shape in `dtype`, computed from the FP8 bytes and "<L>.<scale>" (weight_scale_inv
//     for quant_method fp8, weight_scale for compressed-tensors). Scale tensors and activation
//     scales ("<L>.input_scale") are hidden. An F8 tensor not named "*.weight", an F8_E5M2 weight,
//     a missing scale or a scale whose shape does not tile the weight is an InputError naming the
//     tensor, what was expected and what was found.
//   - MXFP4: every "<P>_blocks" U8 [E, R, G, 16] with "<P>_scales" U8 [E, R, G] becomes the
//     virtual "<P>" [E, G·32, R] in `dtype` — transformers' parameter layout for GPT-OSS experts
//     (the dequantized rows transposed, as its mxfp4 integration does). Both stored tensors are
//     hidden.
//   dequantize_source(tensor, raw, dtype, device) computes one virtual tensor; `raw` returns a
//   stored tensor's bytes as a zero-copy view (U8 for 1-byte dtypes, the stored ATen type
//   otherwise). The arithmetic runs on `device` (CPU or CUDA: index lookups and float32 products,
//   so both give the same bits), in float32, rounded once to `dtype` at the end.
//
//   Exactness: an FP8 value times a float32 scale is one float32 product (the reference
//   implementations' formula, `fp8.to(float32) * scale`); MXFP4 values times powers of two are
//   exact. Never written back in FP8: the output holds our quantization or the model dtype.
#pragma once

#include <ATen/ATen.h>

#include <array>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "io/safetensors/safetensors.h"

namespace sq::io {

enum class SourceScheme { kFp8, kCompressedFp8, kMxfp4 };

struct SourceFormat {
  SourceScheme scheme = SourceScheme::kFp8;
  // FP8: block shape of the scales from the config ([128, 128] for DeepSeek-V3); 0 = from the
  // scale tensor's own shape (per-tensor [1] / [] or per-channel [N, 1]).
  int64_t block_rows = 0, block_cols = 0;
  std::string scale_suffix;  // "weight_scale_inv" / "weight_scale"; empty for MXFP4
};

std::optional<SourceFormat> source_format(const nlohmann::json& config, const std::string& context);

// quant_method spellings source_format() accepts (for error messages listing what loads).
const char* source_methods();

// One virtual tensor and the stored tensors it is computed from.
struct SourceTensor {
  std::string name;
  std::vector<int64_t> shape;
  std::string data;                        // "<L>.weight" (FP8) / "<P>_blocks" (MXFP4)
  std::string scale;                       // "<L>.<scale_suffix>" / "<P>_scales"
  int64_t block_rows = 0, block_cols = 0;  // FP8: rows/cols covered by one scale
};

struct SourcePlan {
  std::map<std::string, SourceTensor> tensors;  // by virtual name
  std::vector<std::string> hidden;              // stored tensors that are not weights
};

SourcePlan plan_source_tensors(const SourceFormat& f,
                               const std::map<std::string, const TensorInfo*>& stored,
                               const std::string& context);

using RawLookup = std::function<at::Tensor(const std::string& stored_name)>;
at::Tensor dequantize_source(const SourceTensor& t, const RawLookup& raw, at::ScalarType dtype,
                             at::Device device);

// Building blocks, exposed for the tests.
// OCP FP8 E4M3FN (bias 7, no infinities, S.1111.111 = NaN) as float32, indexed by the byte.
const std::array<float, 256>& e4m3_values();
// OCP FP4 E2M1 as float32, indexed by the nibble (sign in bit 3): ±{0, .5, 1, 1.5, 2, 3, 4, 6}.
const std::array<float, 16>& e2m1_values();
// bytes: U8 [N, K] of E4M3 codes; scale: float [R, C] with R = ceil(N / br), C = ceil(K / bc).
// Returns float32 [N, K] = value · scale[i / br, j / bc] on bytes' device.
at::Tensor dequant_fp8(const at::Tensor& bytes, const at::Tensor& scale, int64_t br, int64_t bc);
// blocks: U8 [..., G, 16]; scales: U8 [..., G] (E8M0, 2^(s − 127), 255 = NaN). Returns float32
// [..., G · 32]: byte b of a block holds element 2b in its low nibble and 2b + 1 in its high one.
at::Tensor dequant_mxfp4(const at::Tensor& blocks, const at::Tensor& scales);

}  // namespace sq::io
