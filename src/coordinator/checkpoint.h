// Per-block checkpoints of a quantization run and the check that a resume continues the same run
// (issue 22; README "Interrupted runs").
//
// CONTRACT
//   * Each rank keeps one checkpoint, <out>.partial/.checkpoint/rank-<r>.h5 (io/hdf5_record.h:
//     atomic, fsynced), rewritten after each of its blocks: how far its range got (`next`, the
//     first block not done), its summary entries and times for the done blocks, the calibration
//     shape it ended with (OOM back-off), the direct shard writer's closed shards (one process,
//     format known up front), and — where the next block's input cannot be recomputed cheaply
//     (the chain: one process, or --propagate quant across ranks) — that input itself, `x` and
//     `mask`, bit for bit. The block tensors themselves are in the fragments (merge.h) or the
//     closed shards.
//   * run_fingerprint(): what must be equal for a resume to give the uninterrupted run's bytes:
//     the model (config.json bytes, every shard's header), the plan digest, the options that
//     change results, the calibration provenance, device type and compute dtype, rank count,
//     mode and block ranges. Resource options (threads, --gpu-mem-limit, --hessian-budget,
//     --comm-timeout, --transport, logging) are not part of it.
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

#include "coordinator/options.h"
#include "coordinator/plan.h"
#include "coordinator/protocol.h"
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
  rank::WorkerTimes times;
  nlohmann::json writer;  // ShardedWriter::closed_state() of the direct writer, else null
  at::Tensor x, mask;     // the chain's input of block `next` (CPU), else undefined
  // Seconds of block steps the done blocks took (what a resume saves).
  double seconds() const;
};

void write_checkpoint(const std::string& path, const Checkpoint& c);
// nullopt when absent; BackendError when unreadable. `tensors` false: x and mask are not read.
std::optional<Checkpoint> read_checkpoint(const std::string& path, bool tensors = true);

// When a block's checkpoint is written (--checkpoint-every SEC). A checkpoint of a chain holds
// the next block's activations (GiBs for a large model) and costs a device → host copy plus a
// disk write per block: on the H100 a 1b GPTQ run (16 blocks of 2 GiB) spent 50 s of its 61 s
// end to end waiting for them. So with SEC > 0 a checkpoint is taken once SEC seconds have passed
// since the last one (or the start) and only if the previous write has finished (never waiting
// for the disk), and always when it holds no activations (a range's last block: small, and it
// lets a kill during the merge resume with nothing to redo). SEC = 0: after every block, each
// write waiting for the previous one (the tests' kill points rely on it). A resume from any
// checkpoint gives the same bytes; skipping one only means more blocks redone after a kill.
struct CheckpointPolicy {
  double every_s = 0;
  bool due(double seconds_since_last, bool holds_activations, bool writer_busy) const {
    if (every_s <= 0 || !holds_activations) return true;
    return seconds_since_last >= every_s && !writer_busy;
  }
};

// Writes checkpoints on a background thread so that the next block's solve overlaps the write
// (a 70B block's activations are GiBs). One write at a time: write() first waits for the previous
// one (rethrowing its error), takes a private copy of the activations (device → host, or a clone
// on the CPU: the solve may reuse the buffer) and returns; `after` runs on the thread once the
// record is on disk (fragment pruning). flush() waits and rethrows; the destructor waits and
// drops errors (the run is failing already). seconds_waited(): time the caller spent in write()
// and flush() (the checkpoint's cost to the run); seconds_writing(): the thread's write time.
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
