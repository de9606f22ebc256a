// FP8 source checkpoints end to end (issue 21 point 1): the test writes a block-scaled FP8 copy
// of a model (DeepSeek-V3's layout: F8_E4M3 weights + float32 weight_scale_inv per block, config
// quant_method "fp8") and, beside it, the dequantized copy as a plain checkpoint in the model
// dtype. The FP8 bytes, scales and dequantized values are computed here from the OCP E4M3
// definition, independently of the reader. Then: the reader's view of the FP8 copy equals the
// dequantized copy tensor by tensor, and quantizing either gives byte-identical outputs (every
// file but the log and the run summary), whose config carries our quantization_config only.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli/run_binary.h"
#include "cli/test_quantize_e2e_checks.h"
#include "fixture_model.h"
#include "io/model/model_weights.h"
#include "io/output/safetensors_writer.h"
#include "test_paths.h"

namespace {

namespace fs = std::filesystem;
using namespace sq;

// E4M3FN value of a byte, from the format definition (bias 7; exponent 0 = subnormal).
float e4m3(uint8_t b) {
  const int e = (b >> 3) & 15, m = b & 7;
  const float mag = e == 0 ? std::ldexp(m / 8.0f, -6) : std::ldexp(1.0f + m / 8.0f, e - 7);
  return (b & 0x80) ? -mag : mag;
}

// A byte whose value is close to x (|x| ≤ 448). Codes are ordered by magnitude, so the nearest
// normal mantissa, carried into the exponent, is a valid code; how ties round does not matter
// here — the dequantized copy is computed from the bytes actually written.
uint8_t encode_e4m3(float x) {
  const uint8_t sign = std::signbit(x) ? 0x80 : 0;
  float a = std::min(std::fabs(x), 448.0f);
  int code;
  if (a < std::ldexp(1.0f, -6)) {
    code = static_cast<int>(std::nearbyint(a / std::ldexp(1.0f, -9)));  // 0..8 (8 = 2^−6)
  } else {
    int e = static_cast<int>(std::floor(std::log2(a)));
    int m = static_cast<int>(std::nearbyint((a / std::ldexp(1.0f, e) - 1.0f) * 8));
    if (m == 8) m = 0, ++e;
    code = ((e + 7) << 3) | m;
  }
  return static_cast<uint8_t>(sign | std::min(code, 0x7E));
}

// A linear weight of a decoder block (the routers stay in full precision, as in DeepSeek-V3).
bool fp8_linear(const std::string& name, const at::Tensor& t) {
  if (t.dim() != 2 || name.find(".layers.") == std::string::npos) return false;
  if (name.size() < 7 || name.compare(name.size() - 7, 7, ".weight") != 0) return false;
  const std::string module = name.substr(0, name.size() - 7);
  const std::string last = module.substr(module.rfind('.') + 1);
  return last != "gate" && last != "router";
}

at::ScalarType model_dtype(const nlohmann::json& cfg) {
  const std::string d = cfg.value("torch_dtype", cfg.value("dtype", std::string("bfloat16")));
  return d == "float32" ? at::kFloat : d == "float16" ? at::kHalf : at::kBFloat16;
}

// Writes the FP8 copy of `src` to fp8_dir and its dequantized copy to deq_dir (both get src's
// other files as links). Returns the number of FP8 linears.
int write_fp8_pair(const std::string& src, const std::string& fp8_dir, const std::string& deq_dir,
                   int64_t br, int64_t bc) {
  fs::create_directories(fp8_dir);
  fs::create_directories(deq_dir);
  for (const auto& e : fs::directory_iterator(src)) {
    const std::string n = e.path().filename().string();
    if (n == "config.json" || n.find(".safetensors") != std::string::npos) continue;
    if (n == "reference.safetensors") continue;
    fs::create_symlink(fs::absolute(e.path()), fs::path(fp8_dir) / n);
    fs::create_symlink(fs::absolute(e.path()), fs::path(deq_dir) / n);
  }
  nlohmann::json cfg = test::e2e::load_json(src + "/config.json");
  const at::ScalarType dtype = model_dtype(cfg);
  std::ofstream(deq_dir + "/config.json") << cfg.dump(2);
  cfg["quantization_config"] = {{"quant_method", "fp8"},
                                {"fmt", "e4m3"},
                                {"activation_scheme", "dynamic"},
                                {"weight_block_size", {br, bc}}};
  std::ofstream(fp8_dir + "/config.json") << cfg.dump(2);

  io::ModelWeights w(src);
  std::vector<io::TensorToWrite> fp8, deq;
  int n_fp8 = 0;
  for (const auto& name : w.names()) {
    const at::Tensor t = w.get(name);
    if (!fp8_linear(name, t)) {
      fp8.push_back({name, t});
      deq.push_back({name, t});
      continue;
    }
    ++n_fp8;
    const at::Tensor f = t.to(at::kFloat).contiguous();
    const int64_t N = f.size(0), K = f.size(1), R = (N + br - 1) / br, C = (K + bc - 1) / bc;
    at::Tensor sinv = at::empty({R, C}, at::kFloat);
    at::Tensor bytes = at::empty({N, K}, at::kByte);
    at::Tensor back = at::empty({N, K}, at::kFloat);
    auto fa = f.accessor<float, 2>();
    auto sa = sinv.accessor<float, 2>();
    auto ba = bytes.accessor<uint8_t, 2>();
    auto da = back.accessor<float, 2>();
    for (int64_t r = 0; r < R; ++r)
      for (int64_t c = 0; c < C; ++c) {
        float amax = 0;
        for (int64_t i = r * br; i < std::min(N, (r + 1) * br); ++i)
          for (int64_t j = c * bc; j < std::min(K, (c + 1) * bc); ++j)
            amax = std::max(amax, std::fabs(fa[i][j]));
        sa[r][c] = amax > 0 ? amax / 448.0f : 1.0f;
      }
    for (int64_t i = 0; i < N; ++i)
      for (int64_t j = 0; j < K; ++j) {
        const float s = sa[i / br][j / bc];
        ba[i][j] = encode_e4m3(fa[i][j] / s);
        da[i][j] = e4m3(ba[i][j]) * s;  // one float32 product, as DeepSeek's weight_dequant
      }
    fp8.push_back({name, bytes, io::DType::F8_E4M3});
    fp8.push_back({name.substr(0, name.size() - 6) + "weight_scale_inv", sinv});
    deq.push_back({name, back.to(dtype)});
  }
  io::write_safetensors(fp8_dir + "/model.safetensors", fp8);
  io::write_safetensors(deq_dir + "/model.safetensors", deq);
  return n_fp8;
}

// Every output file but the log and the summary (which name the model path and hold timings).
std::map<std::string, std::string> output_files(const std::string& dir) {
  auto all = test::e2e::dir_contents(dir);
  all.erase("quantize.log");
  all.erase("shardquant_summary.json");
  return all;
}

class Fp8Source : public ::testing::Test {
 protected:
  // Quantizes both copies with `args` and compares.
  void quantize_both(const std::vector<std::string>& args) {
    for (const char* which : {"fp8", "deq"}) {
      std::vector<std::string> a = {"--model_path", tmp_ / which,
                                    "--output_dir", tmp_ / (std::string("out-") + which),
                                    "--calib-file", calib_};
      a.insert(a.end(), args.begin(), args.end());
      const test::RunResult r = test::run_shardquant(a);
      ASSERT_EQ(r.code, 0) << which << ":\n" << r.all();
    }
    const auto a = output_files(tmp_ / "out-fp8"), b = output_files(tmp_ / "out-deq");
    ASSERT_FALSE(a.empty());
    EXPECT_EQ(a.size(), b.size());
    for (const auto& [name, bytes] : a) {
      ASSERT_TRUE(b.count(name)) << name;
      EXPECT_TRUE(bytes == b.at(name)) << name << " differs between the FP8 and BF16 sources";
    }
    const auto cfg = test::e2e::load_json(tmp_ / "out-fp8/config.json");
    EXPECT_NE(cfg.at("quantization_config").at("quant_method"), "fp8");
    EXPECT_FALSE(cfg.at("quantization_config").contains("weight_block_size"));
    fs::remove_all(tmp_ / "out-fp8");
    fs::remove_all(tmp_ / "out-deq");
  }
  void check_reader() const {
    io::ModelWeights f(tmp_ / "fp8"), d(tmp_ / "deq");
    ASSERT_EQ(f.names(), d.names());
    for (const auto& n : f.names()) {
      EXPECT_EQ(f.info(n).dtype, d.info(n).dtype) << n;
      EXPECT_TRUE(f.get(n).equal(d.get(n))) << n;
    }
  }
  test::TempDir tmp_;
  std::string calib_;
};

// The MoE fixture (float32) in blocks of [16, 24]: every weight has edge blocks (64 = 2·24 + 16
// columns, 32 = 24 + 8), routed experts included.
TEST_F(Fp8Source, MixtralFixtureAwqAndGptqMatchTheDequantizedModel) {
  if (!test::have_shared("fixtures/arch/mixtral/config.json")) GTEST_SKIP() << "no fixture";
  if (!test::have_shared("data/corpus/brown-train.txt")) GTEST_SKIP() << "no Brown corpus";
  const std::string model = tmp_ / "fixture";
  test::make_fixture_model(test::shared("fixtures/arch/mixtral"), model);
  calib_ = tmp_ / "calib.txt";
  test::write_head(test::shared("data/corpus/brown-train.txt"), calib_, 200);
  EXPECT_GT(write_fp8_pair(model, tmp_ / "fp8", tmp_ / "deq", 16, 24), 20);
  check_reader();
  const std::vector<std::string> common = {
      "--calib-size", "4", "--seq_len", "32", "--q-group-size", "16", "--device", "cpu", "--quiet"};
  std::vector<std::string> awq = common, gptq = common;
  awq.push_back("--awq");
  gptq.insert(gptq.end(), {"--gptq", "--bits", "4"});
  quantize_both(awq);
  quantize_both(gptq);
}

// The house model (bf16) in DeepSeek-V3's [128, 128] blocks: the dequantized values are rounded
// to bf16 once, identically in the reader and in the copy.
TEST_F(Fp8Source, HouseModelGptqMatchesTheDequantizedModel) {
  if (!test::have_shared("models/house-llama-13m/config.json")) GTEST_SKIP() << "no house model";
  if (!test::have_shared("data/corpus/brown-train.txt")) GTEST_SKIP() << "no Brown corpus";
  calib_ = test::shared("data/corpus/brown-train.txt");
  EXPECT_GT(
      write_fp8_pair(test::shared("models/house-llama-13m"), tmp_ / "fp8", tmp_ / "deq", 128, 128),
      30);
  check_reader();
  quantize_both({"--gptq", "--bits", "4", "--calib-size", "4", "--seq_len", "64", "--device", "cpu",
                 "--quiet"});
}

}  // namespace
