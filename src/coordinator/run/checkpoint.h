// Per-block checkpoints of a quantization run and the check that a resume continues the same run
// (issue 22; README "Interrupted runs").
//
// CONTRACT
//   * Each rank keeps one record, <out>.partial/.checkpoint/rank-<r>.h5 (io/hdf5/hdf5_record.h:
//     atomic, fsynced), rewritten after each of its blocks before the next one starts: how far its
//     range got (`next`, the first block not done), its summary entries and times for the done
//     blocks, the calibration seq_len each done block was solved at (`seq_lens`, OOM back-off),
//     the calibration shape it ended with, and the direct shard writer's closed shards (one
//     process, format known up front). The block tensors themselves are in the fragments
//     (merge.h) or the closed shards. The record holds no activations: it is kilobytes.
//   * The chain's activations (one process, or --propagate quant across ranks: each block's
//     input is the previous block's output) are not needed to resume, only to resume faster.
//     A resume recomputes the input of block `next` from the newest activations generation
//     <out>.partial/.checkpoint/rank-<r>.x-<k>.h5 with k ≤ next (the input of block k, `x` and
//     `mask`; none: the rank's first block's input, i.e. the embeddings or the relay) by
//     forwarding blocks k .. next−1 again (run_blocks.cpp: recompute_chain) — with the source
//     weights where the chain propagates full-precision outputs, with the written quantized
//     weights (rank::import_quantized, exact) under GPTQ's --propagate quant. Those are the
//     bits the interrupted run had. AWQ with --propagate quant (its scaled norms are not
//     written at compute precision) and compressed-tensors with bf16 scales
//     (rank::import_is_exact) cannot be recomputed: their chains write a generation after every
//     block, on disk before the record that needs it.
//   * Generations: written in the background when CheckpointPolicy says so; after each record
//     the generations older than the newest one the record can use are removed, and so are (in
//     direct mode) the fragments of blocks before it whose tensors sit in closed shards.
//   * run_fingerprint(): what must be equal for a resume to give the uninterrupted run's bytes:
//     the model (config.json bytes, every shard's header), the plan digest, the options that
//     change results, the calibration provenance, device type and compute dtype, rank count,
//     mode and block ranges. Resource options (threads, --gpu-mem-limit, --hessian-budget,
//     --comm-timeout, --transport, --checkpoint-every, logging) are not part of it.
//   * fingerprint_differences(saved, now): "key: checkpoint X, now Y" lines, empty when equal.
//   * --parallel data: every rank holds the next block's input of its own calibration samples,
//     so each rank checkpoints its share, one file per generation,
//     <out>.partial/.checkpoint/rank-<r>.next-<k>.h5 (k = the first block not done). A rank
//     keeps a generation until every rank has its next one on disk (run_data.cpp: at most three
//     files per rank); a resume takes the largest k that every rank holds (rank 0 decides: the
//     agreed checkpoint) and removes the others.
#pragma once

#include <ATen/ATen.h>

#include <atomic>
#include <exception>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "coordinator/options/options.h"
#include "coordinator/plan/plan.h"
#include "coordinator/plan/protocol.h"
#include "rank/worker/block_step.h"

namespace sq::coordinator {

std::string checkpoint_dir(const std::string& partial_dir);
std::string checkpoint_path(const std::string& partial_dir, int rank);
// The rank files present (sorted), empty when none; either mode's.
std::vector<std::string> checkpoint_files(const std::string& partial_dir);
// --parallel data: rank r's checkpoint before block `next`, and the `next` of every one of rank
// r's files present (ascending).
std::string data_checkpoint_path(const std::string& partial_dir, int rank, int64_t next);
std::vector<int64_t> data_checkpoint_generations(const std::string& partial_dir, int rank);
// Removes rank r's data-mode files whose `next` lies outside [keep_first, keep_last].
void remove_data_checkpoints(const std::string& partial_dir, int rank, int64_t keep_first,
                             int64_t keep_last);
// The chain's activations generations of rank r: the input of block `next`, and the `next` of
// every one present (ascending). newest_activations: the largest k ≤ `next` present, else -1.
std::string activations_path(const std::string& partial_dir, int rank, int64_t next);
std::vector<int64_t> activations_generations(const std::string& partial_dir, int rank);
int64_t newest_activations(const std::string& partial_dir, int rank, int64_t next);
// Removes rank r's activations generations below `keep`.
void remove_activations_below(const std::string& partial_dir, int rank, int64_t keep);

nlohmann::json run_fingerprint(const Options& o, const Plan& plan, const DistPlan& dp,
                               const nlohmann::json& calib_provenance, at::ScalarType dtype,
                               const at::Device& dev);
std::vector<std::string> fingerprint_differences(const nlohmann::json& saved,
                                                 const nlohmann::json& now);

struct Checkpoint {
  nlohmann::json fingerprint;
  int rank = 0;
  int64_t first = 0, last = 0;                      // the rank's range
  int64_t next = 0;                                 // first block of the range not done
  int64_t blocks_total = 0;                         // blocks of the model
  nlohmann::json blocks = nlohmann::json::array();  // BlockLog of the done blocks
  nlohmann::json salient = nlohmann::json::object();
  nlohmann::json host_memory = nlohmann::json::object();
  int64_t samples = 0, seq_len = 0;
  std::vector<int64_t> seq_lens;  // seq_len each done block was solved at, from `first`
  rank::WorkerTimes times;
  nlohmann::json writer;  // ShardedWriter::closed_state() of the direct writer, else null
  at::Tensor x, mask;     // generations only: the input of block `next` (CPU)
  // Seconds of block steps the done blocks took (what a resume saves).
  double seconds() const;
};

void write_checkpoint(const std::string& path, const Checkpoint& c);
// nullopt when absent; BackendError when unreadable. `tensors` false: x and mask are not read.
std::optional<Checkpoint> read_checkpoint(const std::string& path, bool tensors = true);

// When the chain's activations are written (--checkpoint-every SEC). A generation is the next
// block's input (GiBs for a large model: a device → host copy plus a disk write); on the H100 a
// 1b GPTQ run (16 blocks of 2 GiB) spent 50 s of its 61 s end to end waiting for one per block.
// The record after each block is written regardless; the generations only bound how many blocks a
// resume forwards again. So with SEC > 0 one is taken once SEC seconds have passed since the last
// one (or the start), and only if the previous write has finished (the run never waits for the
// disk). SEC = 0: after every block, on disk before the next block starts.
struct CheckpointPolicy {
  double every_s = 0;
  bool activations_due(double seconds_since_last, bool writer_busy) const {
    if (every_s <= 0) return true;
    return seconds_since_last >= every_s && !writer_busy;
  }
};

// Writes activations generations (and data-mode checkpoints) on a background thread so that the
// next block's solve overlaps the write (a 70B block's activations are GiBs). One write at a time:
// write() first waits for the previous one (rethrowing its error), takes a private copy of the
// activations (device → host, or a clone on the CPU: the solve may reuse the buffer) and returns;
// `after` runs on the thread once the generation is on disk (it removes the older ones). flush()
// waits and rethrows; the destructor waits and drops errors (the run is failing already).
// seconds_waited(): time the caller spent in write() and flush() (the checkpoint's cost to the
// run); seconds_writing(): the thread's write time.
class CheckpointWriter {
 public:
  CheckpointWriter() = default;
  CheckpointWriter(const CheckpointWriter&) = delete;
  CheckpointWriter& operator=(const CheckpointWriter&) = delete;
  ~CheckpointWriter();
  void write(const std::string& path, Checkpoint c, std::function<void()> after);
  void flush();
  // True while the previous write() is still on its way to disk.
  bool busy() const { return thread_.joinable() && !finished_.load(); }
  double seconds_waited() const { return waited_; }
  double seconds_writing() const { return writing_; }

 private:
  void join();
  std::thread thread_;
  std::atomic<bool> finished_{true};
  std::exception_ptr error_;
  double waited_ = 0, writing_ = 0;
};

}  // namespace sq::coordinator
