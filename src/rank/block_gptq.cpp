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
#include "solvers/gptq_cuda.h"

namespace sq::rank {

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
    at::Tensor out = run_block(block, x, mask, st.micro_batch, &hc,
                               [&](const at::Tensor& m) { hc.begin_batch(m); });
    // Nothing is quantized before the first pass, so its output is the FP block output.
    if (first_pass) fp_out = out;
    first_pass = false;
    // Data parallel: every set's sum and count over all ranks (same order on every rank).
    if (reducer != nullptr)
      for (const auto& set : sets) {
        auto& acc = hc.accumulator(set.front());
        reducer->sum(acc.sum());
        acc.set_tokens(reducer->sum(acc.tokens()));
      }
    for (const auto& set : sets) {
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
        LinearReport r;
        r.name = name;
        Linear& l = block.linear(name);
        solvers::QuantizedLinear q;
        if (acc.tokens() == 0) {
          // An expert no calibration token was routed to: nothing to weigh errors by.
          q = solvers::quantize_rtn(l.weight, st.scheme, solvers::GridKind::kGptq, name);
          q.stats.rtn_fallback = true;
          r.note = "no calibration tokens reached it: RTN";
        } else if (fused.count(name)) {
          q = std::move(fused.at(name));
        } else {
          if (!H.defined()) H = acc.finalize();
          q = solvers::gptq_quantize(l.weight.to(at::kFloat), H, st.scheme, st.gptq, name);
        }
        l.weight = q.dequant.to(l.weight.scalar_type());
        r.error = q.stats.error;
        r.stats = q.stats;
        r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        res.reports.push_back(r);
        done.insert(name);
        res.quantized.emplace(name, std::move(q));
      }
    }
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
  return res;
}

}  // namespace sq::rank
