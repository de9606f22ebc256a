#include "io/quant_config.h"

#include "common/check.h"

namespace sq::io {
namespace {

using Builder = nlohmann::json (*)(const QuantSettings&);
using SideFiles = std::map<std::string, nlohmann::json> (*)(const QuantSettings&);

nlohmann::json awq_config(const QuantSettings& s) {
  return {{"quant_method", "awq"},      {"bits", s.scheme.bits},
          {"group_size", s.scheme.group_size}, {"zero_point", s.scheme.zero_point},
          {"version", "gemm"},          {"modules_to_not_convert", s.modules_to_not_convert}};
}
std::map<std::string, nlohmann::json> awq_side(const QuantSettings& s) {
  // The container edition's own file (REFERENCE.md §3.1).
  return {{"quant_config.json",
           {{"zero_point", s.scheme.zero_point},
            {"q_group_size", s.scheme.group_size},
            {"w_bit", s.scheme.bits},
            {"version", "GEMM"}}}};
}

nlohmann::json gptq_config(const QuantSettings& s) {
  nlohmann::json j = {{"quant_method", "gptq"},
                      {"bits", s.scheme.bits},
                      {"group_size", s.scheme.group_size},
                      {"desc_act", s.scheme.act_order},
                      {"sym", !s.scheme.zero_point},
                      {"true_sequential", s.true_sequential},
                      {"damp_percent", s.damp_percent},
                      {"static_groups", s.static_groups},
                      {"checkpoint_format", s.gptq_v2 ? "gptq_v2" : "gptq"}};
  if (s.scheme.mse_norm > 0) j["mse"] = s.scheme.mse_norm;  // GPTQModel's key; loaders ignore it
  if (!s.modules_to_not_convert.empty()) j["modules_to_not_convert"] = s.modules_to_not_convert;
  return j;
}
std::map<std::string, nlohmann::json> gptq_side(const QuantSettings& s) {
  return {{"quantize_config.json", gptq_config(s)}};
}

nlohmann::json ct_config(const QuantSettings& s) {
  nlohmann::json weights = {
      {"num_bits", s.scheme.bits},
      {"type", "int"},
      {"symmetric", !s.scheme.zero_point},
      {"strategy", s.scheme.group_size > 0 ? "group" : "channel"},
      {"group_size", s.scheme.group_size > 0 ? nlohmann::json(s.scheme.group_size) : nlohmann::json()},
      // Act order with static groups keeps g_idx = k / G: llm-compressor's "weight" ordering.
      {"actorder", !s.scheme.act_order       ? nlohmann::json()
                   : s.static_groups ? nlohmann::json("weight")
                                     : nlohmann::json("group")},
      {"dynamic", false},
      {"observer", s.scheme.mse_norm > 0 ? "mse" : "minmax"}};
  return {{"quant_method", "compressed-tensors"},
          {"format", "pack-quantized"},
          {"quantization_status", "compressed"},
          {"ignore", s.modules_to_not_convert},
          {"config_groups",
           {{"group_0",
             {{"targets", {"Linear"}},
              {"weights", weights},
              {"input_activations", nullptr},
              {"output_activations", nullptr}}}}}};
}
std::map<std::string, nlohmann::json> no_side(const QuantSettings&) {
  return {};
}

struct FormatRow {
  OutputFormat format;
  const char* name;
  Builder config;
  SideFiles side;
};
const FormatRow kFormats[] = {
    {OutputFormat::kAwqGemm, "awq", awq_config, awq_side},
    {OutputFormat::kGptq, "gptq", gptq_config, gptq_side},
    {OutputFormat::kCompressedTensors, "compressed-tensors", ct_config, no_side},
};

const FormatRow& row(OutputFormat f) {
  for (const auto& r : kFormats)
    if (r.format == f) return r;
  SQ_CHECK(false, "unknown output format");
}

}  // namespace

OutputFormat parse_output_format(const std::string& name) {
  for (const auto& r : kFormats)
    if (name == r.name) return r.format;
  SQ_THROW(InputError,
           "unknown output format \"" << name << "\" (known: awq, gptq, compressed-tensors)");
}

const char* output_format_name(OutputFormat f) {
  return row(f).name;
}

nlohmann::json quantization_config(const QuantSettings& s) {
  return row(s.format).config(s);
}

nlohmann::json quantized_model_config(const nlohmann::json& input_config, const QuantSettings& s) {
  nlohmann::json c = input_config;
  c["quantization_config"] = quantization_config(s);
  // The dtype keys stay as they were: non-quantized tensors keep their original dtype, and
  // runtimes (vLLM's awq_marlin / gptq_marlin) accept bf16 activations as well as fp16.
  return c;
}

std::map<std::string, nlohmann::json> format_side_files(const QuantSettings& s) {
  return row(s.format).side(s);
}

}  // namespace sq::io
