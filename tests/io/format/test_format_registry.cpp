// The format registry (io/format/format_registry.h): every row packs a small known linear into the
// words its layout prescribes and reads back, through its config and the loader view
// (io::ModelWeights), as the weights computed by hand below — no expected value comes from the
// code under test. Also the registry's keys: --format spellings, scheme limits, widening.
#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>

#include "common/errors.h"
#include "io/format/format_registry.h"
#include "io/model/model_weights.h"
#include "io/output/safetensors_writer.h"
#include "test_paths.h"

using namespace sq;

namespace {

// N = 8 outputs, K = 8 inputs, 4 bits, group size 4 (two groups, g_idx = k / 4).
// codes[n][k] = (3n + 5k + nk) mod 16, zeros[g][n] = (5n + 3g) mod 15 + 1 (1..15: every row,
// GPTQ v1 included, stores them), scales[g][n] = (g + 1) / 2^(n mod 4) (exact in fp16).
constexpr int32_t kCodes[8][8] = {{0, 5, 10, 15, 4, 9, 14, 3}, {3, 9, 15, 5, 11, 1, 7, 13},
                                  {6, 13, 4, 11, 2, 9, 0, 7},  {9, 1, 9, 1, 9, 1, 9, 1},
                                  {12, 5, 14, 7, 0, 9, 2, 11}, {15, 9, 3, 13, 7, 1, 11, 5},
                                  {2, 13, 8, 3, 14, 9, 4, 15}, {5, 1, 13, 9, 5, 1, 13, 9}};
constexpr int32_t kZeros[2][8] = {{1, 6, 11, 1, 6, 11, 1, 6}, {4, 9, 14, 4, 9, 14, 4, 9}};
constexpr float kScales[2][8] = {{1, 0.5, 0.25, 0.125, 1, 0.5, 0.25, 0.125},
                                 {2, 1, 0.5, 0.25, 2, 1, 0.5, 0.25}};
// W[n][k] = (codes[n][k] − zeros[k/4][n]) · scales[k/4][n], worked out by hand.
constexpr float kWeight[8][8] = {{-1, 4, 9, 14, 0, 10, 20, -2},
                                 {-1.5, 1.5, 4.5, -0.5, 2, -8, -2, 4},
                                 {-1.25, 0.5, -1.75, 0, -6, -2.5, -7, -3.5},
                                 {1, 0, 1, 0, 1.25, -0.75, 1.25, -0.75},
                                 {6, -1, 8, 1, -18, 0, -14, 4},
                                 {2, -1, -4, 1, -7, -13, -3, -9},
                                 {0.25, 3, 1.75, 0.5, 5, 2.5, 0, 5.5},
                                 {-0.125, -0.625, 0.875, 0.375, -1, -2, 1, 0}};

io::QuantLinear known_linear() {
  io::QuantLinear q;
  q.codes = at::empty({8, 8}, at::kInt);
  q.zeros = at::empty({2, 8}, at::kInt);
  q.scales = at::empty({2, 8}, at::kFloat);
  q.g_idx = at::empty({8}, at::kInt);
  for (int n = 0; n < 8; ++n)
    for (int k = 0; k < 8; ++k) q.codes[n][k] = kCodes[n][k];
  for (int g = 0; g < 2; ++g)
    for (int n = 0; n < 8; ++n) {
      q.zeros[g][n] = kZeros[g][n];
      q.scales[g][n] = kScales[g][n];
    }
  for (int k = 0; k < 8; ++k) q.g_idx[k] = k / 4;
  q.scheme.bits = 4;
  q.scheme.group_size = 4;
  return q;
}

at::Tensor known_weight() {
  at::Tensor w = at::empty({8, 8}, at::kFloat);
  for (int n = 0; n < 8; ++n)
    for (int k = 0; k < 8; ++k) w[n][k] = kWeight[n][k];
  return w;
}

uint32_t word(const at::Tensor& t, int64_t r, int64_t c) {
  return static_cast<uint32_t>(t[r][c].item<int32_t>());
}

// One word of each packed tensor, derived by hand from REFERENCE.md §3.1–3.3: nibble i of a word
// (bits 4i..4i+3) holds value i of its run. GPTQ qweight column n = codes[n][0..7]; AWQ qweight
// row k = codes[order[i]][k] with order {0,2,4,6,1,3,5,7}; compressed-tensors weight_packed row n
// = codes[n][0..7]; GPTQ v1 qzeros store zero − 1.
void expect_known_words(io::Format f, const io::PackedLinear& p) {
  switch (f) {
    case io::Format::kAwqGemm:
      EXPECT_EQ(word(p.get("qweight"), 0, 0), 0x5f932c60u);
      EXPECT_EQ(word(p.get("qweight"), 3, 0), 0x9d1537bfu);
      EXPECT_EQ(word(p.get("qzeros"), 0, 0), 0x6b1616b1u);
      break;
    case io::Format::kGptqV1:
      EXPECT_EQ(word(p.get("qweight"), 0, 0), 0x3e94fa50u);
      EXPECT_EQ(word(p.get("qweight"), 0, 5), 0x5b17d39fu);
      EXPECT_EQ(word(p.get("qzeros"), 0, 0), 0x50a50a50u);
      EXPECT_EQ(word(p.get("qzeros"), 1, 0), 0x83d83d83u);
      break;
    case io::Format::kGptqV2:
      EXPECT_EQ(word(p.get("qweight"), 0, 5), 0x5b17d39fu);
      EXPECT_EQ(word(p.get("qzeros"), 0, 0), 0x61b61b61u);
      break;
    case io::Format::kCompressedPack:
      EXPECT_EQ(word(p.get("weight_packed"), 0, 0), 0x3e94fa50u);
      EXPECT_EQ(word(p.get("weight_packed"), 5, 0), 0x5b17d39fu);
      EXPECT_EQ(word(p.get("weight_zero_point"), 0, 0), 0x61b61b61u);
      EXPECT_EQ(word(p.get("weight_zero_point"), 0, 1), 0x94e94e94u);
      break;
  }
}

// Packs `q` in row `f`, writes it with its config into a directory and reads "<L>.weight" back
// through the loader view.
at::Tensor through_loader(io::Format f, const io::QuantLinear& q, io::PackedLinear* packed) {
  const io::FormatRow& row = io::format_row(f);
  *packed = io::pack(q, f);
  test::TempDir dir;
  const std::string L = "model.layers.0.mlp.up_proj";
  std::vector<io::TensorToWrite> tensors;
  for (auto& [suffix, t] : packed->tensors) tensors.push_back({L + "." + suffix, t, {}});
  io::write_safetensors(dir / "model.safetensors", tensors);
  io::QuantSettings s;
  s.format = f;
  s.scheme = q.scheme;
  std::ofstream(dir / "config.json")
      << io::quantized_model_config({{"model_type", "llama"}}, s).dump();
  io::ModelWeights w(dir.path());
  EXPECT_NE(w.quantization(), nullptr);
  if (w.quantization()) {
    EXPECT_EQ(w.quantization()->format, f) << row.name;
    EXPECT_EQ(w.quantization()->scheme.bits, 4);
    EXPECT_EQ(w.quantization()->scheme.group_size, 4);
  }
  EXPECT_EQ(w.names(), std::vector<std::string>{L + ".weight"}) << row.name;
  return w.get(L + ".weight");
}

}  // namespace

TEST(FormatRegistry, EveryRowRoundTripsAKnownLinearThroughTheLoader) {
  ASSERT_EQ(io::format_rows().size(), 4u);
  for (const auto& row : io::format_rows()) {
    SCOPED_TRACE(row.name);
    io::PackedLinear p;
    const at::Tensor got = through_loader(row.format, known_linear(), &p);
    EXPECT_TRUE(at::equal(got, known_weight())) << got;
    expect_known_words(row.format, p);
    // Every tensor written is one of the row's suffixes, the marker among them.
    EXPECT_TRUE(p.has(row.marker));
    for (const auto& [suffix, t] : p.tensors)
      EXPECT_NE(std::find(row.suffixes.begin(), row.suffixes.end(), suffix), row.suffixes.end())
          << suffix;
    EXPECT_EQ(io::format_row(row.format).format, row.format);
  }
}

TEST(FormatRegistry, GptqV1WidensToV2ForAZeroOfZero) {
  const io::FormatRow& v1 = io::format_row(io::Format::kGptqV1);
  const io::FormatRow& v2 = io::format_row(io::Format::kGptqV2);
  io::QuantLinear q = known_linear();
  EXPECT_TRUE(v1.can_store_zeros(q.zeros, 4));
  q.zeros[1][6] = 0;  // row 6, group 1: W = (codes − 0) · 0.5
  EXPECT_FALSE(v1.can_store_zeros(q.zeros, 4));
  ASSERT_TRUE(v1.widened.has_value());
  EXPECT_EQ(*v1.widened, io::Format::kGptqV2);
  EXPECT_FALSE(v2.widened.has_value());
  EXPECT_TRUE(v2.can_store_zeros(q.zeros, 4));
  EXPECT_THROW(io::pack(q, io::Format::kGptqV1), InputError);
  io::PackedLinear p;
  const at::Tensor got = through_loader(io::Format::kGptqV2, q, &p);
  at::Tensor want = known_weight();
  const float row6[4] = {7, 4.5, 2, 7.5};  // codes 14, 9, 4, 15 times 0.5
  for (int k = 4; k < 8; ++k) want[6][k] = row6[k - 4];
  EXPECT_TRUE(at::equal(got, want)) << got;
  EXPECT_EQ(word(p.get("qzeros"), 1, 0), 0x90e94e94u);
  // The deferred-zeros packer is the row's own: the same words as pack() wrote.
  EXPECT_TRUE(at::equal(v2.pack_zeros(q.zeros, 4), p.get("qzeros")));
  EXPECT_EQ(io::format_row(io::Format::kAwqGemm).pack_zeros, nullptr);
  EXPECT_EQ(io::format_row(io::Format::kCompressedPack).pack_zeros, nullptr);
}

TEST(FormatRegistry, CliSpellingsSelectTheNarrowRows) {
  EXPECT_EQ(io::format_from_cli("awq"), io::Format::kAwqGemm);
  EXPECT_EQ(io::format_from_cli("gptq"), io::Format::kGptqV1);
  EXPECT_EQ(io::format_from_cli("compressed-tensors"), io::Format::kCompressedPack);
  EXPECT_EQ(io::cli_formats().size(), 3u);  // gptq_v2 is the writer's choice, not a flag value
  EXPECT_STREQ(io::cli_name(io::Format::kGptqV2), "gptq");
  EXPECT_STREQ(io::format_name(io::Format::kGptqV2), "gptq_v2");
  try {
    io::format_from_cli("gptq_v2");
    ADD_FAILURE() << "gptq_v2 accepted as --format";
  } catch (const InputError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("\"gptq_v2\""), std::string::npos) << m;
    EXPECT_NE(m.find("awq, gptq, compressed-tensors"), std::string::npos) << m;
  }
}

TEST(FormatRegistry, SchemeLimitsNameTheFormatAndValue) {
  QuantScheme s;
  s.bits = 4;
  for (const auto& row : io::format_rows()) EXPECT_EQ(row.scheme_error(s), "") << row.name;
  s.bits = 3;
  EXPECT_NE(io::scheme_error(io::Format::kAwqGemm, s).find("4-bit"), std::string::npos);
  EXPECT_EQ(io::scheme_error(io::Format::kGptqV1, s), "");
  EXPECT_NE(io::scheme_error(io::Format::kCompressedPack, s).find("3-bit"), std::string::npos);
  s.bits = 5;
  EXPECT_NE(
      io::scheme_error(io::Format::kGptqV2, s).find("gptq_v2: bits must be 2, 3, 4 or 8, got 5"),
      std::string::npos);
  EXPECT_EQ(io::scheme_error(io::Format::kCompressedPack, s), "");
  s.bits = 4;
  s.act_order = true;
  EXPECT_NE(io::scheme_error(io::Format::kAwqGemm, s).find("act-order"), std::string::npos);
  EXPECT_EQ(io::scheme_error(io::Format::kGptqV1, s), "");
  EXPECT_EQ(io::scheme_error(io::Format::kCompressedPack, s), "");
  // pack() refuses what the row refuses, as an InputError with the row's text.
  io::QuantLinear q = known_linear();
  q.scheme.act_order = true;
  EXPECT_THROW(io::pack(q, io::Format::kAwqGemm), InputError);
}

TEST(FormatRegistry, OnlyCompressedTensorsRefusesConv1d) {
  for (const auto& row : io::format_rows())
    EXPECT_EQ(row.conv1d_error != nullptr, row.format == io::Format::kCompressedPack) << row.name;
}
