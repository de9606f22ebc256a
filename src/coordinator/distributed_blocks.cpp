// --parallel blocks (issue 6 point 3). AWQ and GPTQ --propagate fp: the FP activations stream
// from rank to rank (rank/worker.h), then each rank solves its own blocks on the inputs it kept;
// GPTQ --propagate quant: a relay — rank r waits for rank r−1's quantized output.
#include <chrono>

#include "common/check.h"
#include "common/log.h"
#include "coordinator/distributed_internal.h"
#include "coordinator/run_support.h"
#include "rank/transport_fault.h"
#include "rank/worker.h"

namespace sq::coordinator::dist {
namespace {

using clock = std::chrono::steady_clock;

rank::StreamShape shape_of(const RankRun& run) {
  rank::StreamShape s;
  s.n = run.tokens.size(0);
  s.T = run.tokens.size(1);
  s.hidden = run.plan.config.hidden_size;
  s.micro_batch = run.micro_batch;
  s.dtype = run.dtype;
  s.device = run.dev;
  s.mask = run.mask;
  return s;
}

rank::BlockQuantResult solve(const RankRun& run, rank::Block& block, const at::Tensor& x) {
  const Options& o = run.o;
  const rank::KeepFp keep_fp = keep_fp_from_plan(run.plan);
  return o.method == Method::kAwq
             ? rank::awq_quantize_block(block, x, run.mask, run.plan.config, run.w,
                                        awq_settings(o, run.micro_batch), keep_fp)
             : rank::gptq_quantize_block(block, x, run.mask, run.plan.config, run.w,
                                         gptq_settings(o, run.micro_batch), keep_fp);
}

}  // namespace

void record_block(const RankRun& run, rank::Block& block, const rank::BlockQuantResult& res,
                  double seconds, RankReport& rep, rank::NamedTensors& out) {
  rank::ExportOptions xo = export_options(run.o, run.plan);
  // Once a zero point of 0 occurred on this rank, later blocks go out as v2 directly; rank 0
  // rewrites the v1 ones of every rank when any rank saw one (the single-process outcome).
  if (rep.zero_zero && xo.format == io::PackFormat::kGptqV1) xo.format = io::PackFormat::kGptqV2;
  for (auto& nt :
       rank::export_block(block, res.quantized, run.w, xo, &rep.zero_zero, &rep.v1_qzeros))
    out.push_back(std::move(nt));
  nlohmann::json b = {{"index", block.index()}, {"seconds", seconds}, {"notes", res.notes}};
  b["reports"] = nlohmann::json::array();
  for (const auto& r : res.reports)
    b["reports"].push_back({{"name", r.name},
                            {"error", r.error},
                            {"seconds", r.seconds},
                            {"damp_escalations", r.stats.damp_escalations},
                            {"diagonal_floor", r.stats.diagonal_floor},
                            {"rtn_fallback", r.stats.rtn_fallback},
                            {"dead_columns", r.stats.dead_columns},
                            {"note", r.note},
                            {"salient", r.salient}});
  rep.blocks.push_back(b);
  const size_t uncal = rank::uncalibrated_linears(res).size();  // MoE experts never routed to
  log()->info("block {}/{}: {} linears quantized in {} (mean error {:.4g}){}", block.index() + 1,
              run.plan.blocks.size(), res.quantized.size(), human_seconds(seconds), mean_error(res),
              uncal ? ", " + std::to_string(uncal) + " without calibration tokens (RTN)" : "");
}

rank::NamedTensors run_blocks_mode(RankRun& run, RankReport& rep) {
  rank::Transport& t = run.t;
  const int r = t.rank(), W = t.world();
  const BlockRange range = run.dp.ranges.at(r);
  const rank::StreamShape s = shape_of(run);
  // Rank 0's source is the embedding, in the single-process run's micro-batches.
  const rank::MicroSource source = [&](const rank::MicroBatch& mb) {
    if (r > 0) return rank::recv_activations(t, r - 1, s, mb);
    rank::BlockContext ctx = rank::make_context(mb.last - mb.first, s.T, run.dev);
    return run.model->embed(run.tokens.slice(0, mb.first, mb.last).to(run.dev), ctx);
  };
  const rank::MicroSink sink = [&](const rank::MicroBatch& mb, const at::Tensor& y) {
    if (r + 1 < W) rank::send_activations(t, r + 1, y, mb);
  };
  // Quantized activations exist only once the previous rank's blocks are solved: relay them.
  const bool relay = run.o.propagate == Propagate::kQuant;
  log()->info("rank {}: blocks {}..{} ({})", r, range.first, range.last - 1,
              relay ? "relay of quantized activations" : "streamed FP activations");

  rank::NamedTensors out;
  if (relay) {
    at::Tensor x = rank::collect(s, source);
    for (int64_t i = range.first; i < range.last; ++i) {
      const auto tb = clock::now();
      rank::Block block(run.w, run.plan.config, i, run.dev, run.dtype);
      rank::fault_point(r, "solve_block");
      rank::BlockQuantResult res = solve(run, block, x);
      x = res.next_input;
      record_block(run, block, res, seconds_between(tb, clock::now()), rep, out);
    }
    for (const auto& mb : rank::micro_batches(s)) sink(mb, x.slice(0, mb.first, mb.last));
    return out;
  }

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
  for (size_t k = 0; k < blocks.size(); ++k) {
    const auto tb = clock::now();
    rank::fault_point(r, "solve_block");
    rank::BlockQuantResult res = solve(run, *blocks[k], inputs[k]);
    inputs[k] = at::Tensor();  // the input is no longer needed: bound the memory
    record_block(run, *blocks[k], res, seconds_between(tb, clock::now()), rep, out);
    owned[k].reset();
  }
  return out;
}

}  // namespace sq::coordinator::dist
