// Synthetic models: random weights of real shapes, for benchmarks and demos (`shardquant synth`).
//
// CONTRACT
//   synth_config(shape) — a named shape (synth_presets(): llama-1b = REFERENCE.md §7's 1B-class
//   Llama; llama-8b / -70b / -405b = Llama-3's dimensions; mixtral-8x7b, qwen3-30b-a3b and
//   deepseek-v3 = the released configs, deepseek-v3 with its FP8 quantization_config) becomes a
//   complete config.json; any other string is read as a path to a config.json. InputError
//   otherwise, listing the named shapes.
//   synth_slice(cfg, layers) — the config of the first `layers` blocks (num_hidden_layers set;
//   InputError unless 1 ≤ layers ≤ the config's). synth_fp8(cfg) — the config with DeepSeek-V3's
//   block-scaled FP8 quantization_config (e4m3, dynamic activations, 128×128 blocks).
//   synth_model_types() / synth_writes(row) — the model_types synth writes: the ArchSpec rows
//   (arch_table.h) with separate q/k/v or MLA attention, a gated MLP or per-expert MoE MLP, and
//   bias-free norms, whose every linear has a shape rule (MoE rows: those with synth_experts).
//   synth_tensors(cfg) — every tensor of the checkpoint in write order, with its shape: names from
//   the row, shapes from arch_shapes.h (every expert of an MoE block; dense blocks where the config
//   says so), biases per attention_bias / mlp_bias and the row's qkv_bias / qk_norm columns
//   (qwen2's q/k/v biases, qwen3's per-head q/k norms) — synth keeps no model_type list of its own.
//   Norms are ones, a router's correction bias float32, every other tensor std-normal × 0.02. With
//   an FP8 quantization_config (quant_method fp8, weight_block_size [r, c]) every block linear but
//   the routers is marked fp8: stored F8_E4M3 with a float32 `weight_scale_inv` of one scale per
//   r×c block (amax / 448), as DeepSeek-V3 is released.
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

struct SynthPreset {
  const char* name;
  const char* what;  // one line for --help
  nlohmann::json (*config)();
};
const std::vector<SynthPreset>& synth_presets();

nlohmann::json synth_config(const std::string& shape_or_config_path);
nlohmann::json synth_slice(nlohmann::json config, int64_t layers);
nlohmann::json synth_fp8(nlohmann::json config);

struct SynthTensor {
  std::string name;
  std::vector<int64_t> shape;
  bool ones = false;  // norm weights
  bool fp32 = false;  // stored float32 whatever the model dtype (a router's correction bias)
  bool fp8 = false;   // stored F8_E4M3 + "<module>.weight_scale_inv" (see the contract)
};
std::vector<SynthTensor> synth_tensors(const nlohmann::json& config);
std::vector<std::string> synth_model_types();
struct ArchSpec;
bool synth_writes(const ArchSpec& row);  // whether synth_model_types() lists the row

struct SynthOptions {
  std::string out_dir;
  int64_t layers = 0;  // > 0: write synth_slice(config, layers)
  bool fp8 = false;    // write synth_fp8(config)
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

// The E4M3 (FN) code nearest to x, ties to even; |x| beyond 448 saturates to ±448, NaN → 0x7F.
uint8_t encode_e4m3(float x);
// Block-scaled FP8 of a float32 [N, K] matrix: bytes [N, K] (U8 holding E4M3 codes) and
// scale_inv [ceil(N/br), ceil(K/bc)] float32 with scale = amax/448 of the block (1 for an
// all-zero block), code = encode_e4m3(w / scale); w ≈ e4m3(code) · scale.
struct Fp8Blocks {
  at::Tensor bytes, scale_inv;
};
Fp8Blocks quantize_fp8_blocks(const at::Tensor& w, int64_t br, int64_t bc, int threads = 1);

}  // namespace sq::rank
