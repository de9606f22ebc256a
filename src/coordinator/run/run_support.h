// Small pieces the quantization run is assembled from: mapping Options onto the io/rank/solver
// settings (each mapping written once, here), device choice, timing helpers and the run summary
// (shardquant_summary.json + the end-of-run table).
#pragma once

#include <ATen/ATen.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "coordinator/options/options.h"
#include "coordinator/plan/plan.h"
#include "io/calib/calib.h"
#include "io/format/quant_config.h"
#include "io/output/output_dir.h"
#include "rank/quant/block_export.h"
#include "rank/quant/block_quant.h"
#include "rank/worker/block_step.h"

namespace sq::coordinator {

// The compute device from --force_cpu / --device; "auto" picks GPU local_rank mod #GPUs (a
// rank's own GPU under mpirun — the NCCL transport binds the same one), else the CPU.
at::Device run_device(const Options& o, int local_rank = 0);
// A run computing on the CPU: malloc keeps freed blocks for reuse (common/host_memory.h; CPU
// ops otherwise page-fault every large output in afresh), and it computes on
// solvers::default_cpu_threads(ranks_on_host) threads (OMP_NUM_THREADS, else the CPUs shared by
// the ranks of this host) in tiles, with ATen and the BLAS single-threaded inside them, so the
// results do not depend on that count (solvers/cpu_threads.h). Logged; nothing for other devices.
void prepare_host_for(const at::Device& dev, int ranks_on_host = 1);
// CPU: float32. GPU: the checkpoint's half type (bf16 unless it is fp16).
// --compute-dtype: "auto" = fp32 on CPU, the checkpoint's half type (fp16 if it is fp16, else
// bf16) on GPU; otherwise the named type on any device.
at::ScalarType compute_dtype(const at::Device& d, const io::ModelConfig& cfg,
                             const std::string& requested = "auto");
// Samples per forward micro-batch: --micro-batch when given (> 0), else 16384 tokens' worth
// (bounded activation memory at any seq_len); at least 1 (rank::micro_batch_for).
int64_t micro_batch_for(const Options& o, int64_t seq_len);

io::CalibOptions calib_options(const Options& o);
rank::KeepFp keep_fp_from_plan(const Plan& plan);
// compressed-tensors: symmetric and weight_g_idx as the options say (the config's "symmetric" and
// "actorder" decide which tensors a loader expects, whatever one linear's zeros or g_idx are) and
// weight_scale in the model dtype, as llm-compressor writes it (REFERENCE.md §3.3).
rank::ExportOptions export_options(const Options& o, const Plan& plan);
rank::AwqSettings awq_settings(const Options& o, int64_t micro_batch);
rank::GptqSettings gptq_settings(const Options& o, int64_t micro_batch);
// `written`: the format the checkpoint is in (o.format, or its widened row: gptq → gptq_v2).
io::QuantSettings quant_settings(const Options& o, io::Format written);
// Everything the per-block step needs from the options and the plan (rank/worker/block_step.h).
rank::StepSettings step_settings(const Options& o, const Plan& plan);

// Everything after the last shard: config.json with the quantization_config of the format the
// shards were `written` in (ignore / modules_to_not_convert = plan.float_modules), the format's
// side files, the copied tokenizer/aux files.
struct FinishedCheckpoint {
  io::QuantSettings settings;
  std::vector<std::string> copied;
};
FinishedCheckpoint finish_checkpoint(const io::OutputDir& out, const Options& o, const Plan& plan,
                                     io::Format written);

double seconds_between(std::chrono::steady_clock::time_point a,
                       std::chrono::steady_clock::time_point b);

// The summary entries of the blocks one rank quantized, in the summary's own JSON form: what a
// rank sends to rank 0, which adds them to the RunSummary as they are (RunSummary::add_blocks).
struct BlockLog {
  nlohmann::json blocks = nlohmann::json::array();    // {index, seconds, linears, notes, phases_s}
  nlohmann::json salient = nlohmann::json::object();  // --dump-salient: {linear: [columns]}
  // This process's host memory (common/host_memory.h) sampled at each block's end: peak_rss_gib
  // (VmHWM), max_rss_anon_gib and max_rss_file_gib (largest RssAnon / RssFile at block ends),
  // peak_rss_anon_gib and peak_rss_file_gib (sampled every 10 ms: common/host_memory.h), so a run
  // shows whether host memory grows with the number of blocks. Each block entry also gets its
  // own sample ("host_rss").
  nlohmann::json host_memory = nlohmann::json::object();
  void add(int64_t index, const rank::BlockQuantResult& r, double seconds);
};

class RunSummary {
 public:
  RunSummary(const Options& o, const Plan& plan);
  void set_calibration(const nlohmann::json& provenance, int64_t samples, int64_t seq_len);
  void add_phase(const std::string& name, double seconds);
  // A top-level number of the summary (e.g. "peak_gpu_allocated_gib").
  void set_value(const std::string& key, double value);
  // Block entries of every rank (BlockLog::blocks, any order, each block once); kept sorted by
  // index, their phases_s summed into solve_phases_s, their uncalibrated_linears into the run's
  // count. `host_memory` (BlockLog::host_memory of one rank) is merged key by key as the largest
  // value seen, so the run's "host_memory" is that of the rank that used the most.
  void add_blocks(const nlohmann::json& blocks, const nlohmann::json& salient,
                  const nlohmann::json& host_memory);
  void set_output(const std::vector<std::string>& shards, const std::vector<std::string>& copied,
                  const io::QuantSettings& qs);
  void set_total(double seconds);
  const nlohmann::json& json() const { return j_; }
  // --dump-salient: the salient columns of every quantized linear seen by add_blocks, by name.
  const nlohmann::json& salient() const { return salient_; }
  // The end-of-run table: time per phase, error per layer (mean over blocks), fallbacks,
  // the calibration seq_len actually used.
  std::string table() const;

 private:
  nlohmann::json j_;
  nlohmann::json salient_ = nlohmann::json::object();
};

// Writes --dump-salient's JSON ({"salient_quota", "method", "statistic", "linears": {name:
// [columns]}}) when the option is set: into the output's partial directory when the path lies
// inside the output directory (so it appears with the checkpoint), else atomically at the path.
void write_salient_dump(const Options& o, const RunSummary& summary, const io::OutputDir& out);

}  // namespace sq::coordinator
