// Synthetic models: random weights of real shapes, for benchmarks and demos (`shardquant synth`).
//
// CONTRACT
//   synth_config(shape) — a named shape (synth_shapes(): llama-1b = REFERENCE.md §7's 1B-class
//   Llama, llama-8b / llama-70b = Llama-3's dimensions) becomes a complete LlamaForCausalLM
//   config.json; any other string is read as a path to a config.json. InputError otherwise,
//   listing the named shapes.
//   synth_model_types() / synth_writes(row) — the model_types synth writes: the ArchSpec rows
//   (arch_table.h) with separate q/k/v, a gated MLP and bias-free norms, whose every tensor has a
//   shape rule. synth_tensors(cfg) — every tensor of the checkpoint in write order, with its shape:
//   names from the row, shapes from arch_shapes.h, biases per attention_bias / mlp_bias (and the
//   family's own, e.g. qwen2's q/k/v). Norms are ones, every other tensor std-normal × 0.02.
//   InputError for a model_type without a row or one synth does not write (listing
//   synth_model_types()). write_synth_model() — writes config.json, the sharded safetensors
//   (io::ShardedWriter) and the tokenizer files copied from opts.tokenizer_dir (tokenizer.json
//   required; InputError naming the directory otherwise). bos/eos/pad ids come from the tokenizer
//   directory's config.json when it has one. Weights are a pure function of (seed, tensor name,
//   element index) — the same bytes whatever the thread count — so two runs with one seed give
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
std::vector<std::string> synth_model_types();
struct ArchSpec;
bool synth_writes(const ArchSpec& row);  // whether synth_model_types() lists the row

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
