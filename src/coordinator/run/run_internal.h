// Pieces shared by the quantization run's translation units (not a public contract).
#pragma once

#include <ATen/ATen.h>

#include <nlohmann/json.hpp>

#include <functional>
#include <optional>

#include "coordinator/options/options.h"
#include "coordinator/plan/plan.h"
#include "coordinator/plan/protocol.h"
#include "coordinator/run/checkpoint.h"
#include "coordinator/run/run_support.h"
#include "io/model/model_weights.h"
#include "rank/model/model.h"
#include "rank/transport/transport.h"
#include "rank/worker/block_step.h"

namespace sq::coordinator::run {

struct RankOutcome;

// What one rank has for the quantization step.
struct RankRun {
  const Options& o;
  const Plan& plan;
  const DistPlan& dp;
  rank::Transport& t;
  io::ModelWeights& w;
  at::Device dev;
  at::ScalarType dtype;
  at::Tensor tokens;             // [n, T] int64 calibration tokens (CPU)
  at::Tensor mask;               // [n, T] bool on dev, undefined when every token is real
  rank::Model* model = nullptr;  // embeddings; null on ranks that never embed
  rank::StepSettings step;       // the per-block step's settings (step_settings)
  rank::BlockSink sink;          // this rank's fragment writer
  // Resume (issue 22): this rank's checkpoint when --resume found one matching this run.
  const Checkpoint* resumed = nullptr;
  // Called after each block with the first block not done, the chain's input of that block
  // (null where the next input is recomputed: the FP stream) and the rank's outcome so far;
  // writes the record (blocks mode) and an activations generation when CheckpointPolicy says
  // one is due (checkpoint.h); `force`: a signal stopped the run (the record only, unless the
  // chain cannot be recomputed).
  std::function<void(int64_t next, const rank::CalibActivations* chain_input,
                     const RankOutcome& so_far, bool force)>
      checkpoint;
};

// What a rank reports after its quantization step.
struct RankOutcome {
  BlockLog blocks;
  int64_t samples = 0, seq_len = 0;  // the calibration shape it ended with (OOM back-off)
  std::vector<int64_t> seq_lens;     // seq_len each done block was solved at, from range.first
  rank::WorkerTimes times;
  int64_t resumed_blocks = 0;  // blocks taken from the checkpoint
  double resumed_seconds = 0;  // what they took in the interrupted run(s)
  int64_t recomputed_blocks = 0;  // resumed blocks forwarded again to rebuild the chain's input
  double recompute_seconds = 0;   // and the time that took
};

// Worker times of this run plus those of the checkpoint's blocks.
rank::WorkerTimes plus(const rank::WorkerTimes& a, const rank::WorkerTimes& b);
// Throws sq::Interrupted ("interrupted after block i of n; rerun with --resume") when SIGTERM or
// SIGINT arrived (common/interrupt.h); `done` = blocks of the model done.
void stop_if_interrupted(int64_t done, int64_t total);

// Resume (issue 22): with --resume, this rank's checkpoint to continue, nullopt when there is
// none (start from the first block). Refused on every rank (InputError naming each difference
// and how to start over) when the checkpoint, or with none of this rank's any checkpoint file
// present, was written by another run (checkpoint.h: run_fingerprint), or when it records a
// block whose fragment is gone. --parallel data: the largest generation that every rank holds,
// chosen by rank 0; each rank removes its other generations. Collective.
std::optional<Checkpoint> find_resume_checkpoint(rank::Transport& t, const Options& o,
                                                 const DistPlan& dp,
                                                 const nlohmann::json& fingerprint);

// Embeddings of samples [s0, s1) in micro-batches of `micro_batch` (the single process's
// boundaries when s0 is a multiple of it).
at::Tensor embed(const RankRun& run, int64_t s0, int64_t s1, int64_t micro_batch);

// Whether the chain's activations can be recomputed from the source and the written tensors
// (checkpoint.h); false: every block's record needs an activations generation on disk first.
bool chain_recomputable(const RankRun& run);

// --parallel blocks (and the single process): this rank's blocks.
void run_blocks_mode(RankRun& run, RankOutcome& out);
// --parallel data.
void run_data_mode(RankRun& run, RankOutcome& out);

}  // namespace sq::coordinator::run
