// --parallel data (issue 6 point 4), GPTQ: every rank walks all blocks on its contiguous share of
// the calibration samples; Hessian sums and token counts are all-reduced (the transports have no
// reduce-to-root; the all-reduce is deterministic), only the group's owner from the plan solves
// it and broadcasts the result, and each rank computes the quantized outputs of its own samples
// for the next block. AWQ: the x statistics, the grid losses and the clip errors are all-reduced
// with their counts inside awq_quantize_block, so every rank picks the same α and clips (no
// owner, no broadcast: the search is cheap next to the forward passes it sums over), and each
// rank carries its own samples' FP outputs to the next block. Every rank steps through every
// block with the per-block step (rank/worker/block_step.h); rank 0 exports.
// Checkpoints (issue 22): each rank's next-block input is its own samples' activations, so each
// rank writes its own generation files (checkpoint.h), the write of generation i started inside
// the agreement that opens block i. CheckpointWriter::write first waits for the rank's previous
// write, so once every rank has passed that agreement, generation i − 1 is on disk on every rank
// and the older ones can go. A rank so holds at most three: i − 1 (on disk everywhere), i (on
// disk here) and i + 1 (being written while block i + 1 is solved); a kill anywhere leaves at
// least one that every rank holds (the resume takes the largest: run_resume.cpp).
#include <limits>
#include <map>

#include "common/check.h"
#include "common/log.h"
#include "coordinator/run/run_internal.h"
#include "rank/transport/reduce.h"
#include "rank/transport/transport_fault.h"

namespace sq::coordinator::run {

at::Tensor embed(const RankRun& run, int64_t s0, int64_t s1, int64_t micro_batch) {
  const int64_t T = run.tokens.size(1);
  std::vector<at::Tensor> parts;
  for (int64_t b0 = s0; b0 < s1; b0 += micro_batch) {
    const int64_t b1 = std::min(s1, b0 + micro_batch);
    rank::BlockContext ctx = rank::make_context(b1 - b0, T, run.dev);
    parts.push_back(run.model->embed(run.tokens.slice(0, b0, b1).to(run.dev), ctx));
  }
  return parts.size() == 1 ? parts[0] : at::cat(parts, 0);
}

void run_data_mode(RankRun& run, RankOutcome& out) {
  rank::Transport& t = run.t;
  const int r = t.rank(), W = t.world();
  const int64_t n = run.tokens.size(0), T = run.tokens.size(1);
  const int64_t mb = rank::micro_batch_for(run.step.micro_batch, T);
  const auto [s0, s1] = sample_share(n, W, r, mb);
  log()->info("rank {}: samples {}..{} of {}", r, s0, s1 - 1, n);
  if (r == 0 && (n + mb - 1) / mb < W)
    log()->warn(
        "--parallel data: {} micro-batch(es) of {} samples for {} ranks, so shares split "
        "micro-batches: results can differ from one process by GEMM rounding (a smaller "
        "--micro-batch keeps them identical)",
        (n + mb - 1) / mb, mb, W);
  const int64_t L = static_cast<int64_t>(run.plan.blocks.size());
  const Checkpoint* ck = run.resumed;
  const int64_t start = ck ? ck->next : 0;
  rank::WorkerTimes before;
  rank::CalibActivations a;
  if (ck) {
    out.blocks.blocks = ck->blocks;  // rank 0's; the others keep none
    out.blocks.salient = ck->salient;
    out.blocks.host_memory = ck->host_memory;
    out.resumed_blocks = r == 0 ? start : 0;  // counted once in the summary
    out.resumed_seconds = ck->seconds();
    before = ck->times;
    log()->info("rank {}: resuming at block {} of {} from the checkpoint ({} of block time done)",
                r, start, L, human_seconds(ck->seconds()));
    SQ_CHECK(start == L || ck->x.defined(),
             "checkpoint of rank " << r << " lacks the activations of block " << start);
    if (start < L)
      a = {ck->x.to(run.dev), ck->mask.defined() ? ck->mask.to(run.dev) : at::Tensor()};
  } else {
    a = {embed(run, s0, s1, mb), run.mask.defined() ? run.mask.slice(0, s0, s1) : at::Tensor()};
  }
  out.samples = ck ? ck->samples : a.samples();
  out.seq_len = ck ? ck->seq_len : a.seq_len();
  out.times = before;
  std::map<std::string, int> owner_of;
  for (const auto& g : run.dp.groups)
    for (const auto& name : g.linears) owner_of[name] = g.owner;
  const rank::TransportReducer reducer(t, [&owner_of](const std::string& linear) {
    auto it = owner_of.find(linear);
    return it == owner_of.end() ? -1 : it->second;
  });
  // Every rank holds the same quantized block; rank 0 writes it.
  rank::BlockWorker worker(run.step, run.w, run.plan.config, run.dev, run.dtype, L - start,
                           &reducer, r == 0 ? run.sink : rank::BlockSink());
  constexpr int64_t kAll = std::numeric_limits<int64_t>::max();
  for (int64_t i = start; i < L; ++i) {
    // Every block starts with an agreement: a rank that fails between blocks (a checkpoint
    // write that failed included, or a fault injected at solve_block) stops every rank here
    // instead of leaving them in a collective. A SIGTERM / SIGINT stops every rank here too,
    // the checkpoint before block i being written (joined when the run unwinds).
    rank::agreed_step(t, "block", [&] {
      if (i > start && run.checkpoint) run.checkpoint(i, &a, out, false);
      rank::fault_point(r, "solve_block");
      stop_if_interrupted(i, L);
    });
    if (i > start) remove_data_checkpoints(run.dp.partial_dir, r, i - 1, kAll);
    const rank::StepResult res = worker.step(i, a, i + 1 < L ? i + 1 : -1);
    if (r == 0) out.blocks.add(i, res.result, res.seconds);
    out.samples = a.samples();
    out.seq_len = a.seq_len();
    out.times = plus(before, worker.times());
  }
  // The checkpoint after the last block (a kill during the merge resumes at the merge), flushed
  // by the caller.
  if (start < L)
    rank::agreed_step(t, "block", [&] {
      if (run.checkpoint) run.checkpoint(L, &a, out, false);
    });
}

}  // namespace sq::coordinator::run
