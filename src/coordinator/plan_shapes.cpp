// Shape rules: which tensors a config.json implies and their shapes, per architecture family.
// Families whose layouts differ (fused qkv, MLA, Conv1D, MoE experts) get only the generic
// checks of make_plan(); add rows here as they are verified against fixtures.
#include <sstream>

#include "common/check.h"
#include "coordinator/plan_internal.h"
#include "rank/arch.h"

namespace sq::coordinator::detail {
namespace {

enum class Dim { kHidden, kInter, kQ, kKv, kVocab };

struct DimRow {
  Dim dim;
  const char* what;  // how the config implies it
  int64_t (*get)(const io::ModelConfig&);
};
const DimRow kDims[] = {
    {Dim::kHidden, "hidden_size", [](const io::ModelConfig& c) { return c.hidden_size; }},
    {Dim::kInter, "intermediate_size",
     [](const io::ModelConfig& c) { return c.intermediate_size; }},
    {Dim::kQ, "num_attention_heads × head_dim",
     [](const io::ModelConfig& c) { return c.num_attention_heads * c.head_dim; }},
    {Dim::kKv, "num_key_value_heads × head_dim",
     [](const io::ModelConfig& c) { return c.num_key_value_heads * c.head_dim; }},
    {Dim::kVocab, "vocab_size", [](const io::ModelConfig& c) { return c.vocab_size; }},
};

const DimRow& dim(Dim d) {
  for (const auto& r : kDims)
    if (r.dim == d) return r;
  return kDims[0];
}

// Families (model_types) a rule applies to.
const std::vector<std::string> kAttnFamily = {
    "llama",       "mistral", "qwen2",     "qwen3",     "granite", "olmo2",  "gemma",     "gemma2",
    "gemma3_text", "mixtral", "qwen2_moe", "qwen3_moe", "phimoe",  "cohere", "starcoder2"};
const std::vector<std::string> kDenseMlpFamily = {"llama",       "mistral", "qwen2", "qwen3",
                                                  "granite",     "olmo2",   "gemma", "gemma2",
                                                  "gemma3_text", "cohere"};

struct ShapeRule {
  const std::vector<std::string>* family;
  const char* name;  // relative to the block prefix when in_block, else absolute
  bool in_block;
  Dim rows, cols;
};
const ShapeRule kRules[] = {
    {&kAttnFamily, "model.embed_tokens.weight", false, Dim::kVocab, Dim::kHidden},
    {&kAttnFamily, "self_attn.q_proj.weight", true, Dim::kQ, Dim::kHidden},
    {&kAttnFamily, "self_attn.k_proj.weight", true, Dim::kKv, Dim::kHidden},
    {&kAttnFamily, "self_attn.v_proj.weight", true, Dim::kKv, Dim::kHidden},
    {&kAttnFamily, "self_attn.o_proj.weight", true, Dim::kHidden, Dim::kQ},
    {&kDenseMlpFamily, "mlp.gate_proj.weight", true, Dim::kInter, Dim::kHidden},
    {&kDenseMlpFamily, "mlp.up_proj.weight", true, Dim::kInter, Dim::kHidden},
    {&kDenseMlpFamily, "mlp.down_proj.weight", true, Dim::kHidden, Dim::kInter},
};

bool in_family(const std::vector<std::string>& fam, const std::string& t) {
  for (const auto& f : fam)
    if (f == t) return true;
  return false;
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << "]";
  return os.str();
}

void check_one(const io::ModelConfig& cfg, const io::ModelWeights& w, const std::string& name,
               const ShapeRule& r) {
  const auto& rows = dim(r.rows);
  const auto& cols = dim(r.cols);
  const std::vector<int64_t> want{rows.get(cfg), cols.get(cfg)};
  SQ_REQUIRE(w.has(name), w.dir() << ": tensor " << name << " is missing (config.json "
                                  << cfg.model_type << " implies it, shape " << shape_str(want)
                                  << ")");
  const auto& got = w.info(name).shape;
  SQ_REQUIRE(got == want, w.file_of(name)
                              << ": tensor " << name << " has shape " << shape_str(got)
                              << " but config.json implies " << shape_str(want) << " (" << rows.what
                              << " " << want[0] << ", " << cols.what << " " << want[1] << ")");
}

}  // namespace

void check_shapes(const io::ModelConfig& cfg, const io::ModelWeights& w) {
  for (const auto& r : kRules) {
    if (!in_family(*r.family, cfg.model_type)) continue;
    if (!r.in_block) {
      check_one(cfg, w, r.name, r);
      continue;
    }
    for (int64_t b = 0; b < cfg.num_hidden_layers; ++b)
      check_one(cfg, w, rank::block_prefix(cfg, b) + "." + r.name, r);
  }
  // An untied lm_head must exist with the embedding's shape.
  if (in_family(kAttnFamily, cfg.model_type) &&
      (!cfg.tie_word_embeddings || w.has("lm_head.weight")))
    check_one(cfg, w, "lm_head.weight",
              {&kAttnFamily, "lm_head.weight", false, Dim::kVocab, Dim::kHidden});
}

}  // namespace sq::coordinator::detail
