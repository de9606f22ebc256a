// --parallel data (issue 6 point 4), GPTQ: every rank walks all blocks on its contiguous share of
// the calibration samples; Hessian sums and token counts are all-reduced (the transports have no
// reduce-to-root; the all-reduce is deterministic), only the group's owner from the plan solves
// it and broadcasts the result, and each rank computes the quantized outputs of its own samples
// for the next block. AWQ: the x statistics, the grid losses and the clip errors are all-reduced
// with their counts inside awq_quantize_block, so every rank picks the same α and clips (no
// owner, no broadcast: the search is cheap next to the forward passes it sums over), and each
// rank carries its own samples' FP outputs to the next block. Rank 0 exports.
#include <chrono>
#include <map>

#include "common/check.h"
#include "common/log.h"
#include "coordinator/distributed_internal.h"
#include "coordinator/run_support.h"
#include "rank/reduce.h"
#include "rank/transport_fault.h"

namespace sq::coordinator::dist {

rank::NamedTensors run_data_mode(RankRun& run, RankReport& rep) {
  using clock = std::chrono::steady_clock;
  rank::Transport& t = run.t;
  const int r = t.rank(), W = t.world();
  const int64_t n = run.tokens.size(0), T = run.tokens.size(1);
  const auto [s0, s1] = sample_share(n, W, r, run.micro_batch);
  log()->info("rank {}: samples {}..{} of {}", r, s0, s1 - 1, n);
  if (r == 0 && (n + run.micro_batch - 1) / run.micro_batch < W)
    log()->warn(
        "--parallel data: {} micro-batch(es) of {} samples for {} ranks, so shares split "
        "micro-batches: results can differ from one process by GEMM rounding (a smaller "
        "--micro-batch keeps them identical)",
        (n + run.micro_batch - 1) / run.micro_batch, run.micro_batch, W);
  at::Tensor mask = run.mask.defined() ? run.mask.slice(0, s0, s1) : at::Tensor();
  at::Tensor x;
  {
    std::vector<at::Tensor> parts;
    for (int64_t b0 = s0; b0 < s1; b0 += run.micro_batch) {
      const int64_t b1 = std::min(s1, b0 + run.micro_batch);
      rank::BlockContext ctx = rank::make_context(b1 - b0, T, run.dev);
      parts.push_back(run.model->embed(run.tokens.slice(0, b0, b1).to(run.dev), ctx));
    }
    x = at::cat(parts, 0);
  }
  std::map<std::string, int> owner_of;
  for (const auto& g : run.dp.groups)
    for (const auto& name : g.linears) owner_of[name] = g.owner;
  const rank::TransportReducer reducer(t, [&owner_of](const std::string& linear) {
    auto it = owner_of.find(linear);
    return it == owner_of.end() ? -1 : it->second;
  });
  const rank::KeepFp keep_fp = keep_fp_from_plan(run.plan);
  const bool awq = run.o.method == Method::kAwq;
  const rank::GptqSettings st = gptq_settings(run.o, run.micro_batch);
  const rank::AwqSettings ast = awq_settings(run.o, run.micro_batch);
  rank::NamedTensors out;
  const int64_t L = static_cast<int64_t>(run.plan.blocks.size());
  for (int64_t i = 0; i < L; ++i) {
    const auto tb = clock::now();
    rank::Block block(run.w, run.plan.config, i, run.dev, run.dtype);
    // Every block starts with an agreement: a rank that fails between blocks (or a fault
    // injected at solve_block) stops every rank here instead of leaving them in a collective.
    rank::agreed_step(t, "block", [&] { rank::fault_point(r, "solve_block"); });
    rank::BlockQuantResult res = awq ? rank::awq_quantize_block(block, x, mask, run.plan.config,
                                                                run.w, ast, keep_fp, &reducer)
                                     : rank::gptq_quantize_block(block, x, mask, run.plan.config,
                                                                 run.w, st, keep_fp, &reducer);
    x = res.next_input;
    // Every rank holds the same quantized block; rank 0 writes it.
    if (r == 0)
      record_block(run, block, res, std::chrono::duration<double>(clock::now() - tb).count(), rep,
                   out);
  }
  return out;
}

}  // namespace sq::coordinator::dist
