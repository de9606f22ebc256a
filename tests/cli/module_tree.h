// The linear modules a checkpoint implies, derived from the input checkpoint alone (its tensor
// names and shapes, plus transformers' module naming written down here) — never from
// shardquant's architecture table — and the rules by which runtimes decide whether a module of
// that tree is a quantized layer, applied to a quantized output directory.
//
// The tree: every 2-D "<M>.weight" of the input except embeddings (the last name component is
// one of transformers' embedding module names, kEmbeddings), plus the output head ("lm_head";
// GPT-NeoX: "embed_out"; multimodal checkpoints: "language_model.lm_head"), which is a module
// even when it is tied to the embedding and absent from the file. GPT-2's block linears are Conv1D
// (weights [in, out]); every other 2-D weight is a torch.nn.Linear [out, in]. Llama 4
// (model_type llama4_text / llama4) also has, for its fused expert tensors
// "<C>.experts.gate_up_proj" [E, H, 2I] ([gate | up] on the last dim) and "<C>.experts.down_proj"
// [E, I, H], the per-expert modules "<C>.experts.{e}.gate_proj / up_proj" [I, H] and
// "down_proj" [H, I] — the modules vLLM's llama4.py builds its FusedMoE from when the checkpoint
// holds no fused tensor (llm-compressor's Llama 4 checkpoints have this layout).
//
// The rules check_module_tree() applies (gtest failures name module and rule):
//   * every format: each module is either packed — every tensor of the format present with its
//     REFERENCE.md §3 dtype and shape, "<M>.weight" absent — or float — "<M>.weight" present
//     exactly when the input has it, no tensor of the format present;
//   * compressed-tensors (config_groups targets ["Linear"]): float exactly when "ignore" matches
//     the name the way compressed-tensors and vLLM match it (an entry equal to the name, or
//     "re:<regex>" matching from the name's start);
//   * awq and gptq: float exactly when "modules_to_not_convert" matches the name under vLLM's
//     AWQ rule (an entry is a substring of the name); and under transformers 5's rule
//     (re.match(entry, name) or name.endswith(entry)) every float module is matched and no
//     packed one is. (vLLM's GPTQ loaders read which modules are packed from the stored dtypes,
//     so for gptq the list is our own contract, held to the same rules.);
//   * vLLM's fused layers — q/k/v, gate/up and q_a/kv_a under one parent, all experts under one
//     "<...>.experts" — are packed or float as a whole;
//   * every list entry names a module: a linear of the tree, or an experts container all of
//     whose linears are float (or that holds fused 3-D expert tensors, GPT-OSS);
//   * fused 3-D expert tensors (GPT-OSS) are stored unchanged and their container is listed;
//     Llama 4's are not stored at all (its per-expert modules replace them), and a float
//     per-expert module of a GPTQ output holds exactly its slice of the fused input tensor.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "cli/test_quantize_e2e_checks.h"

namespace sq::test::tree {

struct LinearModule {
  std::string name;
  bool conv1d = false;
  bool stored = true;  // false: the tied output head (no tensor of its own)
  int64_t out = 0, in = 0;
  // Llama 4 per-expert module: weight(r, c) = fused[expert][c][offset + r].
  std::string fused;
  int64_t expert = -1, offset = 0;
};

inline bool splits_fused_experts(const std::string& model_type) {
  return model_type == "llama4_text" || model_type == "llama4";
}

inline bool ends_with(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

inline std::vector<LinearModule> linear_modules(const std::string& in_dir) {
  static const std::set<std::string> kEmbeddings = {
      "embed_tokens", "wte", "wpe", "embed_positions", "embed_in", "word_embeddings"};
  const nlohmann::json cfg = e2e::load_json(in_dir + "/config.json");
  const std::string type = cfg.value("model_type", "");
  const e2e::StoredTensors in(in_dir);
  // Multimodal checkpoints in transformers' saved layout hold the text model (and its head)
  // under "language_model." (language_model.model.layers…, language_model.lm_head).
  bool multimodal = false;
  for (const auto& [name, where] : in.where)
    multimodal = multimodal || name.rfind("language_model.", 0) == 0;
  const std::string head = type == "gpt_neox" ? "embed_out"
                           : multimodal       ? "language_model.lm_head"
                                              : "lm_head";
  std::vector<LinearModule> out;
  bool head_seen = false;
  for (const auto& [name, where] : in.where) {
    const io::TensorInfo& t = where.second;
    if (t.shape.size() != 2 || !ends_with(name, ".weight")) continue;
    LinearModule m;
    m.name = name.substr(0, name.size() - 7);
    const std::string leaf = m.name.substr(m.name.rfind('.') + 1);
    if (kEmbeddings.count(leaf)) continue;
    head_seen = head_seen || m.name == head;
    m.conv1d = type == "gpt2" && m.name != head;
    m.out = m.conv1d ? t.shape[1] : t.shape[0];
    m.in = m.conv1d ? t.shape[0] : t.shape[1];
    out.push_back(m);
  }
  if (!head_seen) out.push_back({head, false, false, 0, 0});
  if (splits_fused_experts(type))
    for (const auto& [name, where] : in.where) {
      const std::vector<int64_t>& sh = where.second.shape;
      const bool gate_up = ends_with(name, ".experts.gate_up_proj");
      if (sh.size() != 3 || !(gate_up || ends_with(name, ".experts.down_proj"))) continue;
      const std::string c = name.substr(0, name.rfind('.'));
      for (int64_t e = 0; e < sh[0]; ++e) {
        const std::string p = c + "." + std::to_string(e) + ".";
        if (gate_up) {
          out.push_back({p + "gate_proj", false, true, sh[2] / 2, sh[1], name, e, 0});
          out.push_back({p + "up_proj", false, true, sh[2] / 2, sh[1], name, e, sh[2] / 2});
        } else {
          out.push_back({p + "down_proj", false, true, sh[2], sh[1], name, e, 0});
        }
      }
    }
  return out;
}

// --- how runtimes match a module name against the config's list -----------------------------

inline bool ct_match(const std::string& name, const std::string& entry) {
  if (entry.rfind("re:", 0) == 0)
    return std::regex_search(name, std::regex(entry.substr(3)),
                             std::regex_constants::match_continuous);
  return entry == name;
}
inline bool vllm_awq_match(const std::string& name, const std::string& entry) {
  return name.find(entry) != std::string::npos;
}
inline bool transformers_match(const std::string& name, const std::string& entry) {
  return std::regex_search(name, std::regex(entry), std::regex_constants::match_continuous) ||
         ends_with(name, entry);
}
template <class Rule>
bool any_entry(const std::vector<std::string>& list, const std::string& name, Rule rule) {
  for (const auto& e : list)
    if (rule(name, e)) return true;
  return false;
}

// vLLM's fused layer a module belongs to ("" when none).
inline std::string fused_group(const std::string& name) {
  static const std::regex experts(R"(^(.*\.experts)\.\d+\.)");
  std::smatch m;
  if (std::regex_search(name, m, experts)) return m[1].str() + "#experts";
  const auto dot = name.rfind('.');
  const std::string parent = dot == std::string::npos ? "" : name.substr(0, dot);
  const std::string leaf = name.substr(dot == std::string::npos ? 0 : dot + 1);
  static const std::map<std::string, std::string> kFused = {{"q_proj", "qkv"},
                                                            {"k_proj", "qkv"},
                                                            {"v_proj", "qkv"},
                                                            {"gate_proj", "gate_up"},
                                                            {"up_proj", "gate_up"},
                                                            {"q_a_proj", "qkv_a"},
                                                            {"kv_a_proj_with_mqa", "qkv_a"}};
  auto it = kFused.find(leaf);
  return it == kFused.end() ? "" : parent + "#" + it->second;
}

// --- the format's tensors of one packed linear (REFERENCE.md §3.1-3.3) -------------------------

struct Want {
  std::string suffix;
  io::DType dtype;
  std::vector<int64_t> shape;
};

inline io::DType model_dtype(const nlohmann::json& cfg) {
  const std::string d = cfg.value("torch_dtype", cfg.value("dtype", std::string()));
  if (d == "bfloat16") return io::DType::BF16;
  if (d == "float32") return io::DType::F32;
  return io::DType::F16;
}

inline int64_t cdiv(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

inline std::vector<Want> packed_tensors(const std::string& format, const LinearModule& m,
                                        const nlohmann::json& cfg) {
  const nlohmann::json& q = cfg["quantization_config"];
  const int64_t N = m.out, K = m.in;
  if (format == "compressed-tensors") {
    const nlohmann::json& w = q["config_groups"]["group_0"]["weights"];
    const int64_t b = w["num_bits"],
                  G = w["group_size"].is_null() ? K : w["group_size"].get<int64_t>();
    std::vector<Want> want = {{"weight_packed", io::DType::I32, {N, cdiv(K * b, 32)}},
                              {"weight_scale", model_dtype(cfg), {N, cdiv(K, G)}},
                              {"weight_shape", io::DType::I64, {2}}};
    if (!w["symmetric"].get<bool>())
      want.push_back({"weight_zero_point", io::DType::I32, {cdiv(N * b, 32), cdiv(K, G)}});
    if (w["actorder"] == "group") want.push_back({"weight_g_idx", io::DType::I32, {K}});
    return want;
  }
  const int64_t b = q["bits"],
                G = q["group_size"].get<int64_t>() > 0 ? q["group_size"].get<int64_t>() : K;
  if (format == "awq")
    return {{"qweight", io::DType::I32, {K, N / 8}},
            {"qzeros", io::DType::I32, {K / G, N / 8}},
            {"scales", io::DType::F16, {K / G, N}}};
  return {{"qweight", io::DType::I32, {K * b / 32, N}},
          {"qzeros", io::DType::I32, {K / G, N * b / 32}},
          {"scales", io::DType::F16, {K / G, N}},
          {"g_idx", io::DType::I32, {K}}};
}

// The config's list of float modules: "ignore" or "modules_to_not_convert".
inline std::vector<std::string> float_list(const std::string& format, const nlohmann::json& q) {
  const char* key = format == "compressed-tensors" ? "ignore" : "modules_to_not_convert";
  EXPECT_TRUE(q.contains(key) && q[key].is_array()) << key;
  return q.value(key, std::vector<std::string>{});
}

// Every rule of the header for one output directory. `format`: "awq", "gptq" or
// "compressed-tensors". Returns how many modules are packed (so callers can insist on some).
inline int check_module_tree(const std::string& in_dir, const std::string& out_dir,
                             const std::string& format) {
  const std::vector<LinearModule> tree = linear_modules(in_dir);
  const nlohmann::json cfg = e2e::load_json(out_dir + "/config.json");
  const nlohmann::json& q = cfg["quantization_config"];
  if (format == "compressed-tensors") {
    EXPECT_EQ(q["quant_method"], "compressed-tensors");
    EXPECT_EQ(q["format"], "pack-quantized");
    EXPECT_EQ(q["quantization_status"], "compressed");
    EXPECT_EQ(q["config_groups"].size(), 1u);
    EXPECT_EQ(q["config_groups"]["group_0"]["targets"], nlohmann::json::array({"Linear"}));
  } else {
    EXPECT_EQ(q["quant_method"], format);
  }
  const std::vector<std::string> list = float_list(format, q);
  const e2e::StoredTensors in(in_dir), out(out_dir);
  const bool split = splits_fused_experts(
      e2e::load_json(in_dir + "/config.json").value("model_type", std::string()));
  std::map<std::string, std::set<bool>> groups;  // fused layer -> {packed?}
  std::set<std::string> float_names;
  int packed_count = 0;
  for (const auto& m : tree) {
    SCOPED_TRACE(format + ": module " + m.name);
    // The tied head has no shape of its own and is never packed: nothing may be stored under it.
    const std::vector<Want> want = m.stored ? packed_tensors(format, m, cfg) : std::vector<Want>{};
    if (!m.stored)
      for (const auto& [t, where] : out.where)
        EXPECT_NE(t.rfind(m.name + ".", 0), 0u) << "tied head stores " << t;
    int present = 0;
    for (const auto& w : want) present += out.has(m.name + "." + w.suffix) ? 1 : 0;
    const bool packed = present > 0;
    if (packed) {
      ++packed_count;
      EXPECT_FALSE(out.has(m.name + ".weight")) << "packed and float at once";
      for (const auto& w : want) {
        const std::string t = m.name + "." + w.suffix;
        if (!out.has(t)) {
          ADD_FAILURE() << "packed module without " << w.suffix;
          continue;
        }
        EXPECT_EQ(out.info(t).dtype, w.dtype)
            << w.suffix << ": " << io::dtype_name(out.info(t).dtype) << ", expected "
            << io::dtype_name(w.dtype);
        EXPECT_EQ(out.info(t).shape, w.shape) << w.suffix;
      }
    } else {
      float_names.insert(m.name);
      EXPECT_EQ(out.has(m.name + ".weight"), m.stored) << "float module's .weight";
      // GPTQ leaves float weights as they are (AWQ may rescale a kept prev op): the slice.
      const std::string w = m.name + ".weight";
      if (!m.fused.empty() && format != "awq" && out.has(w) &&
          out.info(w).dtype == io::DType::F32 && in.info(m.fused).dtype == io::DType::F32) {
        const std::string a = out.bytes(w), b = in.bytes(m.fused);
        const auto* o = reinterpret_cast<const float*>(a.data());
        const auto* f = reinterpret_cast<const float*>(b.data());
        const auto& fs = in.info(m.fused).shape;  // [E, in, D]
        int bad = 0;
        for (int64_t r = 0; r < m.out; ++r)
          for (int64_t c = 0; c < m.in; ++c)
            bad += o[r * m.in + c] != f[(m.expert * fs[1] + c) * fs[2] + m.offset + r];
        EXPECT_EQ(bad, 0) << "float expert weight differs from its slice of " << m.fused;
      }
    }
    if (format == "compressed-tensors") {
      EXPECT_FALSE(m.conv1d) << "compressed-tensors written for a Conv1D module";
      EXPECT_EQ(!packed, any_entry(list, m.name, ct_match)) << "ignore vs packed";
    } else {
      EXPECT_EQ(!packed, any_entry(list, m.name, vllm_awq_match))
          << "modules_to_not_convert (vLLM substring rule) vs packed";
      EXPECT_EQ(!packed, any_entry(list, m.name, transformers_match))
          << "modules_to_not_convert (transformers rule) vs packed";
    }
    const std::string g = fused_group(m.name);
    if (!g.empty()) groups[g].insert(packed);
  }
  // Fused 3-D expert tensors (GPT-OSS "<block>.mlp.experts.gate_up_proj"): no format packs
  // them, so their container must be listed (vLLM builds a quantized FusedMoE layer otherwise)
  // and the tensor stored unchanged.
  for (const auto& [t, where] : in.where) {
    if (where.second.shape.size() != 3 || t.find(".experts.") == std::string::npos) continue;
    SCOPED_TRACE(format + ": fused expert tensor " + t);
    if (split) {
      EXPECT_FALSE(out.has(t)) << "Llama 4 fused tensor written beside its per-expert modules";
      continue;
    }
    const std::string container = t.substr(0, t.rfind('.'));
    if (format == "compressed-tensors")
      EXPECT_TRUE(any_entry(list, container, ct_match)) << "container not in ignore";
    else
      EXPECT_TRUE(any_entry(list, container, vllm_awq_match)) << "container not listed";
    EXPECT_TRUE(out.has(t) && out.bytes(t) == in.bytes(t)) << "not copied unchanged";
  }
  for (const auto& [g, states] : groups)
    EXPECT_EQ(states.size(), 1u) << format << ": fused layer " << g << " is partly packed";
  for (const auto& e : list) {
    SCOPED_TRACE(format + ": list entry " + e);
    if (float_names.count(e)) continue;
    // An experts container: every tree module under it is float, and there is one — or it holds
    // fused expert tensors (GPT-OSS mlp.experts.gate_up_proj [E,H,2I]: not nn.Linear modules,
    // kept float as a whole).
    int under = 0;
    for (const auto& [t, where] : in.where)
      if (t.rfind(e + ".", 0) == 0 && where.second.shape.size() == 3) ++under;
    for (const auto& m : tree)
      if (m.name.rfind(e + ".", 0) == 0) {
        ++under;
        EXPECT_TRUE(float_names.count(m.name)) << m.name << " is packed";
      }
    EXPECT_TRUE(under > 0 && ends_with(e, ".experts")) << "names no float module of the model";
  }
  return packed_count;
}

}  // namespace sq::test::tree
