// Synthetic models: the named shapes (REFERENCE.md §7, Llama-3-8B), the tensor list, the
// generator's distribution and determinism, and a written model that the reader, the config
// parser, the tokenizer and `shardquant --dry-run` accept.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/run_binary.h"
#include "common/errors.h"
#include "io/model/model_config.h"
#include "io/model/model_weights.h"
#include "io/model/source_formats.h"
#include "io/tokenizer/tokenizer.h"
#include "rank/synth/synth.h"
#include "test_paths.h"

namespace sq::rank {
namespace {

std::string tokenizer_dir() {
  return test::shared("models/house-llama-13m");
}

TEST(Synth, NamedShapes) {
  auto c = io::parse_model_config(synth_config("llama-1b"), "llama-1b");
  EXPECT_EQ(c.hidden_size, 2048);
  EXPECT_EQ(c.num_hidden_layers, 16);
  EXPECT_EQ(c.intermediate_size, 8192);
  EXPECT_EQ(c.num_attention_heads, 32);
  EXPECT_EQ(c.num_key_value_heads, 8);
  EXPECT_EQ(c.vocab_size, 32000);
  auto e = io::parse_model_config(synth_config("llama-8b"), "llama-8b");
  EXPECT_EQ(e.hidden_size, 4096);
  EXPECT_EQ(e.num_hidden_layers, 32);
  EXPECT_EQ(e.intermediate_size, 14336);
  EXPECT_EQ(e.num_key_value_heads, 8);
  EXPECT_EQ(e.vocab_size, 128256);
  EXPECT_THROW(synth_config("llama-2b"), InputError);
}

TEST(Synth, TensorListCountsParameters) {
  int64_t params = 0;
  for (const auto& t : synth_tensors(synth_config("llama-1b"))) {
    int64_t n = 1;
    for (auto d : t.shape) n *= d;
    params += n;
  }
  // Embedding + lm_head, and per layer q,o (2048²), k,v (512·2048), 3 MLP (2048·8192), 2 norms.
  const int64_t layer = 2 * 2048 * 2048 + 2 * 512 * 2048 + 3 * 2048 * 8192 + 2 * 2048;
  EXPECT_EQ(params, 2 * 32000 * 2048 + 16 * layer + 2048);
}

TEST(Synth, GeneratorIsNormalAndThreadCountFree) {
  auto a = at::empty({1 << 20}, at::kFloat), b = at::empty({1 << 20}, at::kFloat);
  fill_normal(a, 7, 1, 1.0f, 1);
  fill_normal(b, 7, 1, 1.0f, 3);
  EXPECT_TRUE(at::equal(a, b));
  auto x = a.to(at::kDouble);
  EXPECT_NEAR(x.mean().item<double>(), 0.0, 0.005);
  EXPECT_NEAR(x.std().item<double>(), 1.0, 0.005);
  EXPECT_NEAR(x.pow(4).mean().item<double>(), 3.0, 0.05);  // kurtosis of a normal
  EXPECT_NEAR((x.abs() < 1.0).to(at::kDouble).mean().item<double>(), 0.6827, 0.003);
  fill_normal(b, 8, 1, 1.0f, 2);
  EXPECT_FALSE(at::equal(a, b));
  auto h = at::empty({1001}, at::kBFloat16);  // odd length, half type
  fill_normal(h, 7, 1, 0.02f, 2);
  EXPECT_TRUE(at::allclose(h.to(at::kFloat), a.slice(0, 0, 1001) * 0.02, 0.01, 1e-4));
}

nlohmann::json tiny_config() {
  auto j = synth_config("llama-1b");
  j["hidden_size"] = 128;
  j["head_dim"] = 32;
  j["num_attention_heads"] = 4;
  j["num_key_value_heads"] = 2;
  j["intermediate_size"] = 256;
  j["num_hidden_layers"] = 2;
  j["vocab_size"] = 8192;
  return j;
}

std::string slurp_bytes(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(Synth, WritesALoadableDeterministicModel) {
  if (!test::have_shared("models/house-llama-13m/tokenizer.json")) GTEST_SKIP() << "no tokenizer";
  test::TempDir tmp;
  SynthOptions o;
  o.tokenizer_dir = tokenizer_dir();
  o.seed = 3;
  o.max_shard_bytes = 400000;  // several shards
  o.out_dir = tmp / "a";
  auto rep = write_synth_model(tiny_config(), o);
  EXPECT_GT(rep.files.size(), 1u);
  io::ModelWeights w(o.out_dir);
  const auto cfg = io::load_model_config(o.out_dir);
  EXPECT_EQ(cfg.hidden_size, 128);
  EXPECT_EQ(cfg.dtype, "bfloat16");
  auto q = w.get("model.layers.1.self_attn.q_proj.weight");
  EXPECT_EQ(q.scalar_type(), at::kBFloat16);
  EXPECT_EQ(q.sizes(), (at::IntArrayRef{128, 128}));
  EXPECT_NEAR(q.to(at::kDouble).std().item<double>(), 0.02, 0.001);
  EXPECT_TRUE((w.get("model.norm.weight").to(at::kFloat) == 1).all().item<bool>());
  EXPECT_TRUE(w.has("lm_head.weight"));
  EXPECT_EQ(static_cast<int64_t>(w.names().size()), rep.tensors);
  EXPECT_NO_THROW(io::Tokenizer::load(o.out_dir));
  // Same seed, other thread count: the same bytes. Another seed: other bytes.
  o.out_dir = tmp / "b";
  o.threads = 1;
  write_synth_model(tiny_config(), o);
  for (const auto& f : rep.files)
    EXPECT_EQ(slurp_bytes(tmp / ("a/" + f)), slurp_bytes(tmp / ("b/" + f))) << f;
  o.out_dir = tmp / "c";
  o.seed = 4;
  write_synth_model(tiny_config(), o);
  EXPECT_NE(slurp_bytes(tmp / ("a/" + rep.files[0])), slurp_bytes(tmp / ("c/" + rep.files[0])));
  // A non-empty output directory and a missing tokenizer are refused.
  EXPECT_THROW(write_synth_model(tiny_config(), o), InputError);
  o.out_dir = tmp / "d";
  o.tokenizer_dir = tmp / "nowhere";
  EXPECT_THROW(write_synth_model(tiny_config(), o), InputError);
}

TEST(Synth, CliWritesAModelTheQuantizerAccepts) {
  if (!std::filesystem::exists(test::binary())) GTEST_SKIP() << "shardquant not built";
  if (!test::have_shared("models/house-llama-13m/tokenizer.json")) GTEST_SKIP() << "no tokenizer";
  test::TempDir tmp;
  { std::ofstream(tmp / "config.json") << tiny_config().dump(); }
  auto r = test::run_shardquant({"synth", "--shape", tmp / "config.json", "--out", tmp / "m",
                                 "--tokenizer", tokenizer_dir(), "--seed", "5"});
  ASSERT_EQ(r.code, 0) << r.all();
  EXPECT_TRUE(std::filesystem::exists(tmp / "m/tokenizer.json"));
  auto d = test::run_shardquant({"--model_path", tmp / "m", "--dry-run"});
  EXPECT_EQ(d.code, 0) << d.all();
  auto bad = test::run_shardquant({"synth", "--shape", "llama-3b", "--out", tmp / "x"});
  EXPECT_EQ(bad.code, 2) << bad.all();
  EXPECT_NE(bad.all().find("llama-1b"), std::string::npos) << bad.all();
}

// encode_e4m3 against the reader's decoding table (io/model/source_formats.h, built from the format
// definition): every finite code comes back, values between two codes go to the nearer (ties to
// the even code), and magnitudes beyond 448 saturate.
TEST(SynthFp8, EncoderInvertsTheReadersTable) {
  const auto& v = io::e4m3_values();
  for (int b = 0; b < 256; ++b) {
    if (std::isnan(v[b])) continue;
    const uint8_t got = encode_e4m3(v[b]);
    if (b == 0x80) {
      EXPECT_EQ(got, 0x80);  // −0 keeps its sign
      continue;
    }
    EXPECT_EQ(got, b) << "code " << b << " value " << v[b];
  }
  for (int b = 0; b < 0x7E; ++b) {  // positive neighbours b, b+1
    const float lo = v[b], hi = v[b + 1], mid = 0.5f * (lo + hi);
    EXPECT_EQ(encode_e4m3(std::nextafter(mid, lo)), b) << b;
    EXPECT_EQ(encode_e4m3(std::nextafter(mid, hi)), b + 1) << b;
    EXPECT_EQ(encode_e4m3(mid), (b % 2 == 0) ? b : b + 1) << "tie at code " << b;
  }
  EXPECT_EQ(encode_e4m3(448.0f), 0x7E);
  EXPECT_EQ(encode_e4m3(1e30f), 0x7E);
  EXPECT_EQ(encode_e4m3(-1e30f), 0xFE);
  EXPECT_EQ(encode_e4m3(std::nanf("")), 0x7F);
}

// Block scales over edge blocks (50 = 3·16 + 2 rows, 40 = 24 + 16 columns); the dequantized
// matrix is within half an E4M3 step of the input, and the thread count changes no byte.
TEST(SynthFp8, BlockScalesAndThreads) {
  at::Tensor w = at::empty({50, 40}, at::kFloat);
  fill_normal(w, 1, 2, 0.02f, 1);
  w[7][3] = 0.5f;              // one large value sets its block's scale
  w.narrow(0, 48, 2).zero_();  // an all-zero edge block row gets scale 1
  const Fp8Blocks a = quantize_fp8_blocks(w, 16, 24, 1), b = quantize_fp8_blocks(w, 16, 24, 3);
  EXPECT_TRUE(at::equal(a.bytes, b.bytes));
  EXPECT_TRUE(at::equal(a.scale_inv, b.scale_inv));
  ASSERT_EQ(a.scale_inv.sizes(), (at::IntArrayRef{4, 2}));
  EXPECT_FLOAT_EQ(a.scale_inv[0][0].item<float>(), 0.5f / 448.0f);
  EXPECT_FLOAT_EQ(a.scale_inv[3][1].item<float>(), 1.0f);
  const at::Tensor deq =
      io::dequant_fp8(a.bytes, a.scale_inv, 16, 24);  // the reader's dequantization
  const at::Tensor s =
      a.scale_inv.repeat_interleave(16, 0).narrow(0, 0, 50).repeat_interleave(24, 1).narrow(1, 0,
                                                                                            40);
  // |w/s| ≤ 448; a normal E4M3 value has 3 mantissa bits: error ≤ 2^-4·|w/s| + subnormal 2^-10.
  const at::Tensor err = (deq - w).abs() / s, bound = (w / s).abs() * 0.0625 + std::ldexp(1.0, -10);
  EXPECT_TRUE((err <= bound).all().item<bool>()) << (err - bound).max().item<float>();
}

// Published totals (model cards): Mixtral-8x7B 46.7 B, Qwen3-30B-A3B 30.5 B, DeepSeek-V3 671 B
// (main model, without the 14 B multi-token-prediction module), Llama-3.1-405B 405 B.
TEST(SynthPresets, ParameterCountsMatchThePublishedTotals) {
  const std::map<std::string, double> billions = {{"mixtral-8x7b", 46.7}, {"qwen3-30b-a3b", 30.5},
                                                  {"deepseek-v3", 671.0}, {"llama-405b", 405.0},
                                                  {"llama-70b", 70.6},    {"llama-8b", 8.03}};
  for (const auto& [name, want] : billions) {
    double params = 0;
    for (const auto& t : synth_tensors(synth_config(name))) {
      double n = 1;
      for (auto d : t.shape) n *= static_cast<double>(d);
      params += n;
    }
    EXPECT_NEAR(params / 1e9, want, want * 0.006) << name;
  }
  // deepseek-v3: FP8 linears, bf16 routers, dense blocks first.
  const auto ds = synth_tensors(synth_config("deepseek-v3"));
  std::map<std::string, const SynthTensor*> by;
  for (const auto& t : ds) by[t.name] = &t;
  ASSERT_TRUE(by.count("model.layers.0.mlp.gate_proj.weight"));
  EXPECT_EQ(by["model.layers.0.mlp.gate_proj.weight"]->shape, (std::vector<int64_t>{18432, 7168}));
  EXPECT_FALSE(by.count("model.layers.0.mlp.gate.weight"));
  ASSERT_TRUE(by.count("model.layers.3.mlp.experts.255.down_proj.weight"));
  EXPECT_TRUE(by["model.layers.3.mlp.experts.255.down_proj.weight"]->fp8);
  EXPECT_FALSE(by["model.layers.3.mlp.gate.weight"]->fp8);
  EXPECT_TRUE(by["model.layers.3.mlp.gate.e_score_correction_bias"]->fp32);
  EXPECT_EQ(by["model.layers.3.self_attn.kv_a_proj_with_mqa.weight"]->shape,
            (std::vector<int64_t>{576, 7168}));
  EXPECT_THROW(synth_slice(synth_config("mixtral-8x7b"), 33), InputError);
  EXPECT_EQ(synth_slice(synth_config("mixtral-8x7b"), 2)["num_hidden_layers"], 2);
}

// A tiny DeepSeek-V3 (the fixture's config: MLA, a dense block, routed + shared experts) written
// as FP8: the reader serves bf16 weights equal to dequantizing the stored bytes, hides the
// scales, and the planner accepts the model (every expert's shape checked).
TEST(SynthFp8, TinyDeepseekSliceReadsBackAndPlans) {
  if (!test::have_shared("models/house-llama-13m/tokenizer.json")) GTEST_SKIP() << "no tokenizer";
  if (!test::have_shared("fixtures/arch/deepseek_v3/config.json")) GTEST_SKIP() << "no fixture";
  test::TempDir tmp;
  std::ifstream in(test::shared("fixtures/arch/deepseek_v3/config.json"));
  nlohmann::json cfg = nlohmann::json::parse(in);
  cfg.erase("dtype");
  cfg["quantization_config"] = {{"quant_method", "fp8"}, {"weight_block_size", {16, 8}}};
  { std::ofstream(tmp / "config.json") << cfg.dump(); }
  auto r = test::run_shardquant({"synth", "--shape", tmp / "config.json", "--out", tmp / "m",
                                 "--tokenizer", tokenizer_dir(), "--layers", "2"});
  ASSERT_EQ(r.code, 0) << r.all();
  io::ModelWeights w(tmp / "m");
  const std::string e = "model.layers.1.mlp.experts.3.up_proj.weight";
  ASSERT_TRUE(w.has(e));
  EXPECT_FALSE(w.has("model.layers.1.mlp.experts.3.up_proj.weight_scale_inv"));
  EXPECT_EQ(w.get(e).scalar_type(), at::kBFloat16);
  EXPECT_TRUE(w.has("model.layers.1.mlp.shared_experts.down_proj.weight"));
  EXPECT_FALSE(w.has("model.layers.2.self_attn.kv_b_proj.weight"));    // sliced to 2 blocks
  EXPECT_FALSE(w.has("model.layers.0.mlp.experts.0.up_proj.weight"));  // dense block
  auto d = test::run_shardquant({"--model_path", tmp / "m", "--dry-run", "--q-group-size", "8"});
  EXPECT_EQ(d.code, 0) << d.all();
}

}  // namespace
}  // namespace sq::rank
