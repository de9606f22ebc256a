// Pieces shared by the distributed run's translation units (not a public contract).
#pragma once

#include <ATen/ATen.h>

#include <nlohmann/json.hpp>

#include "coordinator/options.h"
#include "coordinator/plan.h"
#include "coordinator/protocol.h"
#include "io/calib.h"
#include "io/model_weights.h"
#include "rank/block_export.h"
#include "rank/block_quant.h"
#include "rank/model.h"
#include "rank/transport.h"

namespace sq::coordinator::dist {

// What one rank has for the quantization step.
struct RankRun {
  const Options& o;
  const Plan& plan;
  const DistPlan& dp;
  rank::Transport& t;
  io::ModelWeights& w;
  at::Device dev;
  at::ScalarType dtype;
  at::Tensor tokens;  // [n, T] int64 calibration tokens (CPU)
  at::Tensor mask;    // [n, T] bool on dev, undefined when every token is real
  int64_t micro_batch = 1;
  rank::Model* model = nullptr;  // embeddings; null on ranks that never embed
};

// Accumulates what rank 0 needs for the summary, quant config and qzeros rewrite; serialized
// through gather_bytes after the quantization step.
struct RankReport {
  bool zero_zero = false;
  std::vector<std::string> v1_qzeros;
  nlohmann::json blocks = nlohmann::json::array();  // {index, seconds, notes, reports}
  // {rank, quantize_s, peak_gpu_allocated_gib, bytes_out, bytes_in, calls}: the benchmarks'
  // per-rank time, memory and transport payload up to the end of the quantize step
  // (rank/transport_counting.h).
  nlohmann::json rank_stats = nlohmann::json::object();
};

// Block i's quantization (AWQ or GPTQ per options) followed by export; adds the exported tensors
// to `out` and the block's report lines to `rep`.
void record_block(const RankRun& run, rank::Block& block, const rank::BlockQuantResult& res,
                  double seconds, RankReport& rep, rank::NamedTensors& out);

// --parallel blocks: this rank's blocks → fragment tensors.
rank::NamedTensors run_blocks_mode(RankRun& run, RankReport& rep);
// --parallel data.
rank::NamedTensors run_data_mode(RankRun& run, RankReport& rep);

nlohmann::json to_json(const RankReport& r);
rank::BlockQuantResult report_as_result(const nlohmann::json& block);

}  // namespace sq::coordinator::dist
