// The quantization_config blocks that runtimes read (REFERENCE.md §3.1–3.3). Each format's keys
// and side files are its row in io/format/format_registry.h (config, side_files).
//
// CONTRACT: quantized_model_config(input config.json, settings) returns the input config with
// "quantization_config" set (dtype keys unchanged); format_side_files(settings) returns the extra
// files the container tools write (quant_config.json for AWQ, quantize_config.json for GPTQ).
// settings.format is the format the checkpoint was written in (kGptqV2 after widening).
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/quant_scheme.h"
#include "io/format/format.h"

namespace sq::io {

struct QuantSettings {
  Format format = Format::kAwqGemm;
  QuantScheme scheme;  // bits, group size, zero point (AWQ) / asymmetric (GPTQ), act order, mse
  bool static_groups = false;
  bool true_sequential = true;
  double damp_percent = 0.01;
  // Every linear module left in floating point, by full module name ("lm_head",
  // "model.layers.0.mlp.gate"): AWQ's and GPTQ's "modules_to_not_convert" (loaders match entries
  // as substrings or name prefixes) and compressed-tensors' "ignore" (exact names).
  std::vector<std::string> modules_to_not_convert;
  nlohmann::json provenance;  // calibration provenance etc., recorded where the format allows
};

nlohmann::json quantization_config(const QuantSettings& s);
nlohmann::json quantized_model_config(const nlohmann::json& input_config, const QuantSettings& s);
std::map<std::string, nlohmann::json> format_side_files(const QuantSettings& s);

}  // namespace sq::io
