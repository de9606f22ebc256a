// The config writers are registry rows (io/format_*.cpp); this is what they share.
#include "io/format/quant_config.h"

#include "io/format/format_registry.h"

namespace sq::io {

nlohmann::json quantization_config(const QuantSettings& s) {
  return format_row(s.format).config(s);
}

nlohmann::json quantized_model_config(const nlohmann::json& input_config, const QuantSettings& s) {
  nlohmann::json c = input_config;
  c["quantization_config"] = quantization_config(s);
  // The dtype keys stay as they were: non-quantized tensors keep their original dtype, and
  // runtimes (vLLM's awq_marlin / gptq_marlin) accept bf16 activations as well as fp16.
  return c;
}

std::map<std::string, nlohmann::json> format_side_files(const QuantSettings& s) {
  return format_row(s.format).side_files(s);
}

}  // namespace sq::io
