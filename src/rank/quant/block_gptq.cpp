// GPTQ on one block (REFERENCE.md §2): for each true-sequential step, Hessians of the step's
// input sets are accumulated from a forward pass in which the earlier steps' linears already
// hold their quantized weights; each linear is then solved and replaced by its fake-quantized
// weight. A step whose Hessians exceed the budget goes in passes. The MoE steps replay the MoE
// input and routing recorded by the first one's forward (rank/quant/moe_record.h) instead of
// rerunning the block forward for each of their passes.
#include <chrono>
#include <memory>
#include <set>

#include "common/check.h"
#include "common/interrupt.h"
#include "rank/device/device.h"
#include "rank/model/arch_table.h"
#include "rank/quant/block_quant.h"
#include "rank/quant/capture.h"
#include "rank/quant/moe_record.h"
#include "rank/quant/phase_clock.h"
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
    abandon_point();  // a stop need not wait for the block (common/interrupt.h)
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

// The step's sets in passes of at most `budget` bytes of float64 sums (at least one set each),
// in set order.
std::vector<std::vector<std::vector<std::string>>> passes_of(
    const std::vector<std::vector<std::string>>& sets,
    const std::map<std::string, int64_t>& in_features, uint64_t budget) {
  std::vector<std::vector<std::vector<std::string>>> out;
  uint64_t used = 0;
  for (const auto& set : sets) {
    const auto k = static_cast<uint64_t>(in_features.at(set.front()));
    const uint64_t bytes = k * k * sizeof(double);
    if (out.empty() || used + bytes > budget) {
      out.emplace_back();
      used = 0;
    }
    out.back().push_back(set);
    used += bytes;
  }
  return out;
}

// True when every linear of the step is one of the MoE's own (see MoePasses).
bool moe_only(const std::set<std::string>& moe, const std::vector<std::vector<std::string>>& sets) {
  for (const auto& set : sets)
    for (const auto& name : set)
      if (!moe.count(name)) return false;
  return true;
}

// The budget every rank uses: its own (0 = a quarter of the device), the smallest over ranks.
uint64_t agreed_budget(const GptqSettings& st, at::Device device, const Reducer* reducer) {
  uint64_t b = st.hessian_budget ? st.hessian_budget : device_total_memory(device) / 4;
  if (b == 0) b = uint64_t{4} << 30;  // device memory unknown
  if (reducer == nullptr || reducer->world() <= 1) return b;
  at::Tensor all = at::zeros({reducer->world()}, at::kLong);
  all[reducer->rank()] = static_cast<int64_t>(b);
  reducer->sum(all);
  return static_cast<uint64_t>(all.min().item<int64_t>());
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
  const uint64_t budget = agreed_budget(st, block.device(), reducer);

  // The MoE input and routing recorded by an MoE step's forward (see moe_step below).
  const std::set<std::string> moe_linears = block.moe_linears();
  std::unique_ptr<MoeRecorder> record;
  int step_index = 0;
  for (const auto& step : gptq_steps(cfg, w, block.index())) {
    ++step_index;
    std::vector<std::vector<std::string>> step_sets;
    std::map<std::string, int64_t> in_features;
    for (const auto& set : step.input_sets) {
      std::vector<std::string> keep;
      for (const auto& name : set)
        if (quant_set.count(name) && block.has_linear(name)) {
          keep.push_back(name);
          in_features[name] = block.linear(name).weight.size(1);
        }
      if (!keep.empty()) step_sets.push_back(keep);
    }
    if (step_sets.empty()) continue;
    const auto passes = passes_of(step_sets, in_features, budget);
    if (passes.size() > 1)
      res.notes.push_back("gptq step " + std::to_string(step_index) + ": " +
                          std::to_string(step_sets.size()) + " Hessians in " +
                          std::to_string(passes.size()) + " passes (budget " +
                          std::to_string(budget) + " bytes)");
    // A step of the MoE's own linears (an MoE block's expert gate/up or down step): the first
    // such step's first forward records the MoE input and the routing, and every later pass of
    // it and of the following MoE steps feeds its Hessians from that record instead of a block
    // forward. Their inputs cannot differ: the MoE input and the routing come from attention,
    // norms and the router, which no MoE step changes (a step that does drops the record), and
    // replay_moe_inputs() computes the rest with forward()'s own code on the block's current
    // weights — the same tensors into the same accumulators in the same order.
    const bool moe_step = st.moe_passes == MoePasses::kReplay && moe_only(moe_linears, step_sets) &&
                          !block.router_name().empty();
    if (!moe_step) record.reset();
    // Each pass captures, reduces and solves its sets as a whole step did before passes.
    for (const auto& sets : passes) {
      HessianCapture hc(sets, in_features, block.device());
      if (record && record->complete()) {
        record->replay(block, hc);
        clock.lap("gptq moe replay + hessian");
      } else {
        // Only the first pass's output is ever used (as the FP output, for --propagate fp);
        // every other pass stops as soon as its step's inputs have been seen (e.g. the [k,v,q]
        // step needs nothing past the input norm).
        const bool need_output = first_pass && st.propagate_fp;
        hc.set_stop_early(!need_output);
        ActivationTap* tap = &hc;
        if (moe_step && !record) {
          // The record is one more copy of the MoE input (the block input's size): in host
          // memory when that would take more than a quarter of the Hessian budget on a GPU.
          const uint64_t bytes = static_cast<uint64_t>(x.numel()) * x.element_size();
          record = std::make_unique<MoeRecorder>(hc, block.router_name(),
                                                 block.device().is_cuda() && bytes > budget / 4);
          tap = record.get();
        }
        MoeRecorder* rec = tap == &hc ? nullptr : record.get();
        at::Tensor out = run_block(block, x, mask, st.micro_batch, tap, [&](const at::Tensor& m) {
          hc.begin_batch(m);
          if (rec) rec->begin_batch(m);
        });
        // Nothing is quantized before the first pass, so its output is the FP block output.
        if (need_output) fp_out = out;
        first_pass = false;
        clock.lap("gptq forward + hessian");
      }
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
      // A set's results go into the block (and to their store) as soon as it is solved, unless
      // they still travel to the other ranks: a pass of hundreds of experts must not hold every
      // expert's int32 codes and float32 dequant at once. The sets are disjoint and each solve
      // reads only its own linears, so the order of these writes changes nothing.
      std::vector<bool> applied(sets.size(), false);
      auto apply = [&](Solved& sv) {
        Linear& l = block.linear(sv.report.name);
        l.weight = sv.q.dequant.to(l.weight.scalar_type());
        sv.report.error = sv.q.stats.error;
        sv.report.stats = sv.q.stats;
        store_result(sv.q, st.results);
      };
      for (size_t k = 0; k < sets.size(); ++k) {
        const int owner = reducer != nullptr ? reducer->owner(sets[k].front()) : -1;
        const bool shared = owner >= 0 && reducer->world() > 1;
        if (owner >= 0 && owner == reducer->rank() && reducer->world() > 1) {
          try {
            solved[k] = solve_set(block, hc, sets[k], st);
          } catch (const std::exception& e) {
            failed[k] = Status::from_exception(e, owner);
          }
        } else if (owner < 0 || owner == reducer->rank()) {
          solved[k] = solve_set(block, hc, sets[k], st);
        }
        if (!shared) {
          for (auto& sv : solved[k]) apply(sv);
          applied[k] = true;
        }
      }
      for (size_t k = 0; k < sets.size(); ++k) {
        const int owner = reducer != nullptr ? reducer->owner(sets[k].front()) : -1;
        if (owner >= 0 && reducer->world() > 1) {
          solved[k].resize(sets[k].size());
          for (size_t j = 0; j < sets[k].size(); ++j) {
            Solved& sv = solved[k][j];
            sv.report.name = sets[k][j];
            share_quantized(*reducer, sv.q, sv.report.seconds, sv.report.note, owner,
                            block.device(), failed[k]);
          }
        }
        for (auto& sv : solved[k]) {
          if (!applied[k]) apply(sv);
          res.reports.push_back(sv.report);
          done.insert(sv.report.name);
          res.quantized.emplace(sv.report.name, std::move(sv.q));
        }
      }
      clock.lap("gptq solve");
    }  // passes
  }
  record.reset();  // its memory is not kept through the next-input forward
  // Quantizable linears no step names (should not happen with a complete table row): RTN.
  for (const auto& name : quantizable) {
    if (done.count(name)) continue;
    Linear& l = block.linear(name);
    auto q = solvers::quantize_rtn(l.weight, st.scheme, solvers::GridKind::kGptq, name);
    l.weight = q.dequant.to(l.weight.scalar_type());
    res.notes.push_back(name + ": not in any GPTQ step, quantized with RTN");
    store_result(q, st.results);
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
