// Mixture-of-experts MLP: router → top-k (per RouterKind) → each expert on its routed tokens
// (the tap sees exactly those tokens) → weighted sum, plus the shared expert where present.
#include <limits>

#include "common/check.h"
#include "rank/model/block.h"
#include "rank/model/fused.h"
#include "rank/model/gpt_oss.h"
#include "rank/model/layers.h"
#include "solvers/cpu_tiles.h"

namespace sq::rank {
namespace {

struct Routing {
  at::Tensor weights;  // [N,k] fp32
  at::Tensor experts;  // [N,k] int64
};

Routing route_softmax(const at::Tensor& logits, int64_t k, bool normalize) {
  at::Tensor probs = at::softmax(logits.to(at::kFloat), -1);
  auto top = probs.topk(k, -1);
  at::Tensor w = std::get<0>(top);
  if (normalize) w = w / w.sum(-1, true);
  return {w, std::get<1>(top)};
}

// PhiMoE's sparsemixer at inference: for each of the top-2 picks, a softmax over the logits
// within a relative jitter band of the pick (others masked to −inf), evaluated at the pick.
Routing route_sparsemixer(const at::Tensor& logits, double eps) {
  at::Tensor scores = logits.to(at::kFloat);
  const float ninf = -std::numeric_limits<float>::infinity();
  std::vector<at::Tensor> ws, ids;
  at::Tensor masked_scores = scores;
  for (int pick = 0; pick < 2; ++pick) {
    auto mx = masked_scores.max(-1, true);
    at::Tensor thr = std::get<0>(mx), ind = std::get<1>(mx);
    at::Tensor factor = scores.abs().clamp_min(thr);
    at::Tensor mask = ((thr - scores) / factor) > (2 * eps);
    at::Tensor gates = at::softmax(masked_scores.masked_fill(mask, ninf), -1);
    ws.push_back(gates.gather(-1, ind));
    ids.push_back(ind);
    masked_scores = masked_scores.scatter(-1, ind, ninf);
  }
  return {at::cat(ws, -1), at::cat(ids, -1)};
}

// Expert e's rows of the flattened MoE input: their token indices, routing weights [n,1] (block
// dtype) and the expert's input — one code for forward() and replay_moe_inputs(), so both feed
// the tap the same bits. tok is empty when no token picked e.
struct ExpertRows {
  at::Tensor tok, w, x;
};
ExpertRows expert_rows(int64_t e, const at::Tensor& flat, const at::Tensor& experts,
                       const at::Tensor& weights, bool weight_on_input) {
  at::Tensor hit = (experts == e).nonzero();  // [n,2]: token, slot
  if (hit.size(0) == 0) return {};
  at::Tensor tok = hit.select(1, 0), slot = hit.select(1, 1);
  at::Tensor xe = flat.index_select(0, tok);
  at::Tensor w = weights.index({tok, slot}).unsqueeze(-1);
  if (weight_on_input) xe = xe * w;
  return {tok, w, xe};
}

}  // namespace

// Per-expert linears ({e} roles) on their routed tokens, each output weighted by its routing
// weight — or, for routing_weight_on_input (Llama 4), each input, so that the tap sees what the
// expert's gate/up really multiply; the tap sees each expert's rows.
at::Tensor Block::routed_experts(const at::Tensor& flat, const at::Tensor& experts,
                                 const at::Tensor& weights_k, ActivationTap* tap) const {
  at::Tensor weights = weights_k.to(flat.scalar_type());
  at::Tensor out = at::zeros_like(flat);
  for (int64_t e = 0; e < n_experts_; ++e) {
    ExpertRows r = expert_rows(e, flat, experts, weights, spec_->routing_weight_on_input);
    if (!r.tok.defined()) continue;
    const std::string pre = prefix_ + ".";
    const Linear& g = linear(pre + expand_expert(spec_->role("expert_gate"), e));
    const Linear& u = linear(pre + expand_expert(spec_->role("expert_up"), e));
    const Linear& d = linear(pre + expand_expert(spec_->role("expert_down"), e));
    at::Tensor y = apply_linear(d, mlp_hidden(&g, u, r.x, tap), tap);
    if (!spec_->routing_weight_on_input) y = y * r.w;
    out.index_add_(0, r.tok, y);
  }
  return out;
}

std::string Block::router_name() const {
  if (!moe_) return "";
  const Linear* r = find_linear_role("router");
  return r ? r->name : "";
}

std::set<std::string> Block::moe_linears() const {
  std::set<std::string> out;
  if (!moe_ || spec_->fused_experts != FusedExperts::None) return out;
  for (const char* role : {"shared_gate", "shared_up", "shared_down"})
    if (const Linear* l = find_linear_role(role)) out.insert(l->name);
  const std::string pre = prefix_ + ".";
  for (int64_t e = 0; e < n_experts_; ++e)
    for (const char* role : {"expert_gate", "expert_up", "expert_down"}) {
      const std::string name = pre + expand_expert(spec_->role(role), e);
      if (linears_.count(name)) out.insert(name);
    }
  return out;
}

// Mirrors moe() from the routing on (routed_experts(), then the shared expert's dense_mlp()) with
// the same helpers, minus everything no wanted linear's input depends on. An expert's gate/up
// inputs are its rows themselves; its down input needs the gate/up products.
void Block::replay_moe_inputs(const at::Tensor& x, const at::Tensor& experts,
                              const at::Tensor& weights_k, ActivationTap* tap) const {
  SQ_CHECK(tap != nullptr && moe_, "replay_moe_inputs on block " << prefix_);
  at::Tensor flat = x.reshape({-1, x.size(-1)});
  at::Tensor weights = weights_k.to(flat.scalar_type());
  auto feed = [&](const Linear* g, const Linear& u, const Linear& d, const at::Tensor& in) {
    if (!tap->wants(d.name)) {
      if (g && tap->wants(g->name)) tap->on_input(g->name, in);
      if (tap->wants(u.name)) tap->on_input(u.name, in);
      return;
    }
    tap->on_input(d.name, mlp_hidden(g, u, in, tap));  // taps g and u itself when wanted
  };
  const std::string pre = prefix_ + ".";
  for (int64_t e = 0; e < n_experts_; ++e) {
    const Linear& g = linear(pre + expand_expert(spec_->role("expert_gate"), e));
    const Linear& u = linear(pre + expand_expert(spec_->role("expert_up"), e));
    const Linear& d = linear(pre + expand_expert(spec_->role("expert_down"), e));
    if (!tap->wants(g.name) && !tap->wants(u.name) && !tap->wants(d.name)) continue;
    ExpertRows r = expert_rows(e, flat, experts, weights, spec_->routing_weight_on_input);
    if (r.tok.defined()) feed(&g, u, d, r.x);
  }
  const Linear* sd = find_linear_role("shared_down");
  const Linear* su = find_linear_role("shared_up");
  if (sd && su) feed(find_linear_role("shared_gate"), *su, *sd, x);
}

at::Tensor Block::moe(const at::Tensor& x, ActivationTap* tap) const {
  const auto shape = x.sizes().vec();
  at::Tensor flat = x.reshape({-1, x.size(-1)});
  const Linear* router = find_linear_role("router");
  SQ_REQUIRE(router, "block " << prefix_ << ": missing router linear");
  // The router's input is the whole MoE input: AWQ takes its statistics and its inspect-scope
  // input from it (the router itself is never quantized).
  if (tap && tap->wants(router->name)) tap->on_input(router->name, x);
  const int64_t k = cfg_.get_int("num_experts_per_tok", cfg_.get_int("moe_k", 2));
  // Router logits in fp32 for every router kind: in bf16 the logits of near-tied experts round
  // to the same value often enough to flip top-k picks against the fp32 model (whole tokens
  // then go to another expert). The router is tiny and never quantized, so this costs nothing.
  // (GPT-OSS's router has a bias.)
  const at::Tensor logits =
      solvers::tiles::linear(flat.to(at::kFloat), router->weight.to(at::kFloat),
                             router->bias.defined() ? router->bias.to(at::kFloat) : at::Tensor());
  Routing r;
  switch (spec_->router) {
    case RouterKind::SoftmaxTopK:
      r = route_softmax(logits, k, cfg_.get_bool("norm_topk_prob", true));
      break;
    case RouterKind::SparseMixer:
      r = route_sparsemixer(logits, cfg_.get_double("router_jitter_noise", 0.01));
      break;
    case RouterKind::SigmoidGrouped: {
      at::Tensor scores = at::sigmoid(logits);
      at::Tensor choice = scores;
      auto bias = extras_.find(prefix_ + "." + spec_->role("router_bias"));
      if (bias != extras_.end()) choice = scores + bias->second;
      const int64_t ng = cfg_.get_int("n_group", 1), tg = cfg_.get_int("topk_group", 1);
      if (ng > 1) {
        at::Tensor gs = std::get<0>(choice.view({flat.size(0), ng, -1}).topk(2, -1)).sum(-1);
        at::Tensor gidx = std::get<1>(gs.topk(tg, -1));
        at::Tensor gmask = at::zeros_like(gs).scatter(1, gidx, 1.0);
        at::Tensor smask = gmask.unsqueeze(-1)
                               .expand({flat.size(0), ng, choice.size(-1) / ng})
                               .reshape({flat.size(0), -1});
        choice = choice.masked_fill(smask.logical_not(), 0.0);
      }
      at::Tensor idx = std::get<1>(choice.topk(k, -1));
      at::Tensor w = scores.gather(1, idx);
      if (cfg_.get_bool("norm_topk_prob", true)) w = w / (w.sum(-1, true) + 1e-20);
      r = {w * cfg_.get_double("routed_scaling_factor", 1.0), idx};
      break;
    }
    case RouterKind::SoftmaxCorrected: {
      at::Tensor probs = at::softmax(logits, -1);
      at::Tensor choice = probs;
      auto bias = extras_.find(prefix_ + "." + spec_->role("router_bias"));
      if (bias != extras_.end()) choice = probs + bias->second.reshape({1, -1});
      at::Tensor idx = std::get<1>(choice.topk(k, -1));
      at::Tensor w = probs.gather(1, idx);
      w = w / w.sum(-1, true).clamp_min(cfg_.get_double("moe_norm_min", 1e-12));
      r = {w, idx};
      break;
    }
    case RouterKind::SigmoidTopK: {
      // Llama 4: top-k on the logits; each pick's weight is σ(logit), not renormalized.
      auto top = logits.topk(k, -1);
      r = {at::sigmoid(std::get<0>(top)), std::get<1>(top)};
      break;
    }
    case RouterKind::None:
      SQ_CHECK(false, "MoE block without a router kind");
  }
  if (tap) tap->on_routing(router->name, r.experts, r.weights);
  // Fused expert tensors (GPT-OSS): kept in floating point, never tapped.
  auto extra = [&](const std::string& role) {
    auto it = extras_.find(prefix_ + "." + spec_->role(role));
    SQ_REQUIRE(it != extras_.end(), "block " << prefix_ << ": missing " << spec_->role(role));
    return it->second;
  };
  if (spec_->fused_experts == FusedExperts::GptOss)
    return gpt_oss::fused_experts(flat, r.experts, r.weights, extra("fused_gate_up"),
                                  extra("fused_gate_up_bias"), extra("fused_down"),
                                  extra("fused_down_bias"), cfg_.get_double("swiglu_alpha", 1.702),
                                  cfg_.get_double("swiglu_limit", 7.0))
        .view(shape);
  at::Tensor out = routed_experts(flat, r.experts, r.weights, tap);
  if (find_linear_role("shared_down")) {
    at::Tensor s =
        dense_mlp(x, "shared_gate", "shared_up", "shared_down", tap).reshape(flat.sizes());
    if (const Linear* sg = find_linear_role("shared_expert_gate"))
      s = at::sigmoid(solvers::tiles::linear(flat, sg->weight)) * s;
    out = out + s;
  }
  return out.view(shape);
}

}  // namespace sq::rank
