// AWQ on one block (REFERENCE.md §1): capture → per-group scale search on the inspect scope →
// apply → clip → quantize (RTN, or with --awq-rounding gptq the GPTQ solve on the scaled inputs).
// The search's loss runs the real block code (forward_scope), so every architecture's
// attention/MLP/MoE semantics come from one place.
// --parallel data (a Reducer of more than one rank): each rank holds its own samples' inputs;
// the x statistics, the grid losses and the clip errors are sums all-reduced with their counts,
// so every rank takes the same decisions and ends with the same weights. A rank that no token
// reached for a group (an expert) still joins every collective, with zeros.
#include <chrono>
#include <cstdlib>
#include <map>
#include <memory>
#include <set>

#include "common/check.h"
#include "common/interrupt.h"
#include "rank/model/arch_table.h"
#include "rank/model/fused.h"
#include "rank/quant/block_quant.h"
#include "rank/quant/capture.h"
#include "rank/quant/phase_clock.h"
#include "solvers/awq.h"
#include "solvers/awq_batched.h"
#include "solvers/awq_clip.h"
#include "solvers/awq_gram.h"

namespace sq::rank {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The inspect scope of a group, its input tensor and how to run it in micro-batches.
struct Scope {
  std::string name;
  at::Tensor* input = nullptr;  // [tokens, in] captured (dense: n·T rows in sample order)
  bool dense = true;            // rows are n·T tokens (view as [n, T, in]); else routed rows
};

class ScopeRunner {
 public:
  ScopeRunner(const Block& b, const Scope& s, const at::Tensor& mask, int64_t n, int64_t T,
              int64_t mb)
      : b_(b), s_(s), n_(n), T_(T), mb_(std::max<int64_t>(1, mb)) {
    if (s.dense && mask.defined() && !mask.all().item<bool>())
      mask_ = mask.to(b.device()).reshape({-1});
  }

  // Output of the scope over every micro-batch, [rows, out] (padding rows dropped).
  at::Tensor run() const {
    std::vector<at::Tensor> outs;
    for_each(nullptr, [&](int64_t, const at::Tensor& y) { outs.push_back(y); });
    return outs.size() == 1 ? outs[0] : at::cat(outs, 0);
  }

  // Σ (y − y_ref)² in float32 over every micro-batch, a 0-dim device tensor (no host sync);
  // y_ref is run()'s result; one micro-batch at a time (no full-size copy). `tap` (optional)
  // supplies trial weights (ActivationTap::weight_for).
  at::Tensor sum_sq_diff(const at::Tensor& y_ref, ActivationTap* tap = nullptr) const {
    at::Tensor total;
    for_each(tap, [&](int64_t r0, const at::Tensor& y) {
      // The difference in the block dtype, squared and summed in fp32 — AutoAWQ's
      // (org_out - out).float().pow(2) — without materialising fp32 copies of the outputs.
      at::Tensor part = rank::sum_sq_diff(y.contiguous(), y_ref.slice(0, r0, r0 + y.size(0)));
      total = total.defined() ? total + part : part;
    });
    return total;
  }

 private:
  // fn(first_row, y) per micro-batch in row order; y [rows, out] with padding rows dropped.
  template <class F>
  void for_each(ActivationTap* tap, F fn) const {
    const at::Tensor& x = *s_.input;
    int64_t at_row = 0;
    auto emit = [&](at::Tensor y, const at::Tensor& keep) {
      if (keep.defined()) y = y.index({keep});
      fn(at_row, y);
      at_row += y.size(0);
    };
    if (!s_.dense) {
      const int64_t rows = x.size(0), step = mb_ * T_;
      for (int64_t r0 = 0; r0 < rows; r0 += step) {
        BlockContext ctx;
        emit(b_.forward_scope(s_.name, x.slice(0, r0, std::min(rows, r0 + step)), ctx, tap), {});
      }
      return;
    }
    at::Tensor x3 = x.view({n_, T_, x.size(-1)});
    for (int64_t b0 = 0; b0 < n_; b0 += mb_) {
      const int64_t b1 = std::min(n_, b0 + mb_);
      BlockContext ctx = make_context(b1 - b0, T_, b_.device());
      at::Tensor keep;
      if (mask_.defined()) {
        ctx.padding_mask = mask_.view({n_, T_}).slice(0, b0, b1);
        keep = ctx.padding_mask.reshape({-1});
      }
      at::Tensor y = b_.forward_scope(s_.name, x3.slice(0, b0, b1), ctx, tap);
      emit(y.reshape({-1, y.size(-1)}), keep);
    }
  }

 private:
  const Block& b_;
  Scope s_;
  int64_t n_, T_, mb_;
  at::Tensor mask_;
};

// Trial weights made when the forward applies them, one member at a time: the same tensors
// the search would otherwise make for all members up front (awq_trial_weight_as of the
// member's weight), so the losses are bit-identical; each is made once per micro-batch.
class TrialTap : public ActivationTap {
 public:
  TrialTap(const std::vector<std::string>& members, const at::Tensor& s,
           const solvers::QuantScheme& scheme)
      : members_(members.begin(), members.end()), s_(s), scheme_(scheme) {}
  bool wants(const std::string&) const override { return false; }
  void on_input(const std::string&, const at::Tensor&) override {}
  at::Tensor weight_for(const Linear& l) const override {
    if (!members_.count(l.name)) return at::Tensor();
    return solvers::awq_trial_weight_as(l.weight, s_, scheme_, l.weight.scalar_type());
  }

 private:
  std::set<std::string> members_;
  at::Tensor s_;
  solvers::QuantScheme scheme_;
};

// Rows of a captured input that are real tokens. Dense captures have one row per (sample,
// position); routed expert inputs have other row counts and no padding rows to drop.
at::Tensor real_rows(const at::Tensor& x, const at::Tensor& mask, bool dense) {
  if (!dense || !mask.defined() || x.size(0) != mask.numel() || mask.all().item<bool>()) return x;
  return x.index({mask.to(x.device()).reshape({-1})});
}

// --parallel data clip of one linear: this rank's real input rows `xin` (possibly none) are a
// contiguous slice of the ranks' rows in rank order; every rank samples what the single process
// would, sums its errors, and all pick from the totals. Returns undefined bounds when no rank
// has a token.
solvers::AwqClipResult clip_data_parallel(const at::Tensor& w, const at::Tensor& xin,
                                          const solvers::QuantScheme& scheme,
                                          const solvers::AwqClipOptions& opts, const Reducer& r) {
  at::Tensor counts = at::zeros({r.world()}, at::kLong);
  counts[r.rank()] = xin.size(0);
  r.sum(counts);
  const int64_t total = counts.sum().item<int64_t>();
  if (total == 0) return {};
  const int64_t offset = counts.slice(0, 0, r.rank()).sum().item<int64_t>();
  const at::Tensor xs = solvers::awq_clip_sample(xin, offset, total, opts);
  at::Tensor sums = solvers::awq_clip_error_sums(w, xs, scheme, opts);
  r.sum(sums);
  return solvers::awq_clip_pick(w, sums, r.sum(xs.size(0)), scheme, opts);
}

// --dump-salient: each quantized linear's salient columns by mean |x| of its unscaled input
// (summed over the ranks in data-parallel mode; every rank calls the same reductions in the
// same order). Linears no token reached get none.
std::map<std::string, std::vector<int64_t>> salient_by_linear(
    const Block& block, const std::vector<std::string>& quantizable, InputCapture& cap,
    const at::Tensor& mask, double quota, const Reducer* dp) {
  std::map<std::string, std::vector<int64_t>> out;
  for (const auto& name : quantizable) {
    const int64_t k = block.linear(name).weight.size(1);
    at::Tensor sum = at::zeros({k}, at::TensorOptions(at::kFloat).device(block.device()));
    int64_t rows = 0;
    if (cap.has(name)) {
      const at::Tensor xr = real_rows(cap.input(name), mask, true);
      sum = solvers::awq_x_abs_sum(xr);
      rows = xr.size(0);
    }
    if (dp) {
      dp->sum(sum);
      rows = dp->sum(rows);
    }
    if (rows > 0) out[name] = solvers::salient_columns(sum, quota);
  }
  return out;
}

}  // namespace

BlockQuantResult awq_quantize_block(Block& block, const at::Tensor& x, const at::Tensor& mask,
                                    const io::ModelConfig& cfg, const io::ModelWeights& w,
                                    const AwqSettings& st, const KeepFp& keep_fp,
                                    const Reducer* reducer) {
  BlockQuantResult res;
  const Reducer* dp = reducer != nullptr && reducer->world() > 1 ? reducer : nullptr;
  const int64_t n = x.size(0), T = x.size(1);
  const auto quantizable = quantizable_linears(block, cfg, w, keep_fp);
  const std::set<std::string> quant_set(quantizable.begin(), quantizable.end());

  PhaseClock clock(block.device(), res.phase_seconds);
  // 1. One FP forward: every linear's input and the next block's input under FP propagation.
  InputCapture cap;
  res.next_input = run_block(block, x, mask, st.micro_batch, &cap,
                             [&](const at::Tensor&) { cap.begin_batch(); });
  cap.finish();
  // Propagate quant replaces it at the end; don't hold an [n, T, H] tensor through the search.
  if (!st.propagate_fp) res.next_input = at::Tensor();
  clock.lap("awq capture");
  // Before any scaling touches the cached inputs.
  const auto salient = st.salient_quota >= 0
                           ? salient_by_linear(block, quantizable, cap, mask, st.salient_quota, dp)
                           : std::map<std::string, std::vector<int64_t>>{};
  const std::string router =
      block.spec().role("router").empty() ? "" : block.prefix() + "." + block.spec().role("router");
  const std::string shared_gate =
      block.spec().role("shared_expert_gate").empty()
          ? ""
          : block.prefix() + "." + block.spec().role("shared_expert_gate");

  // Per-scope laps in the summary (a device sync at each group boundary, a few per block);
  // SQ_PHASE_DETAIL=1 also splits every grid point into trial weights and scope forward + loss
  // (a sync per grid point: for profiling, it perturbs the overlap it measures).
  static const bool detail = std::getenv("SQ_PHASE_DETAIL") != nullptr;
  clock.lap("awq search");
  // Routed experts' one-linear groups (up_e → down_e) searched together (solvers/awq_batched.h):
  // on a GPU, where the per-expert loss is the Gram form anyway, unless refinement rounds or
  // data parallelism need the per-expert path; st.expert_search forces either way.
  const bool batch_experts = st.expert_search == ExpertSearch::kBatched ||
                             (st.expert_search == ExpertSearch::kAuto && block.device().is_cuda() &&
                              fused_enabled() && dp == nullptr && st.refine.rounds == 1);
  const auto groups = awq_groups(cfg, w, block.index());
  auto batchable = [&](const LinearGroup& g) {
    if (!batch_experts || g.expert < 0 || g.linears.size() != 1 || g.inspect != g.linears[0] ||
        g.condition == GroupCondition::ActScales || !quant_set.count(g.linears[0]) ||
        !cap.has(g.inspect))
      return false;
    return cap.input(g.inspect).size(0) > 0;
  };
  // Filled when the first batchable group is reached (every earlier group is applied by then;
  // a batchable group's input and weight are its expert's own, which no other group scales).
  std::map<size_t, solvers::AwqSearchResult> batched;
  bool batched_done = false;
  // 2. Scale search per group, in table order.
  for (size_t gi = 0; gi < groups.size(); ++gi) {
    abandon_point();  // a stop need not wait for the block (common/interrupt.h)
    const LinearGroup& g = groups[gi];
    if (!batched_done && batchable(g)) {
      batched_done = true;
      std::map<std::pair<std::vector<int64_t>, at::ScalarType>, std::vector<size_t>> by_shape;
      for (size_t gj = gi; gj < groups.size(); ++gj)
        if (batchable(groups[gj])) {
          const at::Tensor& wj = block.linear(groups[gj].linears[0]).weight;
          by_shape[{wj.sizes().vec(), wj.scalar_type()}].push_back(gj);
        }
      for (const auto& [shape, members] : by_shape) {
        solvers::AwqExpertInputs in;
        for (size_t gj : members) {
          const std::string& name = groups[gj].linears[0];
          const at::Tensor& wj = block.linear(name).weight;
          in.x.push_back(real_rows(cap.input(name), mask, false));
          in.w.push_back(wj);
          in.x_mean.push_back(solvers::awq_x_mean(in.x.back()));
          in.w_mean.push_back(solvers::awq_w_mean({wj}, st.scheme.group_for(wj.size(1))));
          in.names.push_back(groups[gj].prev_op + " -> " + name);
        }
        auto found = solvers::awq_search_experts(in, st.n_grid, st.duo_scaling, st.scheme,
                                                 shape.second, kAwqTrialBytes);
        for (size_t k = 0; k < members.size(); ++k) batched[members[k]] = std::move(found[k]);
      }
      clock.lap("awq search/experts batched grid");
    }
    std::string scope_label = "awq search/" + (g.inspect.rfind(block.prefix() + ".", 0) == 0
                                                   ? g.inspect.substr(block.prefix().size() + 1)
                                                   : g.inspect);
    // One timing key for all experts of a block ("mlp.experts.*.down_proj"): a 256-expert block
    // must not add 512 keys to the summary.
    if (g.expert >= 0) {
      const std::string idx = ".experts." + std::to_string(g.expert) + ".";
      if (const auto at = scope_label.find(idx); at != std::string::npos)
        scope_label.replace(at, idx.size(), ".experts.*.");
    }
    const std::string gname =
        (g.prev_op.empty() ? "act" : g.prev_op) + " -> " + g.linears.front() +
        (g.linears.size() > 1 ? " (+" + std::to_string(g.linears.size() - 1) + ")" : "");
    if (g.condition == GroupCondition::ActScales) {
      res.notes.push_back("skipped " + gname + ": activation prev_op needs a scales tensor");
      continue;
    }
    bool kept = false, missing_input = false;
    for (const auto& m : g.linears) {
      kept |= quant_set.count(m) == 0;
      missing_input |= !cap.has(m);
    }
    if (kept) {
      res.notes.push_back("skipped " + gname + ": a member stays in floating point");
      continue;
    }
    const bool moe_mlp = g.inspect == "mlp" && !router.empty() && cap.has(router);
    Scope scope;
    scope.name = g.inspect;
    // Why this rank has no input for the group ("" = it has); `silent` skips leave no note.
    std::string no_input;
    bool silent = false;
    if (moe_mlp) {
      scope.input = &cap.input(router);
    } else if (g.inspect == "attn" || g.inspect == "mlp" || g.inspect == "block") {
      if (missing_input) {
        no_input = "no tokens reached it";
        silent = true;
      } else {
        scope.input = &cap.input(g.linears.front());
      }
    } else if (!cap.has(g.inspect)) {
      no_input = "no tokens reached it";
    } else {
      scope.input = &cap.input(g.inspect);
      // A linear scope is dense unless it is an expert's (routed rows).
      scope.dense = g.expert < 0;
    }
    if (no_input.empty() && missing_input && !moe_mlp) no_input = "no tokens reached it";
    if (no_input.empty() && scope.input->size(0) == 0) {
      no_input = "no tokens reached it";
      silent = true;
    }
    // x statistics: the input the group's members see — for a MoE MLP the whole MoE input.
    const bool stats_dense = moe_mlp || g.expert < 0;
    at::Tensor xs;
    if (no_input.empty())
      xs = real_rows(moe_mlp ? *scope.input : cap.input(g.linears.front()), mask, stats_dense);
    // Data parallel: the group is skipped only when no rank has a token for it.
    const bool have = no_input.empty();
    const int64_t stat_rows = dp ? dp->sum(have ? xs.size(0) : int64_t{0}) : 0;
    if (dp ? stat_rows == 0 : !have) {
      if (!silent) res.notes.push_back("skipped " + gname + ": no tokens reached it");
      continue;
    }
    solvers::AwqSearchResult best;
    if (auto found = batched.find(gi); found != batched.end()) {
      best = std::move(found->second);
    } else {
      std::vector<at::Tensor> ws;
      for (const auto& m : g.linears) ws.push_back(block.linear(m).weight);
      at::Tensor x_mean;
      if (dp) {
        at::Tensor abs_sum = have ? solvers::awq_x_abs_sum(xs)
                                  : at::zeros({ws.front().size(1)},
                                              at::TensorOptions(at::kFloat).device(block.device()));
        dp->sum(abs_sum);
        x_mean = abs_sum / static_cast<double>(stat_rows);
      } else {
        x_mean = solvers::awq_x_mean(xs);
      }
      const int64_t G = st.scheme.group_for(ws.front().size(1));
      at::Tensor w_mean = solvers::awq_w_mean(ws, G);

      // A scope that is the group's one linear (up → down, v → o): on a GPU the loss is a quadratic
      // form in the weight change (solvers/awq_gram.h) and needs no forward per grid point; the
      // CPU keeps the direct forwards (the reference; SQ_NO_FUSED=1 forces them on a GPU too).
      const bool gram_scope = have && g.linears.size() == 1 && scope.name == g.linears.front() &&
                              block.device().is_cuda() && fused_enabled();
      std::unique_ptr<ScopeRunner> runner;
      std::unique_ptr<solvers::AwqGramLoss> gram;
      at::Tensor y_ref;  // the FP output stays in the block dtype (its fp32 conversion is exact)
      int64_t local_elements = 0;
      if (gram_scope) {
        gram = std::make_unique<solvers::AwqGramLoss>(real_rows(*scope.input, mask, scope.dense));
        local_elements = gram->rows() * ws.front().size(0);
      } else if (have) {
        runner = std::make_unique<ScopeRunner>(block, scope, mask, n, T, st.micro_batch);
        y_ref = runner->run();
        local_elements = y_ref.numel();
      }
      clock.lap(scope_label + " reference");
      const double n_elements = static_cast<double>(dp ? dp->sum(local_elements) : local_elements);
      // All members' trial weights at once, unless together they exceed the trial budget (an MoE
      // group: DeepSeek-V3's 256 experts' gate/up are 15 GB in bf16); then one at a time.
      uint64_t trial_bytes = 0;
      for (const auto& wm : ws) trial_bytes += wm.numel() * wm.element_size();
      const bool lazy_trials =
          !gram && trial_bytes > (st.trial_budget ? st.trial_budget : kAwqTrialBytes);
      auto loss_fn = [&](const at::Tensor& s) -> at::Tensor {
        if (!have) return at::zeros({}, at::TensorOptions(at::kDouble).device(block.device()));
        if (gram) {
          const Linear& l = block.linear(g.linears.front());
          at::Tensor sse = gram->loss(
              solvers::awq_trial_weight_as(l.weight, s, st.scheme, l.weight.scalar_type()),
              l.weight);
          return dp ? sse : sse / n_elements;
        }
        if (lazy_trials) {
          TrialTap trial(g.linears, s, st.scheme);
          at::Tensor sse = runner->sum_sq_diff(y_ref, &trial);
          if (detail) clock.lap(scope_label + " grid: lazy trial weights + forward + loss");
          return dp ? sse.to(at::kDouble) : sse.to(at::kDouble) / n_elements;
        }
        std::vector<at::Tensor> saved;
        for (const auto& m : g.linears) {
          Linear& l = block.linear(m);
          saved.push_back(l.weight);
          l.weight = solvers::awq_trial_weight_as(l.weight, s, st.scheme, l.weight.scalar_type());
        }
        if (detail) clock.lap(scope_label + " grid: trial weights");
        at::Tensor sse = runner->sum_sq_diff(y_ref);
        if (detail) clock.lap(scope_label + " grid: forward + loss");
        for (size_t i = 0; i < g.linears.size(); ++i) block.linear(g.linears[i]).weight = saved[i];
        // One process: the mean squared error, still on the device. Data parallel: the sum; the
        // reduce step adds the ranks' sums and divides by the global element count.
        return dp ? sse.to(at::kDouble) : sse.to(at::kDouble) / n_elements;
      };
      solvers::AwqLossReduce reduce;
      if (dp)
        reduce = [&](at::Tensor& losses) {
          dp->sum(losses);
          losses.div_(n_elements);
        };
      best = solvers::awq_search_scales(x_mean, w_mean, st.n_grid, st.duo_scaling, loss_fn, gname,
                                        reduce, st.refine);
      clock.lap(scope_label + " grid");
    }
    at::Tensor s = best.scales;

    // 3. Apply: prev op, members, routers fed by the same norm, cached inputs.
    if (g.prev_is_norm) {
      Norm& nm = block.norm(g.prev_op);
      solvers::awq_apply_to_norm(
          nm.weight, nm.bias.defined() ? &nm.bias : nullptr, s,
          g.prev_plus_one ? solvers::NormKind::kOffsetOne : solvers::NormKind::kPlain);
      if (moe_mlp) {
        // Routing must not change: the router (and shared-expert gate) see x/s now.
        for (const auto& r : {router, shared_gate})
          if (!r.empty() && block.has_linear(r))
            solvers::awq_apply_to_member(block.linear(r).weight, s);
      }
    } else {
      Linear& p = block.linear(g.prev_op);
      solvers::awq_apply_to_prev_linear(p.weight, p.bias.defined() ? &p.bias : nullptr, s);
    }
    std::set<const void*> scaled;
    auto scale_input = [&](at::Tensor& t) {
      if (scaled.insert(t.data_ptr()).second) solvers::awq_scale_inputs(t, s);
    };
    for (const auto& m : g.linears) {
      solvers::awq_apply_to_member(block.linear(m).weight, s);
      if (cap.has(m)) scale_input(cap.input(m));
    }
    if (scope.input != nullptr) scale_input(*scope.input);
    char note[128];
    std::snprintf(note, sizeof note, "alpha=%.4g loss=%.4g", best.best_alpha, best.best_loss);
    res.notes.push_back("scaled " + gname + ": " + note);
    clock.lap("awq search");
  }

  clock.lap("awq search");
  // 4. Clip, then 5. quantize every quantizable linear.
  solvers::AwqClipOptions clip_opts;
  clip_opts.n_sample_tokens = st.clip_tokens;
  clip_opts.asym = st.clip_asym;
  // --awq-rounding gptq: the Hessian of a linear's captured input — already divided by the
  // group's scales, so it is the input the scaled weight will see — one per capture (q/k/v and
  // gate/up share theirs). Data parallel: raw sums and token counts all-reduced, like GPTQ's.
  // Undefined when no rank has a token for it (an unreached expert): that linear falls back to RTN.
  // The sharing key is the first linear of the name's GPTQ input set: the same on every rank, so
  // every rank makes the same all-reduce calls whichever captures it holds.
  std::map<std::string, std::string> set_of;
  if (st.gptq_rounding)
    for (const auto& step : gptq_steps(cfg, w, block.index()))
      for (const auto& set : step.input_sets)
        for (const auto& m : set) set_of.emplace(m, set.front());
  std::map<std::string, at::Tensor> hessians;
  auto awq_gptq_hessian = [&](const std::string& name) -> at::Tensor {
    const auto leader = set_of.find(name);
    const std::string key = leader == set_of.end() ? name : leader->second;
    if (auto it = hessians.find(key); it != hessians.end()) return it->second;
    const bool have = cap.has(name);
    const int64_t K = block.linear(name).weight.size(1);
    solvers::HessianAccumulator acc(K, block.device());
    // One add per captured micro-batch, as GPTQ's HessianCapture does: on a GPU each add is a
    // float32 product summed into float64, so the pieces must be the same whichever samples a
    // rank holds (data-parallel shares are whole micro-batches) for the totals to agree.
    if (have) {
      const at::Tensor& xin = cap.input(name);
      const bool dense = mask.defined() && xin.size(0) == mask.numel();
      const at::Tensor flat_mask = dense ? mask.reshape({-1}) : at::Tensor();
      int64_t r0 = 0;
      for (const int64_t rows : cap.piece_rows(name)) {
        const at::Tensor piece = xin.slice(0, r0, r0 + rows);
        acc.add(dense ? real_rows(piece, flat_mask.slice(0, r0, r0 + rows), true) : piece);
        r0 += rows;
      }
    }
    if (dp) {
      dp->sum(acc.sum());
      acc.set_tokens(dp->sum(acc.tokens()));
    }
    at::Tensor h = acc.tokens() > 0 ? acc.finalize() : at::Tensor();
    if (!h.defined()) res.notes.push_back("rounded " + name + " by RTN: no tokens reached it");
    hessians[key] = h;
    return h;
  };
  // Calibration rows of each quantizable linear over all ranks: 0 = an expert the router never
  // picked; it is quantized all the same (RTN) and reported as such (kNoTokensNote).
  at::Tensor rows = at::zeros({static_cast<int64_t>(quantizable.size())}, at::kLong);
  for (size_t i = 0; i < quantizable.size(); ++i)
    if (cap.has(quantizable[i])) rows[i] = cap.input(quantizable[i]).size(0);
  if (dp) dp->sum(rows);
  for (size_t i = 0; i < quantizable.size(); ++i) {
    const std::string& name = quantizable[i];
    auto t0 = std::chrono::steady_clock::now();
    Linear& l = block.linear(name);
    if (dp && st.clip && solvers::awq_clip_applies(name)) {
      const at::Tensor xin = cap.has(name)
                                 ? real_rows(cap.input(name), mask, true)
                                 : at::empty({0, l.weight.size(1)},
                                             at::TensorOptions(at::kFloat).device(block.device()));
      const auto clip = clip_data_parallel(l.weight, xin, st.scheme, clip_opts, *dp);
      if (clip.max_val.defined()) solvers::awq_apply_clip(l.weight, clip.min_val, clip.max_val);
    } else if (st.clip && solvers::awq_clip_applies(name) && cap.has(name)) {
      at::Tensor xin = real_rows(cap.input(name), mask, true);
      if (xin.size(0) > 0) {
        auto clip = solvers::awq_clip_search(l.weight, xin, st.scheme, clip_opts);
        solvers::awq_apply_clip(l.weight, clip.min_val, clip.max_val);
      }
    }
    at::Tensor h = st.gptq_rounding ? awq_gptq_hessian(name) : at::Tensor();
    solvers::QuantizedLinear q =
        h.defined() ? solvers::gptq_quantize(l.weight, h, st.scheme, st.gptq, name)
                    : solvers::quantize_rtn(l.weight, st.scheme, solvers::GridKind::kAwq, name);
    l.weight = q.dequant.to(l.weight.scalar_type());
    LinearReport r;
    r.name = name;
    r.error = q.stats.error;
    r.stats = q.stats;
    r.seconds = seconds_since(t0);
    if (rows[i].item<int64_t>() == 0) r.note = kNoTokensNote;
    if (auto it = salient.find(name); it != salient.end()) r.salient = it->second;
    res.reports.push_back(r);
    store_result(q, st.results);
    res.quantized.emplace(name, std::move(q));
  }
  clock.lap("awq clip + quantize");
  // Propagate quant: the next block calibrates on what the quantized model will feed it. The
  // block now holds the scaled norms and the fake-quantized weights, so a plain forward is that.
  if (!st.propagate_fp) {
    res.next_input = run_block(block, x, mask, st.micro_batch);
    clock.lap("awq propagate");
  }
  return res;
}

}  // namespace sq::rank
