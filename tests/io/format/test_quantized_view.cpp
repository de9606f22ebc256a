// Dequantize-on-load (io/format/quantized_view.h through io::ModelWeights): a quantized directory
// reads as virtual float32 "<L>.weight" tensors equal to the canonical dequantization, with the
// packed tensors hidden; the reference tools' own packed linears (shared/fixtures/formats) read
// back to their own dequantization.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "common/errors.h"
#include "io/format/pack.h"
#include "io/format/quant_config.h"
#include "io/format/quantized_view.h"
#include "io/model/model_weights.h"
#include "io/output/safetensors_writer.h"
#include "io/safetensors/safetensors.h"
#include "io/safetensors/tensor.h"
#include "test_paths.h"

using namespace sq;

namespace {

void write_json(const std::string& path, const nlohmann::json& j) {
  std::ofstream(path) << j.dump(2);
}

// A random canonical linear with codes/zeros in range and fp16-representable scales.
io::QuantLinear random_linear(int64_t n, int64_t k, int bits, int64_t g, bool act_order,
                              bool min_zero_one, uint64_t seed) {
  at::manual_seed(seed);
  const int64_t maxq = (1 << bits) - 1, groups = io::num_groups(k, g);
  io::QuantLinear q;
  q.scheme.bits = bits;
  q.scheme.group_size = g;
  q.codes = at::randint(0, maxq + 1, {n, k}, at::kInt);
  q.zeros = at::randint(min_zero_one ? 1 : 0, maxq + 1, {groups, n}, at::kInt);
  q.scales = (at::rand({groups, n}) * 0.01 + 1e-3).to(at::kHalf).to(at::kFloat);
  q.g_idx = io::default_g_idx(k, g);
  if (act_order) q.g_idx = q.g_idx.index_select(0, at::randperm(k, at::kLong)).contiguous();
  return q;
}

struct Case {
  const char* name;
  io::Format format;
  int bits;
  int64_t group;
  bool zero_point;
  bool act_order;
};
const Case kCases[] = {
    {"awq_w4_g64", io::Format::kAwqGemm, 4, 64, true, false},
    {"gptq_v1_w4_g64", io::Format::kGptqV1, 4, 64, true, false},
    {"gptq_v1_w3_act", io::Format::kGptqV1, 3, 64, true, true},
    {"gptq_v2_w2_gall", io::Format::kGptqV2, 2, -1, true, false},
    {"gptq_v1_w8_g32", io::Format::kGptqV1, 8, 32, false, false},
    {"ct_w4_g64", io::Format::kCompressedPack, 4, 64, true, false},
};

}  // namespace

TEST(QuantizedView, EveryFormatReadsAsExactDequantizedWeight) {
  for (const auto& c : kCases) {
    SCOPED_TRACE(c.name);
    test::TempDir dir;
    const int64_t n = 64, k = 256;
    io::QuantLinear q =
        random_linear(n, k, c.bits, c.group, c.act_order, c.format == io::Format::kGptqV1, 7);
    if (!c.zero_point) q.zeros.fill_(1 << (c.bits - 1));
    io::PackedLinear p = io::pack(q, c.format);
    std::vector<io::TensorToWrite> tensors;
    const std::string L = "model.layers.0.mlp.up_proj";
    for (auto& [suffix, t] : p.tensors) tensors.push_back({L + "." + suffix, t, {}});
    at::Tensor bias = at::randn({n}).to(at::kBFloat16);
    tensors.push_back({L + ".bias", bias, {}});
    at::Tensor norm = at::randn({k}).to(at::kBFloat16);
    tensors.push_back({"model.norm.weight", norm, {}});
    io::write_safetensors(dir / "model.safetensors", tensors);
    io::QuantSettings s;
    s.format = c.format;
    s.scheme.bits = c.bits;
    s.scheme.group_size = c.group;
    s.scheme.zero_point = c.zero_point;
    s.scheme.act_order = c.act_order;
    write_json(dir / "config.json", io::quantized_model_config({{"model_type", "llama"}}, s));

    io::ModelWeights w(dir.path());
    ASSERT_NE(w.quantization(), nullptr);
    EXPECT_EQ(w.quantization()->format, c.format);
    EXPECT_EQ(w.quantization()->scheme.bits, c.bits);
    EXPECT_EQ(w.quantization()->scheme.group_size, c.group);
    const std::vector<std::string> want_names = {L + ".bias", L + ".weight", "model.norm.weight"};
    EXPECT_EQ(w.names(), want_names);
    EXPECT_TRUE(w.has(L + ".weight"));
    EXPECT_TRUE(w.is_dequantized(L + ".weight"));
    for (const auto& suffix : io::format_row(c.format).suffixes) {
      EXPECT_FALSE(w.has(L + "." + suffix)) << suffix;
      EXPECT_THROW(w.get(L + "." + suffix), InputError) << suffix;
    }
    EXPECT_EQ(w.stored_names().size(), p.tensors.size() + 2);
    const auto& info = w.info(L + ".weight");
    EXPECT_EQ(info.dtype, io::DType::F32);
    EXPECT_EQ(info.shape, (std::vector<int64_t>{n, k}));
    EXPECT_EQ(w.file_of(L + ".weight"), dir / "model.safetensors");

    at::Tensor got = w.get(L + ".weight");
    // Independent of the packers: (codes − zeros[g_idx]) · scales[g_idx] written out here.
    at::Tensor gi = q.g_idx.to(at::kLong);
    at::Tensor want = (q.codes - q.zeros.index_select(0, gi).t()).to(at::kFloat) *
                      q.scales.index_select(0, gi).t();
    ASSERT_EQ(got.scalar_type(), at::kFloat);
    EXPECT_TRUE(at::equal(got, want));
    EXPECT_TRUE(at::equal(w.get_as(L + ".weight", at::kHalf), want.to(at::kHalf)));
    EXPECT_TRUE(at::equal(w.get(L + ".bias"), bias));
    EXPECT_TRUE(at::equal(w.get("model.norm.weight"), norm));
  }
}

TEST(QuantizedView, FullPrecisionDirectoryIsUnchanged) {
  test::TempDir dir;
  at::Tensor a = at::randn({8, 16});
  io::write_safetensors(dir / "model.safetensors", {{"x.qweight", a, {}}, {"x.weight", a, {}}});
  write_json(dir / "config.json", {{"model_type", "llama"}});
  io::ModelWeights w(dir.path());
  EXPECT_EQ(w.quantization(), nullptr);
  EXPECT_EQ(w.names(), (std::vector<std::string>{"x.qweight", "x.weight"}));
  EXPECT_TRUE(at::equal(w.get("x.qweight"), a));
}

TEST(QuantizedView, UnsupportedConfigsNameTheValue) {
  struct Bad {
    nlohmann::json q;
    const char* word;
  };
  const Bad bad[] = {
      {{{"quant_method", "awq"}, {"version", "gemv"}, {"bits", 4}}, "gemv"},
      {{{"quant_method", "bitsandbytes"}}, "bitsandbytes"},
      {{{"quant_method", "gptq"}, {"checkpoint_format", "marlin"}}, "marlin"},
      {{{"quant_method", "compressed-tensors"}, {"format", "float-quantized"}}, "float-quantized"},
      {{{"quant_method", "gptq"}, {"bits", 16}}, "16"},
  };
  for (const auto& b : bad) {
    try {
      io::quantized_layout({{"quantization_config", b.q}}, "cfg.json");
      ADD_FAILURE() << "accepted " << b.q.dump();
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(b.word), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("cfg.json"), std::string::npos) << e.what();
    }
  }
  EXPECT_FALSE(io::quantized_layout({{"model_type", "llama"}}, "cfg.json").has_value());
}

TEST(QuantizedView, MissingPackedTensorIsAnInputError) {
  test::TempDir dir;
  io::QuantLinear q = random_linear(16, 128, 4, 64, false, true, 3);
  io::PackedLinear p = io::pack(q, io::Format::kGptqV1);
  io::write_safetensors(dir / "model.safetensors",
                        {{"l.qweight", p.get("qweight"), {}}, {"l.scales", p.get("scales"), {}}});
  io::QuantSettings s;
  s.format = io::Format::kGptqV1;
  write_json(dir / "config.json", io::quantized_model_config({{"model_type", "llama"}}, s));
  io::ModelWeights w(dir.path());
  try {
    w.get("l.weight");
    ADD_FAILURE() << "dequantized without qzeros";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("qzeros"), std::string::npos) << e.what();
  }
}

// The real thing: linears packed by AutoAWQ / AutoGPTQ, given a prefix and a config.json, read
// back within fp16 rounding of the tools' own dequantization (README of fixtures/formats).
TEST(QuantizedView, ReferenceToolFixturesDequantizeOnLoad) {
  if (!test::have_shared("fixtures/formats/index.json")) GTEST_SKIP() << "format fixtures missing";
  std::ifstream in(test::shared("fixtures/formats/index.json"));
  const nlohmann::json index = nlohmann::json::parse(in);
  for (auto it = index.begin(); it != index.end(); ++it) {
    SCOPED_TRACE(it.key());
    const nlohmann::json& m = it.value();
    auto f =
        io::SafetensorsFile::open(test::shared("fixtures/formats/" + it.key() + ".safetensors"));
    test::TempDir dir;
    std::vector<io::TensorToWrite> tensors;
    for (const char* s : {"qweight", "qzeros", "scales", "g_idx"})
      if (f->find(s)) tensors.push_back({std::string("lin.") + s, io::view(f, f->at(s)), {}});
    io::write_safetensors(dir / "model.safetensors", tensors);
    nlohmann::json q = {
        {"quant_method", m["quant_method"]}, {"bits", m["bits"]}, {"group_size", m["group_size"]}};
    if (m["quant_method"] == "awq") {
      q["version"] = "gemm";
      q["zero_point"] = true;
    } else {
      q["checkpoint_format"] = m["checkpoint_format"];
      q["sym"] = m["sym"];
    }
    write_json(dir / "config.json", {{"quantization_config", q}});
    io::ModelWeights w(dir.path());
    at::Tensor got = w.get("lin.weight");
    at::Tensor ref = io::view(f, f->at("dequantized"));
    ASSERT_EQ(got.sizes(), ref.sizes());
    // The tools dequantize in fp16; ours is exact in fp32 — equal after rounding to fp16 up to
    // one fp16 ulp of the tool's own intermediate rounding.
    const double tol = 2 * 9.765625e-4 * std::max(1.0, ref.abs().max().item<double>());
    EXPECT_LE((got - ref).abs().max().item<double>(), tol);
    EXPECT_LE(
        (got.to(at::kHalf).to(at::kFloat) - io::view(f, f->at("source_weight")).to(at::kFloat))
            .abs()
            .max()
            .item<double>(),
        m["max_abs_diff_dequantized_vs_source"].get<double>() + 1e-7);
  }
}
