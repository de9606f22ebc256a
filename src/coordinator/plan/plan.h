// The plan: everything decided before heavy work (DESIGN.md §1 step 1). make_plan() is pure:
// it reads config.json and the safetensors headers (mmapped, no tensor data) and the options,
// validates, and returns what --dry-run prints and what the quantization run reuses.
//
// Validation (each failure an sq::InputError naming file / tensor / expected / actual):
//   * model directory exists, has config.json and safetensors (io::ModelWeights checks shards,
//     truncation, headers, index consistency);
//   * every tensor the config implies is present with the shape the config implies (shape rules
//     per tensor role in rank/model/arch_shapes.cpp) and every block 0..num_hidden_layers-1 has
//     linears;
//   * the group size divides in_features of every linear that will be quantized;
//   * every --keep-fp-layers entry matches at least one linear, and keeps all or none of each
//     set of linears runtimes fuse into one layer (rank::fused_linear_sets: q/k/v, gate/up, the
//     routed experts of an MoE block): vLLM refuses a fused layer whose parts differ;
//   * --format compressed-tensors needs torch.nn.Linear modules (not GPT-2's Conv1D);
//   * the output directory is not the model directory, not one of its files, not an ancestor of
//     it, and is writable (a probe file is created and removed in the nearest existing parent).
//
// Memory estimate (bytes; dt = compute dtype size: the checkpoint dtype on GPU, 4 on CPU;
// hb = GPTQ's solve type size: 8 on CPU (float64), 4 on GPU):
//   block_w   = max over blocks of (block parameters × dt)
//   act       = 2 × calib_size × seq_len × hidden × dt          (block inputs and outputs)
//   work      = 4 × (out × in) of the largest quantized linear   (fp32 working copy)
//               + codes = Σ over the block's quantized linears of out × in (uint8 codes held
//               until the block is exported, rank::ResultStore)
//   AWQ:  stats = calib_size × seq_len × (max in_features + hidden) × dt
//               (one scaling group's captured input + its inspect-scope output at a time)
//   GPTQ: stats = Σ over the block's quantized linears of in² × 8 (float64 Hessian sums — an
//               upper bound: linears sharing an input share one) + (max in)² × (6 hb + 4) (the
//               solve of the widest set: finalized H, copies, Cholesky factors, inverse)
//               + calib_size × seq_len × max in_features × dt
//   device peak = block_w + act + work + stats   (0 on the GPU when the run is on CPU)
//   host peak   = kHostRuntimeBytes + non-block tensors × dt + block_w
//               + (device peak when on CPU, else act)
//               + output buffer of one block (block_w × bits / 16: the writer spills each tensor
//                 to disk at once, io/output/safetensors_writer.h)
//               + mapped shard pages of two blocks (the one loaded and the one prefetched, in the
//                 checkpoint's bytes per parameter; pages of loaded blocks are released)
//               + on a GPU, the codes of the largest block whose linears' weights (kept ones
//                 included) exceed a sixteenth of the GPU's memory (gpu_memory): such a block
//                 keeps its codes in host memory until its export (rank::codes_wait_on_host,
//                 ResultStore::kCompactHost: huge MoE blocks)
// Nothing grows with the number of blocks. Checked against /proc on CPU slices of 4 and 8 blocks
// (tests/cli/test_host_memory_cli.cpp, within 25 %; bench/NOTES.md "Host memory flat").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "coordinator/options/options.h"
#include "io/model/model_config.h"
#include "rank/model/arch.h"

namespace sq::coordinator {

struct PlannedLinear {
  rank::LinearRef ref;
  bool quantized = true;
  std::string keep_reason;  // the --keep-fp-layers entry that kept it ("" when quantized)
};

struct PlannedBlock {
  int64_t index = 0;
  std::string prefix;                  // "model.layers.3"
  std::vector<PlannedLinear> linears;  // in block_linears() order
  int64_t params = 0;                  // every tensor under the prefix
};

// What the process holds besides the terms above: LibTorch and OpenBLAS (code pages, thread
// buffers), the tokenizer and calibration corpus, the allocator's slack. Measured: 0.45-0.55 GiB
// of VmRSS before the first block on a CPU run (bench/NOTES.md "Host memory flat").
constexpr uint64_t kHostRuntimeBytes = uint64_t{512} << 20;

struct MemoryEstimate {
  uint64_t block_weights = 0;
  uint64_t activations = 0;
  uint64_t working = 0;
  uint64_t statistics = 0;
  uint64_t device_peak = 0;  // GPU bytes (0 when the run is on CPU)
  uint64_t host_codes = 0;   // codes waiting in host memory (kCompactHost), part of host_peak
  uint64_t host_peak = 0;
};

struct Plan {
  std::string model_dir;
  std::string output_dir;
  io::ModelConfig config;
  std::string architecture;              // config.architectures[0] or model_type
  std::vector<std::string> input_files;  // shard paths
  uint64_t input_bytes = 0;

  std::vector<PlannedBlock> blocks;
  std::vector<std::string> non_block;  // tensors outside blocks, kept in floating point
  // Every linear module the checkpoint leaves in floating point, by module name ("lm_head",
  // "model.layers.0.mlp.gate"), sorted: rank::never_quantized_linears() (output head, routers,
  // ...), the linears kept by --keep-fp-layers, and the experts module of an MoE block whose
  // routed experts are all kept (vLLM matches them as that one layer). The one list behind the
  // formats' "ignore" / "modules_to_not_convert".
  std::vector<std::string> float_modules;
  // The checkpoint's floating dtype: config.json's dtype / torch_dtype (bfloat16, float16,
  // float32), else that of its first F32/F16/BF16 tensor, else F16.
  io::DType model_dtype = io::DType::F16;

  int64_t total_params = 0;
  int64_t quantized_params = 0;  // weights of quantized linears
  int64_t kept_params = 0;       // everything else
  int64_t quantized_linears = 0;
  int64_t kept_linears = 0;  // block linears kept by --keep-fp-layers
  int64_t kept_tensors = 0;  // every tensor written unchanged (non-linear + kept linears)

  bool on_cpu = true;
  uint64_t gpu_memory = 0;  // total memory of the run's GPU (cuda:0); 0 on CPU or when unknown
  int compute_dtype_bytes = 4;
  MemoryEstimate memory;
  std::vector<std::string> warnings;  // printed by the caller
};

Plan make_plan(const Options& opts);

// Human-readable plan (what --dry-run prints).
std::string describe_plan(const Plan& plan, const Options& opts);

// Checks of the output directory alone (used by make_plan; exposed for tests).
void check_output_dir(const std::string& output_dir, const std::string& model_dir,
                      const std::vector<std::string>& input_files);

// "1.23 GiB" style.
std::string human_bytes(uint64_t bytes);

}  // namespace sq::coordinator
