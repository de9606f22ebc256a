// Synthetic checkpoints (see synth.h). The named shapes are a table; tensor names come from the
// model_type's ArchSpec row and shapes from its shape rules (arch_shapes.h), so a written model
// has exactly what the planner checks. Tensors are generated one at a time and streamed into the
// sharded writer, so memory stays at one shard whatever the model size.
#include "rank/synth/synth.h"

#include <chrono>
#include <filesystem>
#include <fstream>

#include "common/check.h"
#include "io/model/model_config.h"
#include "io/output/safetensors_writer.h"
#include "rank/model/arch_shapes.h"
#include "rank/model/arch_table.h"

namespace sq::rank {
namespace fs = std::filesystem;
namespace {

// The order synth writes a block's roles in (the row names them; absent roles are skipped).
// An MoE block's routed experts are written expert by expert (gate, up, down) at "expert_gate".
const char* const kBlockOrder[] = {"attn_norm",
                                   "q",
                                   "k",
                                   "v",
                                   "q_norm",
                                   "k_norm",
                                   "q_a",
                                   "q_a_norm",
                                   "q_b",
                                   "q_proj",
                                   "kv_a",
                                   "kv_a_norm",
                                   "kv_b",
                                   "o",
                                   "post_attn_norm",
                                   "mlp_norm",
                                   "gate",
                                   "up",
                                   "down",
                                   "router",
                                   "router_bias",
                                   "expert_gate",
                                   "shared_gate",
                                   "shared_up",
                                   "shared_down",
                                   "shared_expert_gate",
                                   "post_mlp_norm"};

// Files copied from the tokenizer directory (the first is required).
const char* const kTokenizerFiles[] = {"tokenizer.json", "tokenizer_config.json",
                                       "special_tokens_map.json", "generation_config.json"};

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
  return h;
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  SQ_REQUIRE(in, "synth: cannot open " << path);
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    SQ_THROW(InputError, "synth: " << path << " is not valid JSON: " << e.what());
  }
}

}  // namespace

namespace {

nlohmann::json llama3(int64_t hidden, int64_t layers, int64_t inter, int64_t heads, int64_t vocab,
                      int64_t positions, double theta, bool llama3_rope) {
  nlohmann::json j = {{"architectures", {"LlamaForCausalLM"}},
                      {"model_type", "llama"},
                      {"hidden_size", hidden},
                      {"num_hidden_layers", layers},
                      {"intermediate_size", inter},
                      {"num_attention_heads", heads},
                      {"num_key_value_heads", 8},
                      {"head_dim", hidden / heads},
                      {"vocab_size", vocab},
                      {"max_position_embeddings", positions},
                      {"hidden_act", "silu"},
                      {"rms_norm_eps", 1e-5},
                      {"rope_theta", theta},
                      {"attention_bias", false},
                      {"mlp_bias", false},
                      {"tie_word_embeddings", false},
                      {"torch_dtype", "bfloat16"},
                      {"bos_token_id", 0},
                      {"eos_token_id", 1},
                      {"initializer_range", 0.02},
                      {"use_cache", true}};
  if (llama3_rope)
    j["rope_scaling"] = {{"rope_type", "llama3"},
                         {"factor", 8.0},
                         {"low_freq_factor", 1.0},
                         {"high_freq_factor", 4.0},
                         {"original_max_position_embeddings", 8192}};
  return j;
}

// The released configs' dimensions and routing (Hugging Face model cards), nothing else.
nlohmann::json mixtral_8x7b() {
  return {{"architectures", {"MixtralForCausalLM"}},
          {"model_type", "mixtral"},
          {"hidden_size", 4096},
          {"intermediate_size", 14336},
          {"num_hidden_layers", 32},
          {"num_attention_heads", 32},
          {"num_key_value_heads", 8},
          {"head_dim", 128},
          {"num_local_experts", 8},
          {"num_experts_per_tok", 2},
          {"vocab_size", 32000},
          {"max_position_embeddings", 32768},
          {"hidden_act", "silu"},
          {"rms_norm_eps", 1e-5},
          {"rope_theta", 1e6},
          {"sliding_window", nullptr},
          {"tie_word_embeddings", false},
          {"torch_dtype", "bfloat16"},
          {"bos_token_id", 1},
          {"eos_token_id", 2}};
}

nlohmann::json qwen3_30b_a3b() {
  return {{"architectures", {"Qwen3MoeForCausalLM"}},
          {"model_type", "qwen3_moe"},
          {"hidden_size", 2048},
          {"intermediate_size", 6144},
          {"moe_intermediate_size", 768},
          {"num_experts", 128},
          {"num_experts_per_tok", 8},
          {"norm_topk_prob", true},
          {"decoder_sparse_step", 1},
          {"mlp_only_layers", nlohmann::json::array()},
          {"num_hidden_layers", 48},
          {"num_attention_heads", 32},
          {"num_key_value_heads", 4},
          {"head_dim", 128},
          {"vocab_size", 151936},
          {"max_position_embeddings", 40960},
          {"hidden_act", "silu"},
          {"rms_norm_eps", 1e-6},
          {"rope_theta", 1e6},
          {"attention_bias", false},
          {"tie_word_embeddings", false},
          {"torch_dtype", "bfloat16"},
          {"bos_token_id", 151643},
          {"eos_token_id", 151645}};
}

nlohmann::json deepseek_v3() {
  nlohmann::json j = {{"architectures", {"DeepseekV3ForCausalLM"}},
                      {"model_type", "deepseek_v3"},
                      {"hidden_size", 7168},
                      {"intermediate_size", 18432},
                      {"moe_intermediate_size", 2048},
                      {"n_routed_experts", 256},
                      {"n_shared_experts", 1},
                      {"num_experts_per_tok", 8},
                      {"n_group", 8},
                      {"topk_group", 4},
                      {"topk_method", "noaux_tc"},
                      {"scoring_func", "sigmoid"},
                      {"routed_scaling_factor", 2.5},
                      {"norm_topk_prob", true},
                      {"first_k_dense_replace", 3},
                      {"moe_layer_freq", 1},
                      {"num_hidden_layers", 61},
                      {"num_attention_heads", 128},
                      {"num_key_value_heads", 128},
                      {"q_lora_rank", 1536},
                      {"kv_lora_rank", 512},
                      {"qk_nope_head_dim", 128},
                      {"qk_rope_head_dim", 64},
                      {"v_head_dim", 128},
                      {"vocab_size", 129280},
                      {"max_position_embeddings", 163840},
                      {"hidden_act", "silu"},
                      {"rms_norm_eps", 1e-6},
                      {"rope_theta", 10000},
                      {"rope_scaling",
                       {{"type", "yarn"},
                        {"factor", 40},
                        {"beta_fast", 32},
                        {"beta_slow", 1},
                        {"mscale", 1.0},
                        {"mscale_all_dim", 1.0},
                        {"original_max_position_embeddings", 4096}}},
                      {"attention_bias", false},
                      {"tie_word_embeddings", false},
                      {"torch_dtype", "bfloat16"},
                      {"bos_token_id", 0},
                      {"eos_token_id", 1}};
  return synth_fp8(j);
}

}  // namespace

const std::vector<SynthPreset>& synth_presets() {
  static const std::vector<SynthPreset> rows = {
      {"llama-1b", "1B-class Llama (REFERENCE.md §7)",
       [] { return llama3(2048, 16, 8192, 32, 32000, 4096, 10000.0, false); }},
      {"llama-8b", "Llama-3-8B",
       [] { return llama3(4096, 32, 14336, 32, 128256, 8192, 500000.0, true); }},
      {"llama-70b", "Llama-3-70B",
       [] { return llama3(8192, 80, 28672, 64, 128256, 8192, 500000.0, true); }},
      {"llama-405b", "Llama-3.1-405B",
       [] { return llama3(16384, 126, 53248, 128, 128256, 8192, 500000.0, true); }},
      {"mixtral-8x7b", "Mixtral-8x7B (8 experts, top 2)", mixtral_8x7b},
      {"qwen3-30b-a3b", "Qwen3-30B-A3B (128 experts, top 8)", qwen3_30b_a3b},
      {"deepseek-v3", "DeepSeek-V3 671B (MLA, 256 experts + 1 shared, 3 dense blocks, FP8)",
       deepseek_v3},
  };
  return rows;
}

nlohmann::json synth_config(const std::string& shape) {
  for (const auto& p : synth_presets())
    if (shape == p.name) return p.config();
  if (fs::is_regular_file(shape)) return read_json(shape);
  std::string names;
  for (const auto& p : synth_presets()) names += std::string(names.empty() ? "" : ", ") + p.name;
  SQ_THROW(InputError, "synth --shape " << shape << ": neither a named shape (" << names
                                        << ") nor an existing config.json file");
}

nlohmann::json synth_slice(nlohmann::json j, int64_t layers) {
  const int64_t all = j.value("num_hidden_layers", int64_t{0});
  SQ_REQUIRE(layers >= 1 && layers <= all, "synth --layers " << layers << ": expected 1.." << all
                                                             << " (the shape's num_hidden_layers)");
  j["num_hidden_layers"] = layers;
  return j;
}

nlohmann::json synth_fp8(nlohmann::json j) {
  j["quantization_config"] = {{"quant_method", "fp8"},
                              {"fmt", "e4m3"},
                              {"activation_scheme", "dynamic"},
                              {"weight_block_size", {128, 128}}};
  return j;
}

bool synth_writes(const ArchSpec& s) {
  const bool attn = s.attn == AttnKind::Separate || s.attn == AttnKind::Mla;
  const bool mlp =
      s.mlp == MlpKind::Gated || (s.mlp == MlpKind::Moe && s.synth_experts &&
                                  s.role("expert_gate").find("{e}") != std::string::npos);
  return attn && mlp && !s.conv1d && s.pos_embed.empty() && s.norm != NormKind::LayerNorm;
}

std::vector<std::string> synth_model_types() {
  std::vector<std::string> out;
  for (const auto& s : arch_specs())
    if (synth_writes(s)) out.push_back(s.model_type);
  return out;
}

std::vector<SynthTensor> synth_tensors(const nlohmann::json& j) {
  const io::ModelConfig c = parse_model_config(j, "synth config");
  const ArchSpec& s = arch_spec(c.model_type);
  if (!synth_writes(s)) {
    std::string list;
    for (const auto& t : synth_model_types()) list += (list.empty() ? "" : ", ") + t;
    SQ_THROW(InputError, "synth: model_type " << c.model_type
                                              << " is not supported (synth writes models with "
                                                 "separate q/k/v or MLA attention and a gated "
                                                 "or per-expert MoE MLP: "
                                              << list << ")");
  }
  const bool qkv_bias = c.get_bool("attention_bias", s.qkv_bias);
  const bool o_bias = !s.qkv_bias && c.attention_bias;
  const int64_t H = c.hidden_size, hd = c.head_dim;
  const bool fp8 = c.has("quantization_config") && c.raw["quantization_config"].is_object() &&
                   c.raw["quantization_config"].value("quant_method", "") == "fp8";
  auto shape = [&](const std::string& role, int64_t block) {
    const auto r = implied_shape(c, role, block);
    SQ_CHECK(r, "synth: no shape rule for " << c.model_type << " role " << role);
    return r->shape;
  };
  std::vector<SynthTensor> t;
  t.push_back({s.embed, shape("embed", 0)});
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = s.layers_prefix + std::to_string(i) + ".";
    const bool moe = block_is_moe(c, i);
    // A linear of this block: FP8 in an FP8 checkpoint unless it routes (DeepSeek-V3 keeps its
    // gates in bf16).
    auto linear = [&](const std::string& name, const std::vector<int64_t>& w, bool bias,
                      bool router = false) {
      SynthTensor x{p + name + ".weight", w};
      x.fp8 = fp8 && !router;
      t.push_back(x);
      if (bias) t.push_back({p + name + ".bias", {w[0]}});
    };
    for (const char* role : kBlockOrder) {
      const std::string r = role;
      if (s.role(r).empty()) continue;
      if (r == "q_norm" || r == "k_norm") {
        if (s.qk_norm == QkNormLayout::None) continue;
        const int64_t full = r == "q_norm" ? shape("q", i)[0] : shape("k", i)[0];
        t.push_back(
            {p + s.role(r) + ".weight", {s.qk_norm == QkNormLayout::Full ? full : hd}, true});
      } else if (r == "q_a_norm" || r == "kv_a_norm") {
        // An MLA norm sits on the low-rank side of its projection (q_a / kv_a without the rope
        // part).
        const int64_t rank = c.get_int(r == "q_a_norm" ? "q_lora_rank" : "kv_lora_rank", 0);
        if (rank > 0) t.push_back({p + s.role(r) + ".weight", {rank}, true});
      } else if (role_kind(r) == RoleKind::Norm) {
        t.push_back({p + s.role(r) + ".weight", {H}, true});
      } else if (r == "router_bias") {
        if (moe) t.push_back({p + s.role(r), {shape("router", i)[0]}, false, true});
      } else if (r == "expert_gate") {
        const auto sh = implied_shape(c, r, i);
        if (!sh) continue;
        const int64_t n = shape("router", i)[0];
        for (int64_t e = 0; e < n; ++e)
          for (const char* er : {"expert_gate", "expert_up", "expert_down"})
            linear(expand_expert(s.role(er), e), shape(er, i), c.mlp_bias);
      } else if (r == "v" && qkv_bias) {
        linear(s.role(r), shape(r, i), false);
        for (const char* b : {"q", "k", "v"})
          t.push_back({p + s.role(b) + ".bias", {shape(b, i)[0]}});
      } else if (r == "q" || r == "k" || r == "v") {
        linear(s.role(r), shape(r, i), false);
      } else if (r == "o") {
        linear(s.role(r), shape(r, i), o_bias);
      } else if (const auto sh = implied_shape(c, r, i)) {
        // Dense-MLP roles in an MoE block, shared experts the config lacks, q_a/q_b without a
        // q LoRA (and q_proj with one) have no rule there: not written.
        const bool router = r == "router" || r == "shared_expert_gate";
        linear(s.role(r), sh->shape, !router && c.mlp_bias, router);
      }
    }
  }
  t.push_back({s.final_norm + ".weight", {H}, true});
  if (!c.tie_word_embeddings) t.push_back({s.lm_head, shape("lm_head", 0)});
  return t;
}

SynthReport write_synth_model(const nlohmann::json& config_in, const SynthOptions& o) {
  using clock = std::chrono::steady_clock;
  SQ_REQUIRE(!o.out_dir.empty(), "synth: --out is required");
  SQ_REQUIRE(!fs::exists(o.out_dir) || fs::is_empty(o.out_dir),
             "synth: output directory " << o.out_dir << " exists and is not empty");
  const std::string tok_json = o.tokenizer_dir + "/tokenizer.json";
  SQ_REQUIRE(!o.tokenizer_dir.empty() && fs::is_regular_file(tok_json),
             "synth: no tokenizer.json in '" << o.tokenizer_dir
                                             << "' (pass --tokenizer DIR holding tokenizer.json)");
  nlohmann::json config = config_in;
  if (o.layers > 0) config = synth_slice(config, o.layers);
  if (o.fp8) config = synth_fp8(config);
  const char* dtype_name = o.dtype == at::kBFloat16 ? "bfloat16"
                           : o.dtype == at::kHalf   ? "float16"
                                                    : "float32";
  config["torch_dtype"] = dtype_name;
  config.erase("dtype");
  // The special-token ids must be the tokenizer's, not the donor config's.
  if (fs::is_regular_file(o.tokenizer_dir + "/config.json")) {
    const auto tc = read_json(o.tokenizer_dir + "/config.json");
    for (const char* k : {"bos_token_id", "eos_token_id", "pad_token_id"})
      if (tc.contains(k)) config[k] = tc[k];
  }
  const auto tensors = synth_tensors(config);

  fs::create_directories(o.out_dir);
  SynthReport rep;
  io::ShardedWriter writer(o.out_dir, o.max_shard_bytes);
  // An FP8 config's scale blocks (synth_fp8 and the released DeepSeek-V3 config: 128 × 128).
  int64_t br = 128, bc = 128;
  if (config.contains("quantization_config") && config["quantization_config"].is_object()) {
    const auto& q = config["quantization_config"];
    if (q.contains("weight_block_size") && q["weight_block_size"].is_array() &&
        q["weight_block_size"].size() == 2) {
      br = q["weight_block_size"][0].get<int64_t>();
      bc = q["weight_block_size"][1].get<int64_t>();
      SQ_REQUIRE(br > 0 && bc > 0, "synth: weight_block_size must be positive");
    }
  }
  for (const auto& st : tensors) {
    auto t0 = clock::now();
    const at::ScalarType dt = st.fp32 || st.fp8 ? at::kFloat : o.dtype;
    at::Tensor t = at::empty(st.shape, at::TensorOptions().dtype(dt));
    if (st.ones)
      t.fill_(1.0);
    else
      fill_normal(t, o.seed, fnv1a(st.name), 0.02f, o.threads);
    std::vector<io::TensorToWrite> out;
    if (st.fp8) {
      Fp8Blocks q = quantize_fp8_blocks(t, br, bc, o.threads);
      out.push_back({st.name, q.bytes, io::DType::F8_E4M3});
      out.push_back({st.name.substr(0, st.name.size() - 6) + "weight_scale_inv", q.scale_inv, {}});
    } else {
      out.push_back({st.name, t, {}});
    }
    auto t1 = clock::now();
    for (auto& x : out) writer.add(std::move(x));
    rep.generate_s += std::chrono::duration<double>(t1 - t0).count();
    rep.write_s += std::chrono::duration<double>(clock::now() - t1).count();
    rep.tensors += 1;
    rep.parameters += t.numel();
  }
  auto t1 = clock::now();
  rep.files = writer.finish();
  rep.bytes = writer.total_bytes();
  rep.write_s += std::chrono::duration<double>(clock::now() - t1).count();

  std::ofstream(o.out_dir + "/config.json") << config.dump(2) << "\n";
  for (const char* f : kTokenizerFiles) {
    const std::string src = o.tokenizer_dir + "/" + f;
    if (fs::is_regular_file(src))
      fs::copy_file(src, o.out_dir + "/" + f, fs::copy_options::overwrite_existing);
  }
  return rep;
}

}  // namespace sq::rank
