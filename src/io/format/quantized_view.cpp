// Reading quantized checkpoints back. What a format is (which quantization_config describes it,
// its marker and suffixes, [N, K] from the stored shapes) is its registry row; this file finds
// the row and checks what every format shares.
#include "io/format/quantized_view.h"

#include "common/check.h"
#include "io/format/format_rows.h"

namespace sq::io {

std::optional<QuantizedLayout> quantized_layout(const nlohmann::json& config,
                                                const std::string& context) {
  if (!config.is_object() || !config.contains("quantization_config")) return std::nullopt;
  const nlohmann::json& q = config["quantization_config"];
  SQ_REQUIRE(q.is_object(), context << ": quantization_config is not an object");
  const std::string method = rows::lower(rows::str_key(q, "quant_method", ""));
  // Rows sharing a quant_method share its reader (GPTQ v1/v2): the first one's decides.
  for (const auto& r : format_rows())
    if (method == r.quant_method) {
      QuantizedLayout l;
      l.format = r.read_config(q, context, &l.scheme);
      SQ_REQUIRE(l.scheme.bits >= 2 && l.scheme.bits <= 8,
                 context << ": quantization_config bits must be 2..8, got " << l.scheme.bits);
      SQ_REQUIRE(l.scheme.group_size == -1 || l.scheme.group_size > 0,
                 context << ": quantization_config group_size must be -1 or positive, got "
                         << l.scheme.group_size);
      return l;
    }
  SQ_THROW(InputError,
           context << ": quantization_config.quant_method \"" << method
                   << "\" cannot be loaded (known: awq, gptq, compressed-tensors "
                      "pack-quantized; fp8, mxfp4, compressed-tensors float-quantized)");
}

std::vector<int64_t> dequantized_shape(const QuantizedLayout& layout, const std::string& prefix,
                                       const StoredLookup& stored) {
  return format_row(layout.format).stored_shape(layout.scheme, prefix, stored);
}

at::Tensor dequantize_stored(const QuantizedLayout& layout, const std::string& prefix,
                             const StoredLookup& stored) {
  PackedLinear p;
  p.format = layout.format;
  p.scheme.bits = layout.scheme.bits;
  p.scheme.group_size = layout.scheme.group_size;
  for (const auto& suffix : format_row(layout.format).suffixes) {
    at::Tensor t = stored(prefix + "." + suffix);
    if (t.defined()) p.tensors[suffix] = t.contiguous();
  }
  const std::vector<int64_t> want = dequantized_shape(layout, prefix, stored);
  at::Tensor w;
  try {
    w = dequantize(p).to(at::kFloat).contiguous();
  } catch (const InputError& e) {
    SQ_THROW(InputError, "quantized linear " << prefix << ": " << e.what());
  }
  // The stored shapes come from the file: a disagreement is the file's fault.
  SQ_REQUIRE(w.dim() == 2 && w.size(0) == want[0] && w.size(1) == want[1],
             "quantized linear " << prefix << ": dequantized to " << w.sizes() << ", expected ["
                                 << want[0] << ", " << want[1] << "]");
  return w;
}

}  // namespace sq::io
