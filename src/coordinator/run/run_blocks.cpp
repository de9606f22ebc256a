// --parallel blocks and the single process (issue 6 point 3, issue 18 point 1): rank r steps
// through its contiguous range of blocks with the per-block step (rank/worker/block_step.h).
//   Chain — one rank (every block), or --propagate quant on several (a relay: quantized
//   activations exist only once the previous rank's blocks are solved): the rank's input arrives
//   whole (rank 0: the embeddings; rank r > 0: rank r−1's output) and each block's output is the
//   next one's input.
//   FP stream — AWQ and GPTQ --propagate fp on several ranks: the full-precision activations
//   stream from rank to rank in micro-batches first (rank/worker/worker.h), then each rank solves
//   its own blocks on the inputs it kept.
#include <chrono>
#include <csignal>

#include "common/check.h"
#include "common/interrupt.h"
#include "common/log.h"
#include "coordinator/run/merge.h"
#include "coordinator/run/run_internal.h"
#include "rank/quant/block_export.h"
#include "rank/transport/transport_fault.h"
#include "rank/worker/worker.h"

namespace sq::coordinator::run {
namespace {

using clock = std::chrono::steady_clock;

// Sent before a relay's activations: their shape, which an OOM back-off may have changed.
constexpr int kRelayShapeTag = rank::kActivationTag - 1;

rank::StreamShape shape_of(const RankRun& run, int64_t n, int64_t T, const at::Tensor& mask) {
  rank::StreamShape s;
  s.n = n;
  s.T = T;
  s.hidden = run.plan.config.hidden_size;
  s.micro_batch = rank::micro_batch_for(run.step.micro_batch, T);
  s.dtype = run.dtype;
  s.device = run.dev;
  s.mask = mask;
  return s;
}

void send_relay(rank::Transport& t, int dst, const RankRun& run, const rank::CalibActivations& a) {
  at::Tensor shape = at::tensor({a.samples(), a.seq_len()}, at::kLong).to(t.device());
  t.send(shape, dst, kRelayShapeTag);
  for (const auto& mb : rank::micro_batches(shape_of(run, a.samples(), a.seq_len(), a.mask)))
    rank::send_activations(t, dst, a.x.slice(0, mb.first, mb.last), mb);
}

rank::CalibActivations recv_relay(rank::Transport& t, int src, const RankRun& run) {
  at::Tensor shape = at::empty({2}, at::TensorOptions().dtype(at::kLong).device(t.device()));
  t.recv(shape, src, kRelayShapeTag);
  shape = shape.cpu();
  const int64_t n = shape[0].item<int64_t>(), T = shape[1].item<int64_t>();
  // The mask follows the sender's back-off (x is a placeholder of the original shape).
  rank::CalibActivations a{at::empty({run.tokens.size(0), run.tokens.size(1), 1}), run.mask};
  rank::halve_to(a, T);
  SQ_CHECK(a.samples() == n, "relay from rank " << src << ": " << n << " x " << T
                                                << " activations, expected " << a.samples()
                                                << " samples at that seq_len");
  if (T != run.tokens.size(1))
    log()->warn("relay from rank {} arrives at seq_len {} ({} sequences; its OOM back-off), kept",
                src, T, n);
  const rank::StreamShape s = shape_of(run, n, T, a.mask);
  a.x = rank::collect(
      s, [&](const rank::MicroBatch& mb) { return rank::recv_activations(t, src, s, mb); });
  return a;
}

// A relay transfer that a signal may give up (common/interrupt.h: the transports' point-to-point
// waits are abandon points): a rank waiting for its neighbour, which stopped on the same signal,
// would otherwise keep every rank from agreeing to stop until the launcher's SIGKILL (mpirun
// sends it a second after SIGTERM). The stop says how far this rank's blocks got (`done`).
template <typename F>
auto abandonable(int64_t done, int64_t total, F&& transfer) {
  try {
    AbandonScope scope;
    return transfer();
  } catch (const Interrupted&) {
    stop_if_interrupted(done, total);
    throw;
  }
}

// Rebuilds the chain's input of block `to` from that of block `from` in `a` (checkpoint.h): each
// block again as the interrupted run computed its output — the source block under full-precision
// propagation, the block holding the written quantized weights otherwise — at the seq_len it was
// solved at, in the solver's micro-batches.
void recompute_chain(const RankRun& run, rank::CalibActivations& a, int64_t from, int64_t to,
                     const std::vector<int64_t>& seq_lens, int64_t first) {
  const bool fp = run.step.propagate_fp();
  for (int64_t i = from; i < to; ++i) {
    stop_if_interrupted(to, static_cast<int64_t>(run.plan.blocks.size()));  // `to` are done
    SQ_REQUIRE(i - first < static_cast<int64_t>(seq_lens.size()),
               "checkpoint of rank " << run.t.rank() << " lacks the seq_len of block " << i
                                     << "; remove " << run.dp.partial_dir << " to start over");
    rank::halve_to(a, seq_lens[i - first]);
    rank::Block block(run.w, run.plan.config, i, run.dev, run.dtype);
    if (!fp) {
      const std::string path = fragment_path(run.dp.partial_dir, i);
      SQ_REQUIRE(std::filesystem::exists(path),
                 "resume: block " << i << "'s fragment " << path << ", needed to recompute the "
                                  << "input of the blocks after it, is missing; remove "
                                  << run.dp.partial_dir << " to start over");
      const FragmentContent c = read_fragment(path);
      rank::import_quantized(block, c.tensors, c.unpacked_qzeros, run.step.export_opts);
    }
    a.x = rank::run_block(block, a.x, a.mask,
                          rank::micro_batch_for(run.step.micro_batch, a.seq_len()));
  }
}

}  // namespace

bool chain_recomputable(const RankRun& run) {
  if (run.step.propagate_fp()) return true;
  return !run.step.awq && rank::import_is_exact(run.step.export_opts);
}

rank::WorkerTimes plus(const rank::WorkerTimes& a, const rank::WorkerTimes& b) {
  return {a.blocks + b.blocks, a.load + b.load, a.quant_only + b.quant_only, a.export_ + b.export_};
}

void stop_if_interrupted(int64_t done, int64_t total) {
  const int sig = interrupt_signal();
  if (sig == 0) return;
  throw Interrupted(std::string(sig == SIGINT ? "SIGINT" : "SIGTERM") +
                        ": interrupted after block " + std::to_string(done) + " of " +
                        std::to_string(total) + "; rerun with --resume",
                    sig);
}

void run_blocks_mode(RankRun& run, RankOutcome& out) {
  rank::Transport& t = run.t;
  const int r = t.rank(), W = t.world();
  const BlockRange range = run.dp.ranges.at(r);
  const int64_t n = run.tokens.size(0), T = run.tokens.size(1);
  const int64_t L = static_cast<int64_t>(run.plan.blocks.size());
  const Checkpoint* ck = run.resumed;
  // Blocks of this range done before (the checkpoint's), and the times they took.
  const int64_t start = ck ? ck->next : range.first;
  rank::WorkerTimes before;
  if (ck) {
    out.blocks.blocks = ck->blocks;
    out.blocks.salient = ck->salient;
    out.blocks.host_memory = ck->host_memory;
    out.resumed_blocks = ck->next - range.first;
    out.resumed_seconds = ck->seconds();
    before = ck->times;
    log()->info("rank {}: resuming after block {} ({} of this rank's {} blocks done before, {})", r,
                start, out.resumed_blocks, range.size(), human_seconds(out.resumed_seconds));
  }
  rank::BlockWorker worker(run.step, run.w, run.plan.config, run.dev, run.dtype, range.last - start,
                           nullptr, run.sink);
  const bool chain = W == 1 || run.o.propagate == Propagate::kQuant;
  const auto step = [&](int64_t i, rank::CalibActivations& a, int64_t next,
                        std::unique_ptr<rank::Block> built) {
    // A signal that arrived during the previous block stops the run here, its checkpoint
    // written; one during the last block of the range lets the range finish.
    // With --checkpoint-every > 0 the last checkpoint may lie blocks back: a stop writes one
    // now, at block i, whose input `a` still is (an abandoned step leaves it untouched).
    rank::StepResult res;
    try {
      stop_if_interrupted(i, L);
      rank::fault_point(r, "solve_block");
      res = worker.step(i, a, next, std::move(built));
    } catch (const Interrupted&) {
      if (run.checkpoint && i > start) run.checkpoint(i, chain ? &a : nullptr, out, true);
      throw;
    }
    out.blocks.add(i, res.result, res.seconds);
    out.samples = a.samples();
    out.seq_len = a.seq_len();
    out.seq_lens.push_back(a.seq_len());
    out.times = plus(before, worker.times());
    if (run.checkpoint) run.checkpoint(i + 1, chain ? &a : nullptr, out, false);
  };
  out.samples = ck ? ck->samples : n;
  out.seq_len = ck ? ck->seq_len : T;
  if (ck) out.seq_lens = ck->seq_lens;
  out.times = before;

  if (W > 1)
    log()->info("rank {}: blocks {}..{} ({})", r, range.first, range.last - 1,
                chain ? "relay of quantized activations" : "streamed FP activations");
  if (chain) {
    rank::CalibActivations a;
    if (r > 0) {
      // (the relay protocol runs whatever this rank resumes)
      a = abandonable(start, L, [&] { return recv_relay(t, r - 1, run); });
    }
    // A range done to its end on the last rank needs no input any more.
    const bool need_input = !ck || start < range.last || r + 1 < W;
    // Resumed: the newest activations generation up to `start`, else the range's input; the
    // blocks between are forwarded again (checkpoint.h).
    int64_t from = range.first;
    if (ck && need_input) {
      const int64_t g = newest_activations(run.dp.partial_dir, r, start);
      if (g > range.first) {
        const auto x = read_checkpoint(activations_path(run.dp.partial_dir, r, g));
        SQ_REQUIRE(x && x->x.defined(), "activations " << activations_path(run.dp.partial_dir, r, g)
                                                       << " hold no tensor; remove "
                                                       << run.dp.partial_dir << " to start over");
        a = {x->x.to(run.dev), x->mask.defined() ? x->mask.to(run.dev) : at::Tensor()};
        from = g;
      }
      SQ_REQUIRE(from == start || chain_recomputable(run),
                 "checkpoint of rank " << r << " lacks the activations of block " << start
                                       << " (this run's chain cannot be recomputed); remove "
                                       << run.dp.partial_dir << " to start over");
    }
    if (r == 0 && need_input && from == range.first)
      a = {embed(run, 0, n, rank::micro_batch_for(run.step.micro_batch, T)), run.mask};
    if (ck && need_input && from < start) {
      const auto t0 = clock::now();
      log()->info(
          "rank {}: recomputing the input of block {} from block {}'s ({} block(s) forward)", r,
          start, from, start - from);
      recompute_chain(run, a, from, start, ck->seq_lens, range.first);
      out.recomputed_blocks = start - from;
      out.recompute_seconds = seconds_between(t0, clock::now());
      log()->info("rank {}: {} block(s) recomputed in {}", r, start - from,
                  human_seconds(out.recompute_seconds));
    }
    for (int64_t i = start; i < range.last; ++i)
      step(i, a, i + 1 < range.last ? i + 1 : -1, nullptr);
    if (r + 1 < W) abandonable(range.last, L, [&] { send_relay(t, r + 1, run, a); });
    return;
  }

  const rank::StreamShape s = shape_of(run, n, T, run.mask);
  // Rank 0's source is the embedding, in the single process's micro-batches.
  const rank::MicroSource source = [&](const rank::MicroBatch& mb) {
    if (r > 0) return rank::recv_activations(t, r - 1, s, mb);
    return embed(run, mb.first, mb.last, mb.last - mb.first);
  };
  const rank::MicroSink sink = [&](const rank::MicroBatch& mb, const at::Tensor& y) {
    if (r + 1 < W) rank::send_activations(t, r + 1, y, mb);
  };
  // The FP stream runs through every block of the range even when resuming (the ranks after
  // this one need its output; the inputs are recomputed, not checkpointed).
  std::vector<std::unique_ptr<rank::Block>> owned;
  std::vector<rank::Block*> blocks;
  for (int64_t i = range.first; i < range.last; ++i) {
    owned.push_back(std::make_unique<rank::Block>(run.w, run.plan.config, i, run.dev, run.dtype));
    blocks.push_back(owned.back().get());
  }
  const auto t0 = clock::now();
  std::vector<at::Tensor> inputs = rank::stream_fp(blocks, s, source, sink);
  log()->info("rank {}: FP stream through {} blocks in {}", r, blocks.size(),
              human_seconds(seconds_between(t0, clock::now())));
  int64_t seq_len = out.seq_len;
  for (size_t k = 0; k < blocks.size(); ++k) {
    const int64_t i = range.first + static_cast<int64_t>(k);
    if (i < start) {
      owned[k].reset();
      inputs[k] = at::Tensor();
      continue;
    }
    rank::CalibActivations a{std::move(inputs[k]), run.mask};
    rank::halve_to(a, seq_len);  // an earlier block's back-off: the shorter seq_len stays
    step(i, a, -1, std::move(owned[k]));
    seq_len = a.seq_len();
  }
}

}  // namespace sq::coordinator::run
