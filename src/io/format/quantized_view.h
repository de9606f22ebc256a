// Dequantize-on-load: reading a quantized checkpoint (AWQ GEMM, GPTQ v1/v2, compressed-tensors
// pack-quantized; REFERENCE.md §3) as if it held full-precision linears.
//
// CONTRACT
//   quantized_layout(config.json, context) reads "quantization_config": nullopt when the key is
//   absent; the packing format, bits and group size otherwise. An unsupported method or version
//   (AWQ gemv/marlin, compressed-tensors other than pack-quantized, ...) is an InputError naming
//   `context` and the value found.
//   Which quant_method and variant maps to which format, the marker and stored suffixes, and
//   [N, K] from the stored shapes are the format's row (io/format/format_registry.h: read_config,
//   marker, suffixes, stored_shape).
//   A quantized linear "<L>" is recognised by its marker tensor ("<L>.qweight", or
//   "<L>.weight_packed" for compressed-tensors); its packed tensors (the row's suffixes) are
//   replaced by a virtual "<L>.weight": float32 [N, K] computed with io::unpack + io::dequantize.
//   float32 because (q − z)·s with fp16 scales is exact in float32 (not always in fp16), so the
//   virtual weight equals the solver's fake-quantized weight bit for bit; callers cast it to
//   their compute dtype. ModelWeights (io/model/model_weights.h) applies this view when config.json
//   has a quantization_config.
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "io/format/format_registry.h"
#include "io/format/pack.h"

namespace sq::io {

struct QuantizedLayout {
  Format format = Format::kAwqGemm;
  QuantScheme scheme;  // bits and group size (−1 = one group per row) from quantization_config
};

std::optional<QuantizedLayout> quantized_layout(const nlohmann::json& config,
                                                const std::string& context);

// [N, K] of the quantized linear `prefix` from its packed tensors (InputError naming `prefix`
// when a required tensor is missing or the shapes disagree with the format).
std::vector<int64_t> dequantized_shape(const QuantizedLayout& layout, const std::string& prefix,
                                       const StoredLookup& stored);

// The float32 [N, K] dequantized weight of `prefix`.
at::Tensor dequantize_stored(const QuantizedLayout& layout, const std::string& prefix,
                             const StoredLookup& stored);

}  // namespace sq::io
