// GPTQ on one block (REFERENCE.md §2): for each true-sequential step, Hessians of the step's
// input sets are accumulated from a forward pass in which the earlier steps' linears already
// hold their quantized weights; each linear is then solved and replaced by its fake-quantized
// weight.
#include <chrono>
#include <set>

#include "common/check.h"
#include "rank/arch_table.h"
#include "rank/block_quant.h"
#include "rank/capture.h"
#include "rank/phase_clock.h"
#include "solvers/gptq_cuda.h"

namespace sq::rank {
namespace {

struct Solved {
  LinearReport report;  // name, seconds, note (error and stats are filled from q)
  solvers::QuantizedLinear q;
};

// Solves the linears of one shared-Hessian set (their accumulator already holds every rank's
// sums); the weights are not touched.
std::vector<Solved> solve_set(Block& block, HessianCapture& hc, const std::vector<std::string>& set,
                              const GptqSettings& st) {
  std::vector<Solved> out;
  at::Tensor H;
  // GPU: the set's linears share H, so one fused, batched solve (solvers/gptq_cuda.h).
  std::map<std::string, solvers::QuantizedLinear> fused;
  if (block.device().is_cuda() && solvers::gptq_cuda_built() &&
      hc.accumulator(set.front()).tokens() > 0) {
    std::vector<at::Tensor> ws;
    for (const auto& name : set) ws.push_back(block.linear(name).weight);
    H = hc.accumulator(set.front()).finalize();
    auto qs = solvers::gptq_quantize_fused(ws, H, st.scheme, st.gptq, set);
    for (size_t j = 0; j < set.size(); ++j) fused.emplace(set[j], std::move(qs[j]));
  }
  for (const auto& name : set) {
    auto t0 = std::chrono::steady_clock::now();
    auto& acc = hc.accumulator(name);
    Solved sv;
    sv.report.name = name;
    const Linear& l = block.linear(name);
    if (acc.tokens() == 0) {
      // An expert no calibration token was routed to (on any rank): H = 0, nothing to weigh the
      // errors by, so RTN — the solve GPTQ reduces to when H ∝ I, i.e. when nothing is known of
      // the input. A Hessian pooled from the other experts was the alternative and is not used:
      // the router sends each expert a different part of the input distribution (that is what
      // it learned), so another expert's XᵀX would steer the error into directions this expert's
      // inputs may well occupy; with no evidence either way, RTN's error is the unweighted
      // minimum and keeps the result independent of which other experts were reached. An expert
      // with a few tokens keeps its own damped Hessian: GPTQ compensates within the directions
      // those tokens span and is RTN-like (only λI) in the others, never worse than no data.
      sv.q = solvers::quantize_rtn(l.weight, st.scheme, solvers::GridKind::kGptq, name);
      sv.q.stats.rtn_fallback = true;
      sv.report.note = kNoTokensNote;
    } else if (fused.count(name)) {
      sv.q = std::move(fused.at(name));
    } else {
      if (!H.defined()) H = acc.finalize();
      sv.q = solvers::gptq_quantize(l.weight.to(at::kFloat), H, st.scheme, st.gptq, name);
    }
    if (st.salient_quota >= 0 && acc.tokens() > 0) {
      // Every linear of the set shares H; its diagonal is Σx² per input column.
      if (!H.defined()) H = acc.finalize();
      sv.report.salient = solvers::salient_columns(H.diagonal(), st.salient_quota);
    }
    sv.report.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    out.push_back(std::move(sv));
  }
  return out;
}

}  // namespace

BlockQuantResult gptq_quantize_block(Block& block, const at::Tensor& x, const at::Tensor& mask,
                                     const io::ModelConfig& cfg, const io::ModelWeights& w,
                                     const GptqSettings& st, const KeepFp& keep_fp,
                                     const Reducer* reducer) {
  BlockQuantResult res;
  const auto quantizable = quantizable_linears(block, cfg, w, keep_fp);
  const std::set<std::string> quant_set(quantizable.begin(), quantizable.end());
  std::set<std::string> done;
  at::Tensor fp_out;
  bool first_pass = true;
  PhaseClock clock(block.device(), res.phase_seconds);

  for (const auto& step : gptq_steps(cfg, w, block.index())) {
    std::vector<std::vector<std::string>> sets;
    std::map<std::string, int64_t> in_features;
    for (const auto& set : step.input_sets) {
      std::vector<std::string> keep;
      for (const auto& name : set)
        if (quant_set.count(name) && block.has_linear(name)) {
          keep.push_back(name);
          in_features[name] = block.linear(name).weight.size(1);
        }
      if (!keep.empty()) sets.push_back(keep);
    }
    if (sets.empty()) continue;
    HessianCapture hc(sets, in_features, block.device());
    // Only the first pass's output is ever used (as the FP output, for --propagate fp); every
    // other pass stops as soon as its step's inputs have been seen (e.g. the [k,v,q] step needs
    // nothing past the input norm).
    const bool need_output = first_pass && st.propagate_fp;
    hc.set_stop_early(!need_output);
    at::Tensor out = run_block(block, x, mask, st.micro_batch, &hc,
                               [&](const at::Tensor& m) { hc.begin_batch(m); });
    // Nothing is quantized before the first pass, so its output is the FP block output.
    if (need_output) fp_out = out;
    first_pass = false;
    clock.lap("gptq forward + hessian");
    // Data parallel: every set's sum and count over all ranks (same order on every rank).
    if (reducer != nullptr)
      for (const auto& set : sets) {
        auto& acc = hc.accumulator(set.front());
        reducer->sum(acc.sum());
        acc.set_tokens(reducer->sum(acc.tokens()));
      }
    // Data parallel: each group's owner solves it (other ranks skip the solve), then the
    // results travel from the owners in set order; without owners every rank solves alike.
    // An owner's failure travels with its results, so no rank waits for tensors never sent.
    std::vector<std::vector<Solved>> solved(sets.size());
    std::vector<Status> failed(sets.size());
    for (size_t k = 0; k < sets.size(); ++k) {
      const int owner = reducer != nullptr ? reducer->owner(sets[k].front()) : -1;
      if (owner >= 0 && owner == reducer->rank() && reducer->world() > 1) {
        try {
          solved[k] = solve_set(block, hc, sets[k], st);
        } catch (const std::exception& e) {
          failed[k] = Status::from_exception(e, owner);
        }
      } else if (owner < 0 || owner == reducer->rank()) {
        solved[k] = solve_set(block, hc, sets[k], st);
      }
    }
    for (size_t k = 0; k < sets.size(); ++k) {
      const int owner = reducer != nullptr ? reducer->owner(sets[k].front()) : -1;
      if (owner >= 0 && reducer->world() > 1) {
        solved[k].resize(sets[k].size());
        for (size_t j = 0; j < sets[k].size(); ++j) {
          Solved& sv = solved[k][j];
          sv.report.name = sets[k][j];
          share_quantized(*reducer, sv.q, sv.report.seconds, sv.report.note, owner, block.device(),
                          failed[k]);
        }
      }
      for (auto& sv : solved[k]) {
        Linear& l = block.linear(sv.report.name);
        l.weight = sv.q.dequant.to(l.weight.scalar_type());
        sv.report.error = sv.q.stats.error;
        sv.report.stats = sv.q.stats;
        res.reports.push_back(sv.report);
        done.insert(sv.report.name);
        res.quantized.emplace(sv.report.name, std::move(sv.q));
      }
    }
    clock.lap("gptq solve");
  }
  // Quantizable linears no step names (should not happen with a complete table row): RTN.
  for (const auto& name : quantizable) {
    if (done.count(name)) continue;
    Linear& l = block.linear(name);
    auto q = solvers::quantize_rtn(l.weight, st.scheme, solvers::GridKind::kGptq, name);
    l.weight = q.dequant.to(l.weight.scalar_type());
    res.notes.push_back(name + ": not in any GPTQ step, quantized with RTN");
    res.quantized.emplace(name, std::move(q));
  }
  if (st.propagate_fp && fp_out.defined())
    res.next_input = fp_out;
  else
    res.next_input = run_block(block, x, mask, st.micro_batch);
  clock.lap("gptq next input");
  return res;
}

}  // namespace sq::rank
