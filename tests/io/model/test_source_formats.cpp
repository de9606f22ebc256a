// FP8 / MXFP4 source checkpoints (io/model/source_formats.h through io::ModelWeights): the decoding
// tables against values worked out by hand from the OCP definitions, block-scaled FP8 with edge
// blocks (a dimension that is not a multiple of the block), per-tensor / per-channel
// compressed-tensors FP8, the MXFP4 nibble order and layout of GPT-OSS, hidden scale tensors,
// and the errors for what cannot be read. Every expected value here is written out by hand.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/errors.h"
#include "io/model/model_weights.h"
#include "io/model/source_formats.h"
#include "io/output/safetensors_writer.h"
#include "test_paths.h"

using namespace sq;

namespace {

void write_config(const std::string& dir, const nlohmann::json& q,
                  const std::string& dtype = "bfloat16") {
  nlohmann::json c = {{"model_type", "llama"}, {"torch_dtype", dtype}};
  if (!q.is_null()) c["quantization_config"] = q;
  std::ofstream(dir + "/config.json") << c.dump(2);
}

io::TensorToWrite fp8(const std::string& name, const at::Tensor& bytes) {
  return {name, bytes.to(at::kByte).contiguous(), io::DType::F8_E4M3};
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "(no InputError)";
}

}  // namespace

TEST(SourceFormats, E4m3TableMatchesHandValues) {
  const auto& t = io::e4m3_values();
  EXPECT_EQ(t[0x00], 0.0f);
  EXPECT_TRUE(std::signbit(t[0x80]) && t[0x80] == 0.0f);
  EXPECT_EQ(t[0x38], 1.0f);  // exp 7 = 2^0, mantissa 0
  EXPECT_EQ(t[0x3C], 1.5f);  // mantissa 4/8
  EXPECT_EQ(t[0x44], 3.0f);  // exp 8, mantissa 4/8: 1.5 · 2
  EXPECT_EQ(t[0xB8], -1.0f);
  EXPECT_EQ(t[0x7E], 448.0f);        // the largest finite: 1.75 · 2^8
  EXPECT_EQ(t[0x08], 0.015625f);     // smallest normal 2^−6
  EXPECT_EQ(t[0x01], 0.001953125f);  // smallest subnormal 2^−9
  EXPECT_EQ(t[0x07], 0.013671875f);  // 7 · 2^−9
  EXPECT_TRUE(std::isnan(t[0x7F]));
  EXPECT_TRUE(std::isnan(t[0xFF]));
  for (int b = 0; b < 256; ++b)
    if ((b & 0x7F) != 0x7F) EXPECT_TRUE(std::isfinite(t[b])) << b;  // E4M3FN: no infinities
}

TEST(SourceFormats, E2m1TableIsTheOcpList) {
  const float want[16] = {0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0f, -0.5, -1, -1.5, -2, -3, -4, -6};
  for (int i = 0; i < 16; ++i) EXPECT_EQ(io::e2m1_values()[i], want[i]) << i;
}

// N = 5, K = 7 in blocks of [2, 3]: scales [3, 3]; the last row block has 1 row and the last
// column block 1 column.
TEST(SourceFormats, Fp8BlockScalesWithEdgeBlocks) {
  at::Tensor bytes = at::full({5, 7}, 0x38, at::kByte);  // 1.0 everywhere
  bytes[4][6] = 0x44;                                    // 3.0 in the corner (edge × edge) block
  bytes[0][0] = 0xBC;                                    // −1.5
  bytes[2][5] = 0x01;                                    // 2^−9
  at::Tensor scale = at::empty({3, 3}, at::kFloat);
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c) scale[r][c] = 0.5f * static_cast<float>(r * 3 + c + 1);
  const at::Tensor out = io::dequant_fp8(bytes, scale, 2, 3);
  ASSERT_EQ(out.sizes(), (std::vector<int64_t>{5, 7}));
  ASSERT_EQ(out.scalar_type(), at::kFloat);
  for (int i = 0; i < 5; ++i)
    for (int j = 0; j < 7; ++j) {
      float want = 0.5f * static_cast<float>((i / 2) * 3 + (j / 3) + 1);
      if (i == 4 && j == 6) want = 3.0f * 4.5f;          // scale[2][2] = 4.5
      if (i == 0 && j == 0) want = -1.5f * 0.5f;         // scale[0][0] = 0.5
      if (i == 2 && j == 5) want = 0.001953125f * 2.5f;  // scale[1][1] = 2.5
      EXPECT_EQ(out[i][j].item<float>(), want) << i << "," << j;
    }
}

TEST(SourceFormats, Mxfp4NibbleOrderAndScales) {
  // One row of 32 values: byte b holds element 2b (low nibble) and 2b + 1 (high nibble).
  at::Tensor blocks = at::zeros({1, 16}, at::kByte);
  blocks[0][0] = 0x21;                                // elements 0, 1 = 0.5, 1.0
  blocks[0][1] = 0xF8;                                // elements 2, 3 = −0.0, −6
  blocks[0][15] = 0x7D;                               // elements 30, 31 = −3 (0xD), 6 (0x7)
  at::Tensor scales = at::full({1}, 129, at::kByte);  // 2^(129 − 127) = 4
  const at::Tensor out = io::dequant_mxfp4(blocks, scales);
  ASSERT_EQ(out.sizes(), (std::vector<int64_t>{32}));
  EXPECT_EQ(out[0].item<float>(), 2.0f);
  EXPECT_EQ(out[1].item<float>(), 4.0f);
  EXPECT_EQ(out[2].item<float>(), 0.0f);
  EXPECT_EQ(out[3].item<float>(), -24.0f);
  EXPECT_EQ(out[30].item<float>(), -12.0f);
  EXPECT_EQ(out[31].item<float>(), 24.0f);
  EXPECT_EQ(out.slice(0, 4, 30).abs().sum().item<float>(), 0.0f);
  scales[0] = 127;  // 2^0
  EXPECT_EQ(io::dequant_mxfp4(blocks, scales)[1].item<float>(), 1.0f);
  scales[0] = 255;  // E8M0 NaN
  EXPECT_TRUE(std::isnan(io::dequant_mxfp4(blocks, scales)[1].item<float>()));
}

// DeepSeek-V3's layout: weight_block_size [128, 128], a weight of [130, 260] has scales [2, 3]
// (edge blocks of 2 rows and 4 columns).
TEST(SourceFormats, DeepSeekFp8ReadsAsBf16WithHiddenScales) {
  test::TempDir d;
  write_config(d.path(), {{"quant_method", "fp8"},
                          {"fmt", "e4m3"},
                          {"activation_scheme", "dynamic"},
                          {"weight_block_size", {128, 128}}});
  at::Tensor bytes = at::full({130, 260}, 0x38, at::kByte);  // 1.0
  bytes[129][259] = 0x3C;                                    // 1.5
  bytes[0][128] = 0x44;                                      // 3.0
  at::Tensor sinv = at::tensor({0.25f, 0.5f, 0.75f, 1.0f, 1.25f, 1.5f}).reshape({2, 3});
  const at::Tensor norm = at::full({260}, 2.0f, at::kBFloat16);
  io::write_safetensors(d / "model.safetensors",
                        {fp8("model.layers.0.mlp.down_proj.weight", bytes),
                         {"model.layers.0.mlp.down_proj.weight_scale_inv", sinv},
                         {"model.layers.0.post_attention_layernorm.weight", norm}});
  io::ModelWeights w(d.path());
  EXPECT_EQ(w.quantization(), nullptr);
  ASSERT_NE(w.source_format(), nullptr);
  EXPECT_EQ(w.names(),
            (std::vector<std::string>{"model.layers.0.mlp.down_proj.weight",
                                      "model.layers.0.post_attention_layernorm.weight"}));
  EXPECT_FALSE(w.has("model.layers.0.mlp.down_proj.weight_scale_inv"));
  const auto& info = w.info("model.layers.0.mlp.down_proj.weight");
  EXPECT_EQ(info.dtype, io::DType::BF16);
  EXPECT_EQ(info.shape, (std::vector<int64_t>{130, 260}));
  const at::Tensor t = w.get("model.layers.0.mlp.down_proj.weight");
  ASSERT_EQ(t.scalar_type(), at::kBFloat16);
  const at::Tensor f = t.to(at::kFloat);
  EXPECT_EQ(f[0][0].item<float>(), 0.25f);
  EXPECT_EQ(f[127][127].item<float>(), 0.25f);
  EXPECT_EQ(f[0][128].item<float>(), 3.0f * 0.5f);
  EXPECT_EQ(f[127][128].item<float>(), 0.5f);
  EXPECT_EQ(f[0][255].item<float>(), 0.5f);
  EXPECT_EQ(f[0][256].item<float>(), 0.75f);  // the 4-column edge block
  EXPECT_EQ(f[128][0].item<float>(), 1.0f);   // the 2-row edge block
  EXPECT_EQ(f[129][258].item<float>(), 1.5f);
  EXPECT_EQ(f[129][259].item<float>(), 1.5f * 1.5f);
  // Block sums: 128·128·0.25 etc., with the two changed elements.
  EXPECT_EQ(f.sum().item<double>(), 128.0 * 128 * 0.25 + (128.0 * 128 * 0.5 + 1.0) +
                                        128.0 * 4 * 0.75 + 2.0 * 128 * 1.0 + 2.0 * 128 * 1.25 +
                                        (2.0 * 4 * 1.5 + 0.75));
  EXPECT_TRUE(w.get("model.layers.0.post_attention_layernorm.weight").equal(norm));
  EXPECT_TRUE(w.get_as("model.layers.0.mlp.down_proj.weight", at::kFloat).equal(f));
  EXPECT_TRUE(w.get_on("model.layers.0.mlp.down_proj.weight", at::kFloat, at::kCPU).equal(f));
  // What a prefetch pages in: the FP8 bytes and the scales.
  EXPECT_EQ(w.stored_parts("model.layers.0.mlp.down_proj.weight"),
            (std::vector<std::string>{"model.layers.0.mlp.down_proj.weight",
                                      "model.layers.0.mlp.down_proj.weight_scale_inv"}));
  EXPECT_EQ(w.stored_span("model.layers.0.mlp.down_proj.weight").size, 130u * 260u);
}

TEST(SourceFormats, CompressedTensorsFp8PerChannelAndPerTensor) {
  test::TempDir d;
  const nlohmann::json q = {
      {"quant_method", "compressed-tensors"},
      {"format", "float-quantized"},
      {"config_groups",
       {{"group_0",
         {{"targets", {"Linear"}},
          {"weights", {{"num_bits", 8}, {"type", "float"}, {"strategy", "channel"}}}}}}}};
  write_config(d.path(), q, "float16");
  at::Tensor a = at::full({3, 4}, 0x40, at::kByte);  // 2.0
  at::Tensor b = at::full({2, 2}, 0xC0, at::kByte);  // −2.0
  io::write_safetensors(
      d / "model.safetensors",
      {fp8("a.weight", a),
       {"a.weight_scale", at::tensor({1.0f, 0.5f, 0.25f}).reshape({3, 1}).to(at::kBFloat16)},
       {"a.input_scale", at::tensor({1.0f})},
       fp8("b.weight", b),
       {"b.weight_scale", at::tensor({0.125f})}});
  io::ModelWeights w(d.path());
  EXPECT_EQ(w.names(), (std::vector<std::string>{"a.weight", "b.weight"}));
  const at::Tensor ta = w.get("a.weight");
  ASSERT_EQ(ta.scalar_type(), at::kHalf);
  EXPECT_TRUE(
      ta.to(at::kFloat)
          .equal(at::tensor({2.0f, 1.0f, 0.5f}).reshape({3, 1}).expand({3, 4}).contiguous()));
  EXPECT_TRUE(w.get("b.weight").to(at::kFloat).equal(at::full({2, 2}, -0.25f)));
}

// GPT-OSS: gate_up_proj_blocks [E, R, G, 16] + _scales [E, R, G] → gate_up_proj [E, G·32, R].
TEST(SourceFormats, Mxfp4ExpertsInTransformersLayout) {
  test::TempDir d;
  write_config(d.path(), {{"quant_method", "mxfp4"}});
  const int64_t E = 2, R = 3, G = 2;
  at::Tensor blocks = at::zeros({E, R, G, 16}, at::kByte);
  at::Tensor scales = at::full({E, R, G}, 127, at::kByte);
  blocks[1][2][1][3] = 0x65;  // elements k = 32 + 6 (low, 3.0) and 32 + 7 (high, 4.0) of row 2
  scales[1][2][1] = 126;      // × 0.5
  blocks[0][0][0][0] = 0x0A;  // element k = 0 of row 0: −1.0
  io::write_safetensors(
      d / "model.safetensors",
      {{"model.layers.0.mlp.experts.gate_up_proj_blocks", blocks},
       {"model.layers.0.mlp.experts.gate_up_proj_scales", scales},
       {"model.layers.0.mlp.experts.gate_up_proj_bias", at::zeros({E, R}, at::kBFloat16)}});
  io::ModelWeights w(d.path());
  EXPECT_EQ(w.names(), (std::vector<std::string>{"model.layers.0.mlp.experts.gate_up_proj",
                                                 "model.layers.0.mlp.experts.gate_up_proj_bias"}));
  const std::string name = "model.layers.0.mlp.experts.gate_up_proj";
  EXPECT_EQ(w.info(name).shape, (std::vector<int64_t>{E, G * 32, R}));
  EXPECT_EQ(w.file_of(name), d / "model.safetensors");
  const at::Tensor t = w.get(name).to(at::kFloat);
  ASSERT_EQ(t.sizes(), (std::vector<int64_t>{E, G * 32, R}));
  EXPECT_EQ(t[1][38][2].item<float>(), 1.5f);
  EXPECT_EQ(t[1][39][2].item<float>(), 2.0f);
  EXPECT_EQ(t[0][0][0].item<float>(), -1.0f);
  EXPECT_EQ(t.abs().sum().item<float>(), 4.5f);
}

TEST(SourceFormats, ErrorsNameTheTensorAndKey) {
  const nlohmann::json block = {{"quant_method", "fp8"}, {"weight_block_size", {2, 2}}};
  {
    test::TempDir d;  // FP8 weight without its scale
    write_config(d.path(), block);
    io::write_safetensors(d / "model.safetensors", {fp8("x.weight", at::zeros({2, 2}))});
    const std::string m = message_of([&] { io::ModelWeights w(d.path()); });
    EXPECT_NE(m.find("x.weight_scale_inv"), std::string::npos) << m;
  }
  {
    test::TempDir d;  // scale shape that does not tile the weight: [3, 5] in 2×2 → [2, 3]
    write_config(d.path(), block);
    io::write_safetensors(d / "model.safetensors", {fp8("x.weight", at::zeros({3, 5})),
                                                    {"x.weight_scale_inv", at::ones({2, 2})}});
    const std::string m = message_of([&] { io::ModelWeights w(d.path()); });
    EXPECT_NE(m.find("[2, 3]"), std::string::npos) << m;
    EXPECT_NE(m.find("[2, 2]"), std::string::npos) << m;
  }
  {
    test::TempDir d;  // FP8 data that is not a linear weight
    write_config(d.path(), block);
    io::write_safetensors(d / "model.safetensors", {fp8("x.bias", at::zeros({2}))});
    const std::string m = message_of([&] { io::ModelWeights w(d.path()); });
    EXPECT_NE(m.find("x.bias"), std::string::npos) << m;
  }
  {
    test::TempDir d;  // a method nobody can read
    write_config(d.path(), {{"quant_method", "bitsandbytes"}});
    io::write_safetensors(d / "model.safetensors", {{"x.weight", at::zeros({2, 2})}});
    const std::string m = message_of([&] { io::ModelWeights w(d.path()); });
    EXPECT_NE(m.find("quant_method \"bitsandbytes\""), std::string::npos) << m;
    EXPECT_NE(m.find("fp8"), std::string::npos) << m;
  }
  {
    test::TempDir d;  // E5M2 FP8
    write_config(d.path(), {{"quant_method", "fp8"}, {"fmt", "e5m2"}});
    io::write_safetensors(d / "model.safetensors", {{"x.weight", at::zeros({2, 2})}});
    const std::string m = message_of([&] { io::ModelWeights w(d.path()); });
    EXPECT_NE(m.find("quantization_config.fmt \"e5m2\""), std::string::npos) << m;
  }
  {
    test::TempDir d;  // MXFP4 blocks without scales
    write_config(d.path(), {{"quant_method", "mxfp4"}});
    io::write_safetensors(d / "model.safetensors",
                          {{"e.down_proj_blocks", at::zeros({1, 2, 1, 16}, at::kByte)}});
    const std::string m = message_of([&] { io::ModelWeights w(d.path()); });
    EXPECT_NE(m.find("e.down_proj_scales"), std::string::npos) << m;
  }
}
