// Synthetic checkpoints (see synth.h). The named shapes are a table; tensor names come from the
// model_type's ArchSpec row and shapes from its shape rules (arch_shapes.h), so a written model
// has exactly what the planner checks. Tensors are generated one at a time and streamed into the
// sharded writer, so memory stays at one shard whatever the model size.
#include "rank/synth.h"

#include <chrono>
#include <filesystem>
#include <fstream>

#include "common/check.h"
#include "io/model_config.h"
#include "io/safetensors_writer.h"
#include "rank/arch_shapes.h"
#include "rank/arch_table.h"

namespace sq::rank {
namespace fs = std::filesystem;
namespace {

// Checkpoint traits of a family that its config.json does not state (every other row has none):
// q/k/v biases (o_proj without; attention_bias: false turns them off) and q/k norms, per head
// ([head_dim]) or over the whole projection ([heads × head_dim]).
enum class QkNorm { kNone, kPerHead, kFull };
struct FamilyTraits {
  const char* model_type;
  bool qkv_bias;
  QkNorm qk_norm;
};
const FamilyTraits kTraits[] = {
    {"qwen2", true, QkNorm::kNone},
    {"qwen3", false, QkNorm::kPerHead},
    {"gemma3_text", false, QkNorm::kPerHead},
    {"gemma3", false, QkNorm::kPerHead},  // multimodal: its language model is gemma3_text
    {"olmo2", false, QkNorm::kFull},
};

// The order synth writes a block's roles in (the row names them; absent roles are skipped).
const char* const kBlockOrder[] = {
    "attn_norm",      "q",        "k",    "v",  "q_norm", "k_norm",       "o",
    "post_attn_norm", "mlp_norm", "gate", "up", "down",   "post_mlp_norm"};

// Files copied from the tokenizer directory (the first is required).
const char* const kTokenizerFiles[] = {"tokenizer.json", "tokenizer_config.json",
                                       "special_tokens_map.json", "generation_config.json"};

FamilyTraits traits_of(const std::string& model_type) {
  for (const auto& f : kTraits)
    if (model_type == f.model_type) return f;
  return {"", false, QkNorm::kNone};
}

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

const std::vector<SynthShape>& synth_shapes() {
  // name, hidden, layers, intermediate, heads, kv heads, vocab, max positions, rope θ, llama3 rope
  static const std::vector<SynthShape> rows = {
      {"llama-1b", 2048, 16, 8192, 32, 8, 32000, 4096, 10000.0, false},
      {"llama-8b", 4096, 32, 14336, 32, 8, 128256, 8192, 500000.0, true},
      {"llama-70b", 8192, 80, 28672, 64, 8, 128256, 8192, 500000.0, true},
  };
  return rows;
}

nlohmann::json synth_config(const std::string& shape) {
  for (const auto& s : synth_shapes()) {
    if (shape != s.name) continue;
    nlohmann::json j = {{"architectures", {"LlamaForCausalLM"}},
                        {"model_type", "llama"},
                        {"hidden_size", s.hidden},
                        {"num_hidden_layers", s.layers},
                        {"intermediate_size", s.intermediate},
                        {"num_attention_heads", s.heads},
                        {"num_key_value_heads", s.kv_heads},
                        {"head_dim", s.hidden / s.heads},
                        {"vocab_size", s.vocab},
                        {"max_position_embeddings", s.max_positions},
                        {"hidden_act", "silu"},
                        {"rms_norm_eps", 1e-5},
                        {"rope_theta", s.rope_theta},
                        {"attention_bias", false},
                        {"mlp_bias", false},
                        {"tie_word_embeddings", false},
                        {"torch_dtype", "bfloat16"},
                        {"bos_token_id", 0},
                        {"eos_token_id", 1},
                        {"initializer_range", 0.02},
                        {"use_cache", true}};
    if (s.llama3_rope)
      j["rope_scaling"] = {{"rope_type", "llama3"},
                           {"factor", 8.0},
                           {"low_freq_factor", 1.0},
                           {"high_freq_factor", 4.0},
                           {"original_max_position_embeddings", 8192}};
    return j;
  }
  if (fs::is_regular_file(shape)) return read_json(shape);
  std::string names;
  for (const auto& s : synth_shapes()) names += std::string(names.empty() ? "" : ", ") + s.name;
  SQ_THROW(InputError, "synth --shape " << shape << ": neither a named shape (" << names
                                        << ") nor an existing config.json file");
}

bool synth_writes(const ArchSpec& s) {
  return s.attn == AttnKind::Separate && s.mlp == MlpKind::Gated && !s.conv1d &&
         s.pos_embed.empty() && s.norm != NormKind::LayerNorm;
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
                                              << " is not supported (synth writes dense models "
                                                 "with separate q/k/v and a gated MLP: "
                                              << list << ")");
  }
  const FamilyTraits traits = traits_of(c.model_type);
  const bool qkv_bias = c.get_bool("attention_bias", traits.qkv_bias);
  const bool o_bias = !traits.qkv_bias && c.attention_bias;
  const int64_t H = c.hidden_size, hd = c.head_dim;
  auto shape = [&](const std::string& role, int64_t block) {
    const auto r = implied_shape(c, role, block);
    SQ_CHECK(r, "synth: no shape rule for " << c.model_type << " role " << role);
    return r->shape;
  };
  std::vector<SynthTensor> t;
  t.push_back({s.embed, shape("embed", 0)});
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = s.layers_prefix + std::to_string(i) + ".";
    auto linear = [&](const std::string& role, bool bias) {
      const auto w = shape(role, i);
      t.push_back({p + s.role(role) + ".weight", w});
      if (bias) t.push_back({p + s.role(role) + ".bias", {w[0]}});
    };
    for (const char* role : kBlockOrder) {
      const std::string r = role;
      if (s.role(r).empty()) continue;
      if (r == "q_norm" || r == "k_norm") {
        if (traits.qk_norm == QkNorm::kNone) continue;
        const int64_t full = r == "q_norm" ? shape("q", i)[0] : shape("k", i)[0];
        t.push_back(
            {p + s.role(r) + ".weight", {traits.qk_norm == QkNorm::kFull ? full : hd}, true});
      } else if (role_kind(r) == RoleKind::Norm) {
        t.push_back({p + s.role(r) + ".weight", {H}, true});
      } else if (r == "v" && qkv_bias) {
        linear(r, false);
        for (const char* b : {"q", "k", "v"})
          t.push_back({p + s.role(b) + ".bias", {shape(b, i)[0]}});
      } else if (r == "q" || r == "k" || r == "v") {
        linear(r, false);
      } else if (r == "o") {
        linear(r, o_bias);
      } else {
        linear(r, c.mlp_bias);
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
  for (const auto& st : tensors) {
    auto t0 = clock::now();
    at::Tensor t = at::empty(st.shape, at::TensorOptions().dtype(o.dtype));
    if (st.ones)
      t.fill_(1.0);
    else
      fill_normal(t, o.seed, fnv1a(st.name), 0.02f, o.threads);
    auto t1 = clock::now();
    writer.add(st.name, t);
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
