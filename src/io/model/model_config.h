// config.json → a typed model configuration.
//
// Reads transformers-4 keys (rope_theta + rope_scaling, torch_dtype) and transformers-5 keys
// (rope_parameters, dtype), and each family's own spellings (gpt2 n_embd/n_layer/n_head, opt
// ffn_dim, falcon ffn_hidden_size/num_kv_heads, ...) through one alias table per field
// (model_config.cpp). Per-architecture extras stay in `raw` and are read by the block code with
// the helpers below. Which model_types are supported is not io's to say: any model_type parses
// here, and rank::load_model_config() (rank/model/arch_table.h) refuses one without an ArchSpec
// row.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace sq::io {

struct RopeConfig {
  std::string type = "default";  // default, linear, dynamic, llama3, yarn, longrope
  double theta = 10000.0;
  double partial_rotary_factor = 1.0;
  nlohmann::json params;  // the whole rope dict (factor, low_freq_factor, ...), normalized
};

struct ModelConfig {
  std::string path;  // the config.json read
  std::string model_type;
  std::vector<std::string> architectures;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t head_dim = 0;  // explicit head_dim or hidden/heads
  int64_t vocab_size = 0;
  int64_t max_position_embeddings = 0;
  double norm_eps = 1e-5;
  std::string hidden_act;
  std::string dtype;  // "bfloat16", "float16", "float32" ("" when absent)
  bool tie_word_embeddings = false;
  bool attention_bias = false;
  bool mlp_bias = false;
  std::optional<int64_t> sliding_window;
  RopeConfig rope;
  // Per layer type ("full_attention", "sliding_attention") when rope_parameters is keyed by
  // layer type (gemma3) or rope_local_base_freq is present.
  std::map<std::string, RopeConfig> rope_by_layer_type;
  std::vector<std::string> layer_types;  // empty when the config has none
  nlohmann::json raw;

  // Helpers for architecture-specific keys (null counts as absent).
  bool has(const std::string& key) const;
  double get_double(const std::string& key, double fallback) const;
  int64_t get_int(const std::string& key, int64_t fallback) const;
  bool get_bool(const std::string& key, bool fallback) const;
  std::string get_string(const std::string& key, const std::string& fallback) const;
  // The rope config for layer type `layer_type` (falls back to `rope`).
  const RopeConfig& rope_for(const std::string& layer_type) const;
};

// Parses `model_dir/config.json` (or a path to a .json file). InputError on a missing file,
// invalid JSON, a missing model_type or other required key (named).
ModelConfig load_model_config(const std::string& path);
ModelConfig parse_model_config(const nlohmann::json& j, const std::string& origin);

}  // namespace sq::io
