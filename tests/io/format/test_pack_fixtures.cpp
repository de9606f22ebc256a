// Against the real thing: ../shared/fixtures/formats holds linears packed by AutoAWQ and
// AutoGPTQ themselves, with their own fp16 dequantization.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "io/format/pack.h"
#include "io/safetensors/safetensors.h"
#include "io/safetensors/tensor.h"
#include "test_paths.h"

using namespace sq;

namespace {

struct Fixture {
  std::string name;
  nlohmann::json meta;
  std::shared_ptr<io::SafetensorsFile> file;
  at::Tensor get(const std::string& t) const { return io::view(file, file->at(t)).clone(); }
};

std::vector<Fixture> load_fixtures() {
  std::vector<Fixture> out;
  if (!test::have_shared("fixtures/formats/index.json")) return out;
  std::ifstream in(test::shared("fixtures/formats/index.json"));
  auto index = nlohmann::json::parse(in);
  for (auto it = index.begin(); it != index.end(); ++it)
    out.push_back(
        {it.key(), it.value(),
         io::SafetensorsFile::open(test::shared("fixtures/formats/" + it.key() + ".safetensors"))});
  return out;
}

io::Format format_of(const nlohmann::json& meta) {
  const std::string f = meta["checkpoint_format"];
  if (f == "awq-gemm") return io::Format::kAwqGemm;
  if (f == "gptq") return io::Format::kGptqV1;
  if (f == "gptq_v2") return io::Format::kGptqV2;
  ADD_FAILURE() << "unknown checkpoint_format " << f;
  return io::Format::kGptqV1;
}

io::PackedLinear packed_of(const Fixture& fx) {
  io::PackedLinear p;
  p.format = format_of(fx.meta);
  p.scheme.bits = fx.meta["bits"];
  p.scheme.group_size = fx.meta["group_size"];
  for (const char* t : {"qweight", "qzeros", "scales", "g_idx"})
    if (fx.file->find(t)) p.tensors[t] = fx.get(t);
  return p;
}

}  // namespace

TEST(PackFixtures, UnpackDequantizesLikeTheReferenceTool) {
  auto fixtures = load_fixtures();
  if (fixtures.empty()) GTEST_SKIP() << "fixtures/formats missing";
  for (const auto& fx : fixtures) {
    SCOPED_TRACE(fx.name);
    auto q = io::unpack(packed_of(fx));
    EXPECT_EQ(q.out_features(), fx.meta["out_features"].get<int64_t>());
    EXPECT_EQ(q.in_features(), fx.meta["in_features"].get<int64_t>());
    const at::Tensor ours = io::dequantize(q);
    const at::Tensor theirs = fx.get("dequantized");
    ASSERT_EQ(ours.sizes(), theirs.sizes());
    // The tool computed in fp16: one rounding of each product, at most half an fp16 ulp
    // (2^-11 relative) plus the fp16 subnormal spacing.
    const double max_excess =
        ((ours - theirs).abs() - ours.abs() * std::ldexp(1.0, -11) - 6e-8).max().item<double>();
    EXPECT_LE(max_excess, 0.0);
    // And the dequantized weight is the fake-quantized weight handed to the packer.
    const at::Tensor src = fx.get("source_weight").to(at::kFloat);
    const double tol = fx.meta["max_abs_diff_dequantized_vs_source"].get<double>();
    EXPECT_LE((ours.to(at::kHalf).to(at::kFloat) - src).abs().max().item<double>(),
              std::max(tol, 1e-3 * src.abs().max().item<double>()));
  }
}

TEST(PackFixtures, RepackReproducesTheFilesByteForByte) {
  auto fixtures = load_fixtures();
  if (fixtures.empty()) GTEST_SKIP() << "fixtures/formats missing";
  for (const auto& fx : fixtures) {
    SCOPED_TRACE(fx.name);
    const io::PackedLinear orig = packed_of(fx);
    const io::PackedLinear again = io::pack(io::unpack(orig), orig.format);
    for (const auto& [suffix, t] : orig.tensors) {
      ASSERT_TRUE(again.has(suffix)) << suffix;
      EXPECT_EQ(again.get(suffix).scalar_type(), t.scalar_type()) << suffix;
      EXPECT_TRUE(at::equal(again.get(suffix), t)) << suffix;
    }
    EXPECT_EQ(again.tensors.size(), orig.tensors.size());
  }
}

TEST(PackFixtures, SymmetricV1QzerosAreTheKnownConstants) {
  auto fixtures = load_fixtures();
  if (fixtures.empty()) GTEST_SKIP() << "fixtures/formats missing";
  const std::map<int, uint32_t> word = {{2, 0x55555555u}, {4, 0x77777777u}, {8, 0x7F7F7F7Fu}};
  int checked = 0;
  for (const auto& fx : fixtures) {
    if (!fx.meta["sym"].get<bool>() || fx.meta["quant_method"] != "gptq") continue;
    const int bits = fx.meta["bits"];
    if (!word.count(bits)) continue;
    const at::Tensor qz = fx.get("qzeros");
    EXPECT_TRUE(at::equal(qz, at::full_like(qz, static_cast<int32_t>(word.at(bits))))) << fx.name;
    ++checked;
  }
  EXPECT_GE(checked, 3);
}
