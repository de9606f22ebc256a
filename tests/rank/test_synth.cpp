// Synthetic models: the named shapes (REFERENCE.md §7, Llama-3-8B), the tensor list, the
// generator's distribution and determinism, and a written model that the reader, the config
// parser, the tokenizer and `shardquant --dry-run` accept.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/run_binary.h"
#include "common/errors.h"
#include "io/model_config.h"
#include "io/model_weights.h"
#include "io/tokenizer.h"
#include "rank/synth.h"
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

}  // namespace
}  // namespace sq::rank
