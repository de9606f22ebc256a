// Checks of a quantized output directory written by the shardquant binary, each derived from
// REFERENCE.md §3 and from the input model itself (never from our own earlier output).
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "cli/run_binary.h"
#include "io/safetensors/safetensors.h"

namespace sq::test::e2e {

namespace fs = std::filesystem;

inline nlohmann::json load_json(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

inline std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Every file of a directory (relative name → bytes), recursively.
inline std::map<std::string, std::string> dir_contents(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file())
      out[fs::relative(e.path(), dir).string()] = file_bytes(e.path().string());
  return out;
}

// The stored tensors of a model directory: name → (file, info), read with the raw reader.
struct StoredTensors {
  std::vector<std::shared_ptr<io::SafetensorsFile>> files;
  std::map<std::string, std::pair<size_t, io::TensorInfo>> where;

  explicit StoredTensors(const std::string& dir) {
    for (const auto& e : fs::directory_iterator(dir)) {
      if (e.path().extension() != ".safetensors") continue;
      files.push_back(io::SafetensorsFile::open(e.path().string()));
      for (const auto& t : files.back()->tensors()) where[t.name] = {files.size() - 1, t};
    }
  }
  bool has(const std::string& n) const { return where.count(n) != 0; }
  const io::TensorInfo& info(const std::string& n) const { return where.at(n).second; }
  std::string bytes(const std::string& n) const {
    const auto& [fi, t] = where.at(n);
    return std::string(reinterpret_cast<const char*>(files[fi]->data(t)), t.nbytes());
  }
};

// Block linears of the Llama layout, from the input's tensor names.
inline bool is_block_linear_weight(const std::string& name) {
  static const std::regex re(R"(^model\.layers\.\d+\.(self_attn|mlp)\.[a-z]+_proj\.weight$)");
  return std::regex_match(name, re);
}

struct Expect {
  std::string method;  // "awq" | "gptq"
  int bits = 4;
  int64_t group = 128;
  bool sym = false;
  bool desc_act = false;
};

// §3.1 / §3.2 shapes and dtypes of every quantized linear; everything else per the method.
inline void check_tensors(const std::string& in_dir, const std::string& out_dir, const Expect& e) {
  const StoredTensors in(in_dir), out(out_dir);
  int64_t linears = 0;
  for (const auto& [name, where] : in.where) {
    const io::TensorInfo& ti = where.second;
    SCOPED_TRACE(name);
    if (!is_block_linear_weight(name)) {
      ASSERT_TRUE(out.has(name));
      EXPECT_EQ(out.info(name).dtype, ti.dtype);
      EXPECT_EQ(out.info(name).shape, ti.shape);
      // AWQ folds its scales into the block norms; everything else is written unchanged.
      const bool awq_scaled = e.method == "awq" && name.find("layernorm") != std::string::npos &&
                              name.rfind("model.layers.", 0) == 0;
      if (!awq_scaled) EXPECT_TRUE(out.bytes(name) == in.bytes(name)) << "bytes differ";
      continue;
    }
    ++linears;
    const std::string L = name.substr(0, name.size() - 7);
    EXPECT_FALSE(out.has(name)) << "quantized linear kept its FP weight";
    const int64_t N = ti.shape[0], K = ti.shape[1], G = e.group > 0 ? e.group : K, b = e.bits;
    struct Want {
      std::string suffix;
      io::DType dtype;
      std::vector<int64_t> shape;
    };
    std::vector<Want> want;
    if (e.method == "awq")
      want = {{"qweight", io::DType::I32, {K, N / 8}},
              {"qzeros", io::DType::I32, {K / G, N / 8}},
              {"scales", io::DType::F16, {K / G, N}}};
    else
      want = {{"qweight", io::DType::I32, {K * b / 32, N}},
              {"qzeros", io::DType::I32, {K / G, N * b / 32}},
              {"scales", io::DType::F16, {K / G, N}},
              {"g_idx", io::DType::I32, {K}}};
    for (const auto& w : want) {
      ASSERT_TRUE(out.has(L + "." + w.suffix)) << w.suffix;
      EXPECT_EQ(out.info(L + "." + w.suffix).dtype, w.dtype) << w.suffix;
      EXPECT_EQ(out.info(L + "." + w.suffix).shape, w.shape) << w.suffix;
    }
    if (e.method == "gptq") {
      // g_idx: k/G without act order; with act order (no static groups) every group still holds
      // exactly G columns (g_idx = position in the processing order / G).
      const std::string gb = out.bytes(L + ".g_idx");
      std::vector<int32_t> g(K);
      std::memcpy(g.data(), gb.data(), gb.size());
      std::vector<int64_t> count(K / G, 0);
      bool trivial = true;
      for (int64_t k = 0; k < K; ++k) {
        ASSERT_GE(g[k], 0);
        ASSERT_LT(g[k], K / G);
        ++count[g[k]];
        trivial = trivial && g[k] == k / G;
      }
      for (auto c : count) EXPECT_EQ(c, G);
      if (!e.desc_act) EXPECT_TRUE(trivial);
      if (e.sym) {
        // Symmetric v1 qzeros are the constant word of zero − 1 = 2^(b−1) − 1 (§3.2).
        const std::map<int, uint32_t> kWord = {
            {2, 0x55555555u}, {4, 0x77777777u}, {8, 0x7F7F7F7Fu}};
        const std::string zb = out.bytes(L + ".qzeros");
        for (size_t i = 0; i + 4 <= zb.size(); i += 4) {
          uint32_t word;
          std::memcpy(&word, zb.data() + i, 4);
          ASSERT_EQ(word, kWord.at(e.bits)) << "qzeros word " << i / 4;
        }
      }
    }
  }
  EXPECT_EQ(linears, 42);  // 6 blocks × 7 linears of the house model
}

inline void check_configs(const std::string& in_dir, const std::string& out_dir, const Expect& e) {
  nlohmann::json in = load_json(in_dir + "/config.json"), out = load_json(out_dir + "/config.json");
  ASSERT_TRUE(out.contains("quantization_config"));
  const nlohmann::json q = out["quantization_config"];
  out.erase("quantization_config");
  EXPECT_EQ(out, in) << "config.json changed beyond quantization_config";
  EXPECT_EQ(q["quant_method"], e.method);
  EXPECT_EQ(q["bits"], e.bits);
  EXPECT_EQ(q["group_size"], e.group);
  if (e.method == "awq") {
    EXPECT_EQ(q["zero_point"], !e.sym);
    EXPECT_EQ(q["version"], "gemm");
    EXPECT_TRUE(q["modules_to_not_convert"].is_array());
    const nlohmann::json want = {
        {"zero_point", !e.sym}, {"q_group_size", e.group}, {"w_bit", e.bits}, {"version", "GEMM"}};
    EXPECT_EQ(load_json(out_dir + "/quant_config.json"), want);
    EXPECT_FALSE(fs::exists(out_dir + "/quantize_config.json"));
  } else {
    for (const char* k : {"desc_act", "sym", "true_sequential", "damp_percent", "static_groups",
                          "checkpoint_format"})
      EXPECT_TRUE(q.contains(k)) << k;
    EXPECT_EQ(q["desc_act"], e.desc_act);
    EXPECT_EQ(q["sym"], e.sym);
    EXPECT_TRUE(q["checkpoint_format"] == "gptq" || q["checkpoint_format"] == "gptq_v2");
    if (e.sym) EXPECT_EQ(q["checkpoint_format"], "gptq");
    const nlohmann::json side = load_json(out_dir + "/quantize_config.json");
    for (auto it = q.begin(); it != q.end(); ++it)
      if (it.key() != "modules_to_not_convert") EXPECT_EQ(side[it.key()], it.value()) << it.key();
    EXPECT_FALSE(fs::exists(out_dir + "/quant_config.json"));
  }
}

// The run left a complete directory: no .partial, aux files copied byte for byte, summary.
inline void check_layout(const std::string& in_dir, const std::string& out_dir) {
  EXPECT_TRUE(fs::is_directory(out_dir));
  EXPECT_FALSE(fs::exists(out_dir + ".partial"));
  for (const char* f : {"tokenizer.json", "tokenizer_config.json", "generation_config.json"}) {
    ASSERT_TRUE(fs::exists(out_dir + "/" + f)) << f;
    EXPECT_TRUE(file_bytes(out_dir + "/" + f) == file_bytes(in_dir + "/" + f)) << f;
  }
  ASSERT_TRUE(fs::exists(out_dir + "/shardquant_summary.json"));
  EXPECT_TRUE(load_json(out_dir + "/shardquant_summary.json").is_object());
}

}  // namespace sq::test::e2e
