// The rows. Families that share tensor names share a names table; each row then states its
// block family, norm, activation, residual style and linear groups. Groups are written once per
// layout (attention × MLP kind) by the small builders below, so a row reads as a list of choices.
#include "rank/model/arch_table.h"

#include <algorithm>

#include "common/check.h"

namespace sq::rank {
namespace {

using Names = std::map<std::string, std::string>;

const Names kLlamaNames = {
    {"attn_norm", "input_layernorm"}, {"mlp_norm", "post_attention_layernorm"},
    {"q_norm", "self_attn.q_norm"},   {"k_norm", "self_attn.k_norm"},
    {"q", "self_attn.q_proj"},        {"k", "self_attn.k_proj"},
    {"v", "self_attn.v_proj"},        {"o", "self_attn.o_proj"},
    {"gate", "mlp.gate_proj"},        {"up", "mlp.up_proj"},
    {"down", "mlp.down_proj"}};

Names with(Names base, const Names& changes) {
  for (const auto& [k, v] : changes) {
    if (v.empty())
      base.erase(k);
    else
      base[k] = v;
  }
  return base;
}

// --- linear groups per layout ---------------------------------------------------------------
std::vector<AwqGroupSpec> awq_attn_separate(const std::string& norm) {
  std::vector<AwqGroupSpec> g;
  if (!norm.empty()) g.push_back({norm, {"q", "k", "v"}, "attn"});
  g.push_back({"v", {"o"}, "o", GroupCondition::EqualShapes});
  return g;
}
std::vector<AwqGroupSpec> awq_attn_fused(const std::string& norm) {
  return {{norm, {"qkv"}, "attn"}};
}
std::vector<AwqGroupSpec> awq_mlp_gated(const std::string& norm) {
  std::vector<AwqGroupSpec> g;
  if (!norm.empty()) g.push_back({norm, {"gate", "up"}, "mlp"});
  g.push_back({"up", {"down"}, "down"});
  return g;
}
std::vector<AwqGroupSpec> awq_mlp_fused(const std::string& norm) {
  // gate_up_proj's output rows are [gate; up]: scaling its last len(s) rows scales `up` only.
  return {{norm, {"gate_up"}, "mlp"}, {"gate_up", {"down"}, "down"}};
}
std::vector<AwqGroupSpec> awq_mlp_plain(const std::string& norm, bool relu) {
  // fc1 → act → fc2: exact through ReLU (positively homogeneous), else an activation scale.
  std::vector<AwqGroupSpec> g = {{norm, {"up"}, "up"}};
  if (relu)
    g.push_back({"up", {"down"}, "down"});
  else
    g.push_back({"act:up", {"down"}, "down", GroupCondition::ActScales});
  return g;
}
std::vector<AwqGroupSpec> awq_moe(const std::string& norm, bool shared) {
  AwqGroupSpec in{norm, {"expert_gate", "expert_up"}, "mlp"};
  if (shared) {
    in.linears.push_back("shared_gate");
    in.linears.push_back("shared_up");
  }
  std::vector<AwqGroupSpec> g = {in};
  AwqGroupSpec down{"expert_up", {"expert_down"}, "expert_down"};
  down.per_expert = true;
  g.push_back(down);
  if (shared) g.push_back({"shared_up", {"shared_down"}, "shared_down"});
  return g;
}
std::vector<AwqGroupSpec> cat(std::vector<AwqGroupSpec> a, const std::vector<AwqGroupSpec>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

const std::vector<GptqStepSpec> kGptqAttnSeparate = {{{{"k", "v", "q"}}}, {{{"o"}}}};
const std::vector<GptqStepSpec> kGptqAttnFused = {{{{"qkv"}}}, {{{"o"}}}};
const std::vector<GptqStepSpec> kGptqAttnMla = {
    {{{"q_a", "kv_a"}}}, {{{"q_b"}, {"kv_b"}}}, {{{"o"}}}};
const std::vector<GptqStepSpec> kGptqMlpGated = {{{{"up", "gate"}}}, {{{"down"}}}};
const std::vector<GptqStepSpec> kGptqMlpFused = {{{{"gate_up"}}}, {{{"down"}}}};
const std::vector<GptqStepSpec> kGptqMlpPlain = {{{{"up"}}}, {{{"down"}}}};
std::vector<GptqStepSpec> gptq_moe(bool shared) {
  GptqStepSpec in{{{"expert_up", "expert_gate"}}, true};
  GptqStepSpec out{{{"expert_down"}}, true};
  std::vector<GptqStepSpec> s = {in, out};
  if (shared) {
    s[0].input_sets.push_back({"shared_up", "shared_gate"});
    s[1].input_sets.push_back({"shared_down"});
  }
  return s;
}
std::vector<GptqStepSpec> cat(std::vector<GptqStepSpec> a, const std::vector<GptqStepSpec>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

ArchSpec llama_like(const std::string& mt, Names names = kLlamaNames) {
  ArchSpec s;
  s.model_type = mt;
  s.layers_prefix = "model.layers.";
  s.names = std::move(names);
  s.embed = "model.embed_tokens.weight";
  s.final_norm = "model.norm";
  s.lm_head = "lm_head.weight";
  s.awq = cat(awq_attn_separate("attn_norm"), awq_mlp_gated("mlp_norm"));
  s.gptq = cat(kGptqAttnSeparate, kGptqMlpGated);
  return s;
}

ArchSpec moe_row(const std::string& mt, const Names& names, RouterKind router, bool shared) {
  ArchSpec s = llama_like(mt, names);
  s.family = BlockFamily::Moe;
  s.mlp = MlpKind::Moe;
  s.router = router;
  s.awq = cat(awq_attn_separate("attn_norm"), awq_moe("mlp_norm", shared));
  s.gptq = cat(kGptqAttnSeparate, gptq_moe(shared));
  s.awq_dense = cat(awq_attn_separate("attn_norm"), awq_mlp_gated("mlp_norm"));
  s.gptq_dense = cat(kGptqAttnSeparate, kGptqMlpGated);
  return s;
}

const Names kMixtralMoe = with(kLlamaNames, {{"gate", ""},
                                             {"up", ""},
                                             {"down", ""},
                                             {"router", "block_sparse_moe.gate"},
                                             {"expert_gate", "block_sparse_moe.experts.{e}.w1"},
                                             {"expert_up", "block_sparse_moe.experts.{e}.w3"},
                                             {"expert_down", "block_sparse_moe.experts.{e}.w2"}});
const Names kQwenMoe = with(kLlamaNames, {{"gate", ""},
                                          {"up", ""},
                                          {"down", ""},
                                          {"router", "mlp.gate"},
                                          {"expert_gate", "mlp.experts.{e}.gate_proj"},
                                          {"expert_up", "mlp.experts.{e}.up_proj"},
                                          {"expert_down", "mlp.experts.{e}.down_proj"},
                                          {"shared_gate", "mlp.shared_expert.gate_proj"},
                                          {"shared_up", "mlp.shared_expert.up_proj"},
                                          {"shared_down", "mlp.shared_expert.down_proj"},
                                          {"shared_expert_gate", "mlp.shared_expert_gate"}});

std::vector<ArchSpec> build_rows() {
  std::vector<ArchSpec> rows;
  rows.push_back(llama_like("llama"));
  rows.push_back(llama_like("mistral"));
  {
    ArchSpec s = llama_like("qwen2");
    s.qkv_bias = true;
    rows.push_back(s);
  }
  {
    ArchSpec s = llama_like("qwen3");
    s.qk_norm = QkNormLayout::PerHead;
    rows.push_back(s);
  }
  // SmolLM3: llama with NoPE layers (config no_rope_layers; the block reads it).
  rows.push_back(llama_like("smollm3"));
  {
    ArchSpec s = llama_like("granite");
    rows.push_back(s);
  }
  {
    ArchSpec s = llama_like("gemma");
    s.norm = NormKind::RmsPlusOne;
    s.act = Activation::GeluTanh;
    rows.push_back(s);
  }
  for (const char* mt : {"gemma2", "gemma3_text"}) {
    ArchSpec s =
        llama_like(mt, with(kLlamaNames, {{"post_attn_norm", "post_attention_layernorm"},
                                          {"mlp_norm", "pre_feedforward_layernorm"},
                                          {"post_mlp_norm", "post_feedforward_layernorm"}}));
    s.norm = NormKind::RmsPlusOne;
    s.act = Activation::GeluTanh;
    s.residual = ResidualStyle::Sandwich;
    if (std::string(mt) == "gemma3_text") s.qk_norm = QkNormLayout::PerHead;
    rows.push_back(s);
  }
  {
    ArchSpec s =
        llama_like("olmo2", with(kLlamaNames, {{"attn_norm", ""},
                                               {"mlp_norm", ""},
                                               {"post_attn_norm", "post_attention_layernorm"},
                                               {"post_mlp_norm", "post_feedforward_layernorm"}}));
    s.residual = ResidualStyle::PostNorm;
    s.qk_norm = QkNormLayout::Full;
    // No norm precedes q/k/v or gate/up: only linear → linear groups scale.
    s.awq = cat(awq_attn_separate(""), awq_mlp_gated(""));
    rows.push_back(s);
  }
  {
    ArchSpec s = llama_like("cohere", with(kLlamaNames, {{"mlp_norm", ""}}));
    s.norm = NormKind::LayerNormNoBias;
    s.residual = ResidualStyle::ParallelShared;
    s.family = BlockFamily::ParallelResidual;
    s.rope_style = RopeStyle::Interleaved;
    // One norm feeds attention and MLP: it scales q,k,v,gate,up together.
    s.awq = {{"attn_norm", {"q", "k", "v", "gate", "up"}, "block"},
             {"v", {"o"}, "o", GroupCondition::EqualShapes},
             {"up", {"down"}, "down"}};
    rows.push_back(s);
  }
  {
    ArchSpec s = llama_like("phi3", with(kLlamaNames, {{"q", ""},
                                                       {"k", ""},
                                                       {"v", ""},
                                                       {"gate", ""},
                                                       {"up", ""},
                                                       {"qkv", "self_attn.qkv_proj"},
                                                       {"gate_up", "mlp.gate_up_proj"}}));
    s.attn = AttnKind::FusedQkv;
    s.qkv_layout = QkvLayout::Concat;
    s.mlp = MlpKind::FusedGateUp;
    s.awq = cat(awq_attn_fused("attn_norm"), awq_mlp_fused("mlp_norm"));
    // v_proj is a slice of qkv_proj here: qkv → o is scaled through qkv's last rows.
    s.awq.insert(s.awq.begin() + 1, {"qkv", {"o"}, "o", GroupCondition::EqualShapes});
    s.gptq = cat(kGptqAttnFused, kGptqMlpFused);
    rows.push_back(s);
  }
  {
    ArchSpec s =
        llama_like("starcoder2",
                   with(kLlamaNames, {{"gate", ""}, {"up", "mlp.c_fc"}, {"down", "mlp.c_proj"}}));
    s.norm = NormKind::LayerNorm;
    s.act = Activation::GeluTanh;
    s.mlp = MlpKind::Plain;
    s.awq = cat(awq_attn_separate("attn_norm"), awq_mlp_plain("mlp_norm", false));
    s.gptq = cat(kGptqAttnSeparate, kGptqMlpPlain);
    rows.push_back(s);
  }
  {
    ArchSpec s;
    s.model_type = "gpt2";
    s.layers_prefix = "transformer.h.";
    s.names = {{"attn_norm", "ln_1"}, {"mlp_norm", "ln_2"}, {"qkv", "attn.c_attn"},
               {"o", "attn.c_proj"},  {"up", "mlp.c_fc"},   {"down", "mlp.c_proj"}};
    s.norm = NormKind::LayerNorm;
    s.act = Activation::GeluTanh;
    s.attn = AttnKind::FusedQkv;
    s.qkv_layout = QkvLayout::Concat;
    s.mlp = MlpKind::Plain;
    s.rope = false;
    s.conv1d = true;
    s.embed = "transformer.wte.weight";
    s.pos_embed = "transformer.wpe.weight";
    s.final_norm = "transformer.ln_f";
    s.lm_head = "lm_head.weight";
    s.awq = cat({{"attn_norm", {"qkv"}, "attn"}, {"qkv", {"o"}, "o", GroupCondition::EqualShapes}},
                awq_mlp_plain("mlp_norm", false));
    s.gptq = cat(kGptqAttnFused, kGptqMlpPlain);
    rows.push_back(s);
  }
  {
    ArchSpec s;
    s.model_type = "opt";
    s.layers_prefix = "model.decoder.layers.";
    s.names = {{"attn_norm", "self_attn_layer_norm"},
               {"mlp_norm", "final_layer_norm"},
               {"q", "self_attn.q_proj"},
               {"k", "self_attn.k_proj"},
               {"v", "self_attn.v_proj"},
               {"o", "self_attn.out_proj"},
               {"up", "fc1"},
               {"down", "fc2"}};
    s.norm = NormKind::LayerNorm;
    s.act = Activation::Relu;
    s.mlp = MlpKind::Plain;
    s.rope = false;
    s.embed = "model.decoder.embed_tokens.weight";
    s.pos_embed = "model.decoder.embed_positions.weight";
    s.pos_offset = 2;
    s.final_norm = "model.decoder.final_layer_norm";
    s.lm_head = "lm_head.weight";
    s.awq = cat(awq_attn_separate("attn_norm"), awq_mlp_plain("mlp_norm", true));
    s.gptq = cat(kGptqAttnSeparate, kGptqMlpPlain);
    rows.push_back(s);
  }
  {
    ArchSpec s;
    s.model_type = "gpt_neox";
    s.layers_prefix = "gpt_neox.layers.";
    s.names = {{"attn_norm", "input_layernorm"},     {"mlp_norm", "post_attention_layernorm"},
               {"qkv", "attention.query_key_value"}, {"o", "attention.dense"},
               {"up", "mlp.dense_h_to_4h"},          {"down", "mlp.dense_4h_to_h"}};
    s.family = BlockFamily::ParallelResidual;
    s.norm = NormKind::LayerNorm;
    s.act = Activation::GeluErf;
    s.residual = ResidualStyle::ParallelTwoNorm;
    s.attn = AttnKind::FusedQkv;
    s.qkv_layout = QkvLayout::NeoxPerHead;
    s.mlp = MlpKind::Plain;
    s.embed = "gpt_neox.embed_in.weight";
    s.final_norm = "gpt_neox.final_layer_norm";
    s.lm_head = "embed_out.weight";
    s.awq = cat(awq_attn_fused("attn_norm"), awq_mlp_plain("mlp_norm", false));
    s.gptq = cat(kGptqAttnFused, kGptqMlpPlain);
    rows.push_back(s);
  }
  {
    ArchSpec s;
    s.model_type = "falcon";
    s.layers_prefix = "transformer.h.";
    // New decoder: ln_attn/ln_mlp; old: input_layernorm (+ post_attention_layernorm when not
    // parallel). The block picks whichever the checkpoint has.
    s.names = {{"attn_norm", "ln_attn"},
               {"mlp_norm", "ln_mlp"},
               {"attn_norm_alt", "input_layernorm"},
               {"mlp_norm_alt", "post_attention_layernorm"},
               {"qkv", "self_attention.query_key_value"},
               {"o", "self_attention.dense"},
               {"up", "mlp.dense_h_to_4h"},
               {"down", "mlp.dense_4h_to_h"}};
    s.family = BlockFamily::ParallelResidual;
    s.norm = NormKind::LayerNorm;
    s.act = Activation::GeluErf;
    s.residual = ResidualStyle::ParallelTwoNorm;
    s.attn = AttnKind::FusedQkv;
    s.qkv_layout = QkvLayout::FalconGrouped;
    s.mlp = MlpKind::Plain;
    s.embed = "transformer.word_embeddings.weight";
    s.final_norm = "transformer.ln_f";
    s.lm_head = "lm_head.weight";
    s.awq = cat(awq_attn_fused("attn_norm"), awq_mlp_plain("mlp_norm", false));
    s.gptq = cat(kGptqAttnFused, kGptqMlpPlain);
    rows.push_back(s);
  }
  {
    ArchSpec s = moe_row("mixtral", kMixtralMoe, RouterKind::SoftmaxTopK, false);
    s.synth_experts = true;
    rows.push_back(s);
  }
  {
    ArchSpec s = moe_row("phimoe", kMixtralMoe, RouterKind::SparseMixer, false);
    s.norm = NormKind::LayerNorm;
    rows.push_back(s);
  }
  {
    ArchSpec s = moe_row("qwen2_moe", kQwenMoe, RouterKind::SoftmaxTopK, true);
    s.qkv_bias = true;
    s.synth_experts = true;
    rows.push_back(s);
  }
  {
    ArchSpec s = moe_row("qwen3_moe", kQwenMoe, RouterKind::SoftmaxTopK, false);
    s.qk_norm = QkNormLayout::PerHead;
    s.synth_experts = true;
    rows.push_back(s);
  }
  {
    Names n = with(kQwenMoe, {{"q", ""},
                              {"k", ""},
                              {"v", ""},
                              {"gate", "mlp.gate_proj"},
                              {"up", "mlp.up_proj"},
                              {"down", "mlp.down_proj"},
                              {"router_bias", "mlp.gate.e_score_correction_bias"},
                              {"shared_gate", "mlp.shared_experts.gate_proj"},
                              {"shared_up", "mlp.shared_experts.up_proj"},
                              {"shared_down", "mlp.shared_experts.down_proj"},
                              {"shared_expert_gate", ""},
                              {"q_a", "self_attn.q_a_proj"},
                              {"q_a_norm", "self_attn.q_a_layernorm"},
                              {"q_b", "self_attn.q_b_proj"},
                              {"q_proj", "self_attn.q_proj"},
                              {"kv_a", "self_attn.kv_a_proj_with_mqa"},
                              {"kv_a_norm", "self_attn.kv_a_layernorm"},
                              {"kv_b", "self_attn.kv_b_proj"}});
    ArchSpec s = moe_row("deepseek_v3", n, RouterKind::SigmoidGrouped, true);
    s.synth_experts = true;
    s.family = BlockFamily::Mla;
    s.attn = AttnKind::Mla;
    s.rope_style = RopeStyle::Interleaved;
    s.awq = cat({{"attn_norm", {"q_a", "kv_a"}, "attn"},
                 {"q_a_norm", {"q_b"}, "q_b"},
                 {"kv_a_norm", {"kv_b"}, "kv_b"}},
                awq_moe("mlp_norm", true));
    s.gptq = cat(kGptqAttnMla, gptq_moe(true));
    s.awq_dense =
        cat(std::vector<AwqGroupSpec>(s.awq.begin(), s.awq.begin() + 3), awq_mlp_gated("mlp_norm"));
    s.gptq_dense = cat(kGptqAttnMla, kGptqMlpGated);
    rows.push_back(s);
  }
  {
    // Dense first layers (ernie moe_layer_start_index, glm first_k_dense_replace) use mlp.*_proj;
    // MoE layers: routed experts + always-on shared experts (summed, no gate) and a router
    // correction bias that only changes which experts are chosen.
    const Names moe_shared = with(kQwenMoe, {{"gate", "mlp.gate_proj"},
                                             {"up", "mlp.up_proj"},
                                             {"down", "mlp.down_proj"},
                                             {"shared_gate", "mlp.shared_experts.gate_proj"},
                                             {"shared_up", "mlp.shared_experts.up_proj"},
                                             {"shared_down", "mlp.shared_experts.down_proj"},
                                             {"shared_expert_gate", ""}});
    ArchSpec ernie =
        moe_row("ernie4_5_moe",
                with(moe_shared, {{"router_bias", "mlp.moe_statics.e_score_correction_bias"}}),
                RouterKind::SoftmaxCorrected, true);
    ernie.rope_style = RopeStyle::Interleaved;  // adjacent pairs (GLM-style rotate_half)
    rows.push_back(ernie);
    rows.push_back(moe_row("glm4_moe",
                           with(moe_shared, {{"router_bias", "mlp.gate.e_score_correction_bias"}}),
                           RouterKind::SigmoidGrouped, true));
  }
  {
    // GPT-OSS: llama attention with q/k/v/o biases and per-head sinks (softmax mass that no
    // value receives: v → o scaling stays exact, the sink is not scaled), sliding/full layers
    // from layer_types, a router with bias (softmax over the top-k logits = softmax top-k
    // renormalized), experts as fused 3-D tensors with a clamped SwiGLU. The fused experts stay
    // in floating point (listed as <block>.mlp.experts in modules_to_not_convert): AWQ/GPTQ
    // checkpoints store per-expert nn.Linear modules, which GPT-OSS's loaders do not have.
    ArchSpec s = llama_like(
        "gpt_oss", with(kLlamaNames, {{"gate", ""},
                                      {"up", ""},
                                      {"down", ""},
                                      {"router", "mlp.router"},
                                      {"sinks", "self_attn.sinks"},
                                      {"fused_gate_up", "mlp.experts.gate_up_proj"},
                                      {"fused_gate_up_bias", "mlp.experts.gate_up_proj_bias"},
                                      {"fused_down", "mlp.experts.down_proj"},
                                      {"fused_down_bias", "mlp.experts.down_proj_bias"}}));
    s.family = BlockFamily::Moe;
    s.mlp = MlpKind::Moe;
    s.router = RouterKind::SoftmaxTopK;
    s.fused_experts = FusedExperts::GptOss;
    s.awq = awq_attn_separate("attn_norm");
    s.gptq = kGptqAttnSeparate;
    s.awq_dense = s.awq;
    s.gptq_dense = s.gptq;
    rows.push_back(s);
  }
  {
    // Llama 4 (text): llama attention with interleaved rope, L2 qk-norm on rope layers, NoPE
    // layers with attention temperature tuning, chunked attention (layer_types); MoE blocks
    // (moe_layers) with a sigmoid top-k router whose weight scales the expert input, routed
    // experts and an always-on shared expert; dense blocks use feed_forward.*_proj
    // (intermediate_size_mlp). The checkpoint's fused experts ([E,H,2I] / [E,I,H]) are read as
    // per-expert linears (io/model/expert_split.h) and written so, the layout vLLM loads quantized.
    // AWQ in MoE blocks as qwen2_moe: post_attention_layernorm → every expert's gate/up and the
    // shared gate/up (the router is rescaled to keep routing; the routing weight is one factor per
    // token, so a per-channel scale of the input passes through it); per expert up → down;
    // shared up → down.
    ArchSpec s =
        llama_like("llama4_text",
                   with(kLlamaNames, {{"q_norm", ""},
                                      {"k_norm", ""},
                                      {"gate", "feed_forward.gate_proj"},
                                      {"up", "feed_forward.up_proj"},
                                      {"down", "feed_forward.down_proj"},
                                      {"router", "feed_forward.router"},
                                      {"expert_gate", "feed_forward.experts.{e}.gate_proj"},
                                      {"expert_up", "feed_forward.experts.{e}.up_proj"},
                                      {"expert_down", "feed_forward.experts.{e}.down_proj"},
                                      {"shared_gate", "feed_forward.shared_expert.gate_proj"},
                                      {"shared_up", "feed_forward.shared_expert.up_proj"},
                                      {"shared_down", "feed_forward.shared_expert.down_proj"}}));
    s.family = BlockFamily::Moe;
    s.mlp = MlpKind::Moe;
    s.router = RouterKind::SigmoidTopK;
    s.routing_weight_on_input = true;
    s.l2_qk_norm = true;
    s.rope_style = RopeStyle::Interleaved;
    s.awq_dense = s.awq;  // llama's groups for the dense blocks
    s.gptq_dense = s.gptq;
    s.awq = cat(awq_attn_separate("attn_norm"), awq_moe("mlp_norm", true));
    s.gptq = cat(kGptqAttnSeparate, gptq_moe(true));
    rows.push_back(s);
  }
  {
    // Qwen3-Next: hybrid blocks by layer_types. linear_attention: Gated DeltaNet (in_proj_qkvz,
    // in_proj_ba → causal depthwise conv + SiLU → gated delta rule → gated RMSNorm with z →
    // out_proj; conv1d, A_log, dt_bias and the gated norm stay float). full_attention: gated
    // attention (q_proj emits query and gate), zero-centred qk-norms, partial rope. Every block:
    // qwen2_moe's MoE (softmax top-k, shared expert with a sigmoid gate). Norms are (1+w).
    // AWQ: input_layernorm → in_proj_qkvz, in_proj_ba (both read it); out_proj has no group —
    // its input is a per-head gated norm whose weight ([dv], shared by every head) cannot carry
    // a per-channel scale. Full attention as llama (v → o only without GQA: σ(gate) is an
    // elementwise factor, so a v-row scale still passes to o exactly).
    ArchSpec s = moe_row("qwen3_next",
                         with(kQwenMoe, {{"lin_qkvz", "linear_attn.in_proj_qkvz"},
                                         {"lin_ba", "linear_attn.in_proj_ba"},
                                         {"lin_out", "linear_attn.out_proj"},
                                         {"lin_norm", "linear_attn.norm"},
                                         {"lin_param_conv", "linear_attn.conv1d.weight"},
                                         {"lin_param_A_log", "linear_attn.A_log"},
                                         {"lin_param_dt_bias", "linear_attn.dt_bias"}}),
                         RouterKind::SoftmaxTopK, true);
    s.norm = NormKind::RmsPlusOne;
    s.gated_attention = true;
    const std::vector<AwqGroupSpec> lin = {{"attn_norm", {"lin_qkvz", "lin_ba"}, "attn"}};
    s.awq = cat(cat(lin, awq_attn_separate("attn_norm")), awq_moe("mlp_norm", true));
    s.awq_dense = cat(cat(lin, awq_attn_separate("attn_norm")), awq_mlp_gated("mlp_norm"));
    // Each layer has one of the two mixers: absent roles drop out of a block's steps.
    const std::vector<GptqStepSpec> mixer = {{{{"k", "v", "q"}, {"lin_qkvz", "lin_ba"}}},
                                             {{{"o"}, {"lin_out"}}}};
    s.gptq = cat(mixer, gptq_moe(true));
    s.gptq_dense = cat(mixer, kGptqMlpGated);
    rows.push_back(s);
  }
  // Multimodal checkpoints (transformers' saved layout): the text model's row under
  // "language_model." — language_model.model.layers.{i}, language_model.lm_head. Vision towers
  // and projectors: vision_tower.* / multi_modal_projector.* (gemma3, mistral3), vision_model.* /
  // multi_modal_projector.* (llama4: Llama4ForConditionalGeneration, whose text model's fused
  // experts are split as llama4_text's, io/model/expert_split.h).
  for (const auto& [mt, text] : {std::pair<const char*, const char*>{"gemma3", "gemma3_text"},
                                 {"mistral3", "mistral"},
                                 {"llama4", "llama4_text"}}) {
    auto it = std::find_if(rows.begin(), rows.end(),
                           [&](const ArchSpec& r) { return r.model_type == text; });
    SQ_CHECK(it != rows.end(), "no row " << text << " for multimodal " << mt);
    ArchSpec s = *it;
    s.model_type = mt;
    s.language_prefix = "language_model.";
    for (std::string* n : {&s.layers_prefix, &s.embed, &s.final_norm, &s.lm_head})
      *n = s.language_prefix + *n;
    rows.push_back(s);
  }
  std::sort(rows.begin(), rows.end(),
            [](const ArchSpec& a, const ArchSpec& b) { return a.model_type < b.model_type; });
  return rows;
}

}  // namespace

const std::string& ArchSpec::role(const std::string& r) const {
  static const std::string none;
  auto it = names.find(r);
  return it == names.end() ? none : it->second;
}

RoleKind role_kind(const std::string& role) {
  // Bare tensors: the router correction bias, GPT-OSS's attention sinks and fused experts
  // (fused_gate_up [E,H,2I], fused_down [E,I,H] and their biases).
  if (role == "router_bias" || role == "sinks" || role.rfind("fused_", 0) == 0 ||
      role.rfind("lin_param_", 0) == 0)
    return RoleKind::Tensor;
  return role.find("norm") != std::string::npos ? RoleKind::Norm : RoleKind::Linear;
}

const std::vector<ArchSpec>& arch_specs() {
  static const std::vector<ArchSpec> rows = build_rows();
  return rows;
}

namespace {
const ArchSpec* find_row(const std::string& model_type) {
  for (const auto& r : arch_specs())
    if (r.model_type == model_type) return &r;
  return nullptr;
}
std::string supported_list() {
  std::string list;
  for (const auto& r : arch_specs()) list += (list.empty() ? "" : ", ") + r.model_type;
  return list;
}
io::ModelConfig supported(io::ModelConfig c) {
  SQ_REQUIRE(find_row(c.model_type), c.path << ": unsupported model_type \"" << c.model_type
                                            << "\"; supported: " << supported_list());
  return c;
}
}  // namespace

const ArchSpec& arch_spec(const std::string& model_type) {
  if (const ArchSpec* r = find_row(model_type)) return *r;
  SQ_THROW(InputError, "no architecture row for model_type \""
                           << model_type << "\"; supported: " << supported_list());
}

io::ModelConfig load_model_config(const std::string& path) {
  return supported(io::load_model_config(path));
}
io::ModelConfig parse_model_config(const nlohmann::json& j, const std::string& origin) {
  return supported(io::parse_model_config(j, origin));
}

std::string expand_expert(const std::string& pattern, int64_t e) {
  auto pos = pattern.find("{e}");
  if (pos == std::string::npos) return pattern;
  return pattern.substr(0, pos) + std::to_string(e) + pattern.substr(pos + 3);
}

}  // namespace sq::rank
