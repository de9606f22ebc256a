// Synthetic models: random weights of real shapes, for benchmarks and demos (`shardquant synth`).
//
// CONTRACT
//   synth_config(shape) — a named shape (synth_shapes(): llama-1b = REFERENCE.md §7's 1B-class
//   Llama, llama-8b / llama-70b = Llama-3's dimensions) becomes a complete LlamaForCausalLM
//   config.json; any other string is read as a path to a config.json (model_type llama, mistral,
//   qwen2 or qwen3: the families whose tensor list synth_tensors() knows). InputError otherwise,
//   listing the named shapes.
//   synth_tensors(cfg) — every tensor of the checkpoint in write order, with its shape; norms are
//   ones, every other tensor std-normal × 0.02.
//   write_synth_model() — writes config.json, the sharded safetensors (io::ShardedWriter) and
//   the tokenizer files copied from opts.tokenizer_dir (tokenizer.json required; InputError
//   naming the directory otherwise). bos/eos/pad ids come from the tokenizer directory's
//   config.json when it has one. Weights are a pure function of (seed, tensor name, element
//   index) — the same bytes whatever the thread count — so two runs with one seed give
//   identical files. The output directory must not exist or be empty.
//   fill_normal() — the generator: counter-based (SplitMix64 of seed ⊕ index) Box–Muller pairs,
//   rounded to nearest-even into bf16 / fp16 / fp32; multi-threaded over fixed chunks.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace sq::rank {

struct SynthShape {
  const char* name;
  int64_t hidden, layers, intermediate, heads, kv_heads, vocab, max_positions;
  double rope_theta;
  bool llama3_rope;  // Llama-3's rope_scaling (llama3 type, factor 8)
};
const std::vector<SynthShape>& synth_shapes();

nlohmann::json synth_config(const std::string& shape_or_config_path);

struct SynthTensor {
  std::string name;
  std::vector<int64_t> shape;
  bool ones = false;  // norm weights
};
std::vector<SynthTensor> synth_tensors(const nlohmann::json& config);

struct SynthOptions {
  std::string out_dir;
  std::string tokenizer_dir;
  uint64_t seed = 0;
  uint64_t max_shard_bytes = 5000000000ULL;
  at::ScalarType dtype = at::kBFloat16;  // bf16, fp16 or fp32
  int threads = 0;                       // 0 = hardware concurrency
};

struct SynthReport {
  int64_t tensors = 0;
  int64_t parameters = 0;
  uint64_t bytes = 0;
  double generate_s = 0, write_s = 0;
  std::vector<std::string> files;
};

SynthReport write_synth_model(const nlohmann::json& config, const SynthOptions& opts);

// Fills `t` (contiguous CPU bf16/fp16/fp32) with N(0,1)·stddev; `stream` picks an independent
// sequence (write_synth_model uses a hash of the tensor name).
void fill_normal(at::Tensor& t, uint64_t seed, uint64_t stream, float stddev, int threads);

}  // namespace sq::rank
