#include "io/model/model_config.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>

#include "common/check.h"

namespace fs = std::filesystem;

namespace sq::io {
namespace {

// Where each typed field is read from. The first alias present (and not null) wins. Rows with a
// model_type override the default row for that family only.
struct KeyAliases {
  const char* field;
  std::vector<const char*> keys;
};
using AliasTable = std::vector<KeyAliases>;

const AliasTable& default_aliases() {
  static const AliasTable t = {
      {"hidden_size", {"hidden_size", "n_embd", "d_model"}},
      {"intermediate_size", {"intermediate_size", "ffn_dim", "n_inner"}},
      {"num_hidden_layers", {"num_hidden_layers", "n_layer", "num_layers"}},
      {"num_attention_heads", {"num_attention_heads", "n_head"}},
      {"num_key_value_heads", {"num_key_value_heads", "num_kv_heads", "n_head_kv"}},
      {"vocab_size", {"vocab_size"}},
      {"max_position_embeddings", {"max_position_embeddings", "n_positions"}},
      {"norm_eps",
       {"rms_norm_eps", "layer_norm_eps", "layer_norm_epsilon", "norm_epsilon", "norm_eps"}},
      {"hidden_act", {"hidden_act", "hidden_activation", "activation_function", "activation"}},
  };
  return t;
}

// Family overrides: where the generic key exists in the file but the family does not use it.
const std::map<std::string, AliasTable>& family_aliases() {
  static const std::map<std::string, AliasTable> t = {
      // GPT-2 ignores intermediate_size: n_inner, or 4 × hidden when null.
      {"gpt2", {{"intermediate_size", {"n_inner"}}, {"num_key_value_heads", {"n_head"}}}},
      {"opt",
       {{"intermediate_size", {"ffn_dim"}}, {"num_key_value_heads", {"num_attention_heads"}}}},
      {"falcon",
       {{"intermediate_size", {"ffn_hidden_size"}},
        {"num_key_value_heads", {"num_kv_heads", "num_key_value_heads"}}}},
      {"gpt_neox", {{"num_key_value_heads", {"num_attention_heads"}}}},
  };
  return t;
}

const nlohmann::json* lookup(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return nullptr;
  return &*it;
}

const std::vector<const char*>& aliases_for(const std::string& model_type, const char* field) {
  auto fam = family_aliases().find(model_type);
  if (fam != family_aliases().end())
    for (const auto& row : fam->second)
      if (std::string(row.field) == field) return row.keys;
  for (const auto& row : default_aliases())
    if (std::string(row.field) == field) return row.keys;
  static const std::vector<const char*> none;
  return none;
}

const nlohmann::json* find_field(const nlohmann::json& j, const std::string& model_type,
                                 const char* field) {
  for (const char* k : aliases_for(model_type, field))
    if (auto* v = lookup(j, k)) return v;
  return nullptr;
}

int64_t require_int(const nlohmann::json& j, const std::string& mt, const char* field,
                    const std::string& origin) {
  const auto* v = find_field(j, mt, field);
  if (!v) {
    std::string keys;
    for (const char* k : aliases_for(mt, field)) keys += std::string(keys.empty() ? "" : ", ") + k;
    SQ_THROW(InputError,
             origin << ": missing required key " << field << " (looked for: " << keys << ")");
  }
  if (!v->is_number_integer())
    SQ_THROW(InputError, origin << ": " << field << " must be an integer, got " << v->dump());
  return v->get<int64_t>();
}

// A key of a rope dict read as `T`: absent or null gives `fallback`; any other JSON type is an
// InputError naming the key (a hostile config must end as exit 2, never as a JSON type error).
double rope_number(const nlohmann::json& dict, const char* key, double fallback,
                   const std::string& where) {
  auto* v = lookup(dict, key);
  if (!v) return fallback;
  if (!v->is_number())
    SQ_THROW(InputError, where << "." << key << " must be a number, got " << v->dump());
  return v->get<double>();
}
std::string rope_string(const nlohmann::json& dict, const char* key, const std::string& where) {
  auto* v = lookup(dict, key);
  if (!v) return std::string();
  if (!v->is_string())
    SQ_THROW(InputError, where << "." << key << " must be a string, got " << v->dump());
  return v->get<std::string>();
}

// Normalizes one rope dict (transformers 5 rope_parameters, or a transformers 4 rope_scaling
// merged with rope_theta). `where` names the dict in messages ("<config>: rope_scaling").
RopeConfig make_rope(const nlohmann::json& dict, double theta_fallback, double partial_fallback,
                     const std::string& where) {
  RopeConfig r;
  r.params = dict.is_object() ? dict : nlohmann::json::object();
  r.theta = rope_number(r.params, "rope_theta", theta_fallback, where);
  std::string type = rope_string(r.params, "rope_type", where);
  if (type.empty()) type = rope_string(r.params, "type", where);
  if (type.empty()) type = "default";
  r.type = type;
  r.partial_rotary_factor = rope_number(r.params, "partial_rotary_factor", partial_fallback, where);
  // One spelling per key, whichever transformers version wrote the file: the old "type" key
  // becomes rope_type, and the top-level partial rotary factor joins the dict.
  r.params.erase("type");
  r.params["rope_type"] = r.type;
  r.params["rope_theta"] = r.theta;
  r.params["partial_rotary_factor"] = r.partial_rotary_factor;
  return r;
}

}  // namespace

bool ModelConfig::has(const std::string& key) const {
  return lookup(raw, key.c_str()) != nullptr;
}

double ModelConfig::get_double(const std::string& key, double fallback) const {
  auto* v = lookup(raw, key.c_str());
  return v && v->is_number() ? v->get<double>() : fallback;
}
int64_t ModelConfig::get_int(const std::string& key, int64_t fallback) const {
  auto* v = lookup(raw, key.c_str());
  return v && v->is_number_integer() ? v->get<int64_t>() : fallback;
}
bool ModelConfig::get_bool(const std::string& key, bool fallback) const {
  auto* v = lookup(raw, key.c_str());
  return v && v->is_boolean() ? v->get<bool>() : fallback;
}
std::string ModelConfig::get_string(const std::string& key, const std::string& fallback) const {
  auto* v = lookup(raw, key.c_str());
  return v && v->is_string() ? v->get<std::string>() : fallback;
}
const RopeConfig& ModelConfig::rope_for(const std::string& layer_type) const {
  auto it = rope_by_layer_type.find(layer_type);
  return it == rope_by_layer_type.end() ? rope : it->second;
}

namespace {
// Multimodal wrappers (gemma3, mistral3 …) keep the language model's settings in text_config:
// its keys are read as if they were top-level, except model_type and architectures (the
// wrapper's row finds the language model under its prefix) and tie_word_embeddings when the
// wrapper sets it (the wrapper's output head is the one tied).
nlohmann::json with_text_config(const nlohmann::json& j) {
  const auto* tc = lookup(j, "text_config");
  if (!tc || !tc->is_object()) return j;
  nlohmann::json merged = j;
  for (auto it = tc->begin(); it != tc->end(); ++it) {
    if (it.key() == "model_type" || it.key() == "architectures") continue;
    if (it.key() == "tie_word_embeddings" && lookup(j, "tie_word_embeddings")) continue;
    merged[it.key()] = it.value();
  }
  return merged;
}
}  // namespace

ModelConfig parse_model_config(const nlohmann::json& top, const std::string& origin) {
  if (!top.is_object()) SQ_THROW(InputError, origin << ": config is not a JSON object");
  const nlohmann::json j = with_text_config(top);
  ModelConfig c;
  c.path = origin;
  c.raw = j;
  const auto* mt = lookup(j, "model_type");
  if (!mt || !mt->is_string())
    SQ_THROW(InputError, origin << ": missing \"model_type\" (is this a transformers config?)");
  c.model_type = mt->get<std::string>();
  if (auto* a = lookup(j, "architectures"))
    for (const auto& s : *a)
      if (s.is_string()) c.architectures.push_back(s.get<std::string>());

  const std::string& m = c.model_type;
  c.hidden_size = require_int(j, m, "hidden_size", origin);
  c.num_hidden_layers = require_int(j, m, "num_hidden_layers", origin);
  c.num_attention_heads = require_int(j, m, "num_attention_heads", origin);
  c.vocab_size = require_int(j, m, "vocab_size", origin);
  if (auto* v = find_field(j, m, "intermediate_size"); v && v->is_number_integer())
    c.intermediate_size = v->get<int64_t>();
  else
    c.intermediate_size = 4 * c.hidden_size;  // GPT-2/NeoX convention when absent or null
  if (auto* v = find_field(j, m, "num_key_value_heads"); v && v->is_number_integer())
    c.num_key_value_heads = v->get<int64_t>();
  else
    c.num_key_value_heads = c.num_attention_heads;
  if (m == "falcon" && !c.get_bool("new_decoder_architecture", false) &&
      c.get_bool("multi_query", false))
    c.num_key_value_heads = 1;
  if (auto* v = find_field(j, m, "max_position_embeddings"); v && v->is_number_integer())
    c.max_position_embeddings = v->get<int64_t>();
  if (auto* v = find_field(j, m, "norm_eps"); v && v->is_number()) c.norm_eps = v->get<double>();
  if (auto* v = find_field(j, m, "hidden_act"); v && v->is_string())
    c.hidden_act = v->get<std::string>();
  SQ_REQUIRE(c.num_attention_heads > 0 && c.hidden_size > 0,
             origin << ": hidden_size and num_attention_heads must be positive");
  c.head_dim = c.get_int("head_dim", c.hidden_size / c.num_attention_heads);
  c.vocab_size = c.vocab_size;
  c.dtype = c.get_string("dtype", c.get_string("torch_dtype", ""));
  c.tie_word_embeddings = c.get_bool("tie_word_embeddings", false);
  c.attention_bias = c.get_bool("attention_bias", false);
  c.mlp_bias = c.get_bool("mlp_bias", false);
  if (auto* v = lookup(j, "sliding_window"); v && v->is_number_integer() && v->get<int64_t>() > 0)
    c.sliding_window = v->get<int64_t>();
  if (auto* v = lookup(j, "layer_types"); v && v->is_array())
    for (const auto& s : *v) {
      if (!s.is_string())
        SQ_THROW(InputError, origin << ": layer_types entries must be strings, got " << s.dump());
      c.layer_types.push_back(s.get<std::string>());
    }

  // Rope: transformers 5 `rope_parameters` (flat, or keyed by layer type), else transformers 4
  // `rope_theta` + `rope_scaling`; partial rotary from rotary_pct / partial_rotary_factor.
  double partial = c.get_double("partial_rotary_factor", c.get_double("rotary_pct", 1.0));
  // gpt_neox configs from transformers < 4.41 call the base rotary_emb_base.
  double theta4 = c.get_double("rope_theta", c.get_double("rotary_emb_base", 10000.0));
  if (auto* rp = lookup(j, "rope_parameters"); rp && rp->is_object()) {
    bool by_type = false;
    for (auto it = rp->begin(); it != rp->end(); ++it)
      if (it.value().is_object()) {
        by_type = true;
        c.rope_by_layer_type[it.key()] =
            make_rope(it.value(), theta4, partial, origin + ": rope_parameters." + it.key());
      }
    if (by_type) {
      auto full = c.rope_by_layer_type.find("full_attention");
      c.rope =
          full != c.rope_by_layer_type.end() ? full->second : c.rope_by_layer_type.begin()->second;
    } else {
      c.rope = make_rope(*rp, theta4, partial, origin + ": rope_parameters");
    }
  } else {
    nlohmann::json dict = nlohmann::json::object();
    if (auto* rs = lookup(j, "rope_scaling"); rs && rs->is_object()) dict = *rs;
    dict["rope_theta"] = theta4;
    c.rope = make_rope(dict, theta4, partial, origin + ": rope_scaling");
    if (auto* local = lookup(j, "rope_local_base_freq"); local && local->is_number()) {
      c.rope_by_layer_type["full_attention"] = c.rope;
      nlohmann::json ldict = {{"rope_theta", local->get<double>()}, {"rope_type", "default"}};
      c.rope_by_layer_type["sliding_attention"] =
          make_rope(ldict, local->get<double>(), partial, origin + ": rope_local_base_freq");
    }
  }
  return c;
}

ModelConfig load_model_config(const std::string& path) {
  fs::path p(path);
  if (fs::is_directory(p)) p /= "config.json";
  if (!fs::exists(p)) SQ_THROW(InputError, p.string() << ": config.json not found");
  nlohmann::json j;
  try {
    std::ifstream in(p);
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& ex) {
    SQ_THROW(InputError, p.string() << ": invalid JSON (" << ex.what() << ")");
  }
  return parse_model_config(j, p.string());
}

}  // namespace sq::io
