// config.json parsing. The expectations below were written by reading each fixture's
// config.json (and, where a family ignores a generic key, its weight shapes: gpt2 c_fc is
// [32, 128] so intermediate = 4·n_embd despite "intermediate_size": 64; gpt2/opt/gpt_neox have
// no GQA, their k projections are full width despite "num_key_value_heads": 2; falcon's
// dense_h_to_4h is [128, 32], i.e. ffn_hidden_size).
#include <gtest/gtest.h>

#include <filesystem>

#include "common/errors.h"
#include "io/model/model_config.h"
#include "test_paths.h"

using namespace sq;

namespace {

struct Expect {
  const char* dir;  // under fixtures/arch, or a path relative to the shared folder
  const char* model_type;
  int64_t hidden, layers, heads, kv_heads, head_dim, intermediate, vocab;
  double eps, theta;
  const char* rope_type;
  double partial;
  bool tie;
};

// clang-format off
const Expect kExpect[] = {
  // dir                 type           hid lay hd kv hdim inter vocab eps   theta    rope      part tie
  {"cohere",            "cohere",       32, 2, 4, 2,  8,  64, 128, 1e-5, 500000,  "default", 1.0, false},
  {"deepseek_v3",       "deepseek_v3",  32, 3, 4, 2,  8,  64, 128, 1e-6, 10000,   "default", 1.0, false},
  {"falcon",            "falcon",       32, 2, 4, 2,  8, 128, 128, 1e-5, 10000,   "default", 1.0, false},
  {"gemma",             "gemma",        32, 2, 4, 2, 16,  64, 128, 1e-6, 10000,   "default", 1.0, true},
  {"gemma2",            "gemma2",       32, 2, 4, 2, 16,  64, 128, 1e-6, 10000,   "default", 1.0, true},
  {"gemma3_text",       "gemma3_text",  32, 2, 4, 2, 16,  64, 128, 1e-6, 1000000, "default", 1.0, true},
  {"gpt2",              "gpt2",         32, 2, 4, 4,  8, 128, 128, 1e-5, 10000,   "default", 1.0, false},
  {"gpt_neox",          "gpt_neox",     32, 2, 4, 4,  8,  64, 128, 1e-5, 10000,   "default", 0.5, false},
  {"granite",           "granite",      32, 2, 4, 2,  8,  64, 128, 1e-6, 10000,   "default", 1.0, false},
  {"llama",             "llama",        32, 2, 4, 2,  8,  64, 128, 1e-6, 10000,   "default", 1.0, false},
  {"llama_bias_tied",   "llama",        32, 2, 4, 2,  8,  64, 128, 1e-6, 10000,   "default", 1.0, true},
  {"llama_rope_llama3", "llama",        32, 2, 4, 2, 16,  64, 128, 1e-6, 500000,  "llama3",  1.0, false},
  {"mistral",           "mistral",      32, 2, 4, 2,  8,  64, 128, 1e-6, 10000,   "default", 1.0, false},
  {"mixtral",           "mixtral",      32, 2, 4, 2,  8,  64, 128, 1e-5, 1000000, "default", 1.0, false},
  {"olmo2",             "olmo2",        32, 2, 4, 2,  8,  64, 128, 1e-5, 10000,   "default", 1.0, false},
  {"opt",               "opt",          32, 2, 4, 4,  8,  64, 128, 1e-5, 10000,   "default", 1.0, false},
  {"phi3",              "phi3",         32, 2, 4, 2,  8,  64, 128, 1e-5, 10000,   "default", 1.0, false},
  {"phimoe",            "phimoe",       32, 2, 4, 2,  8,  64, 128, 1e-5, 1000000, "default", 1.0, false},
  {"qwen2",             "qwen2",        32, 2, 4, 2,  8,  64, 128, 1e-6, 10000,   "default", 1.0, false},
  {"qwen2_moe",         "qwen2_moe",    32, 2, 4, 2,  8,  64, 128, 1e-6, 10000,   "default", 1.0, false},
  {"qwen3",             "qwen3",        32, 2, 4, 2, 16,  64, 128, 1e-6, 10000,   "default", 1.0, false},
  {"qwen3_moe",         "qwen3_moe",    32, 2, 4, 2, 16,  64, 128, 1e-6, 10000,   "default", 1.0, false},
  {"starcoder2",        "starcoder2",   32, 2, 4, 2,  8,  64, 128, 1e-5, 10000,   "default", 1.0, false},
  {"../../models/house-llama-13m", "llama", 384, 6, 6, 2, 64, 1024, 8192, 1e-5, 10000, "default", 1.0, true},
};
// clang-format on

std::string fixture_path(const Expect& e) {
  return test::shared(std::string("fixtures/arch/") + e.dir);
}

// The InputError message of parsing `j` ("" when it parses).
std::string parse_error(const nlohmann::json& j) {
  try {
    io::parse_model_config(j, "test/config.json");
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(ModelConfig, EveryFixtureParsesToItsJsonValues) {
  if (!test::have_shared("fixtures/arch")) GTEST_SKIP() << "fixtures/arch missing";
  // Every fixture folder has a row (a new fixture must get one).
  size_t folders = 0;
  for (const auto& e : std::filesystem::directory_iterator(test::shared("fixtures/arch")))
    if (e.is_directory()) ++folders;
  EXPECT_EQ(folders, std::size(kExpect) - 1);
  for (const auto& e : kExpect) {
    SCOPED_TRACE(e.dir);
    io::ModelConfig c;
    ASSERT_NO_THROW(c = io::load_model_config(fixture_path(e)));
    EXPECT_EQ(c.model_type, e.model_type);
    EXPECT_EQ(c.hidden_size, e.hidden);
    EXPECT_EQ(c.num_hidden_layers, e.layers);
    EXPECT_EQ(c.num_attention_heads, e.heads);
    EXPECT_EQ(c.num_key_value_heads, e.kv_heads);
    EXPECT_EQ(c.head_dim, e.head_dim);
    EXPECT_EQ(c.intermediate_size, e.intermediate);
    EXPECT_EQ(c.vocab_size, e.vocab);
    EXPECT_DOUBLE_EQ(c.norm_eps, e.eps);
    EXPECT_DOUBLE_EQ(c.rope.theta, e.theta);
    EXPECT_EQ(c.rope.type, e.rope_type);
    EXPECT_DOUBLE_EQ(c.rope.partial_rotary_factor, e.partial);
    EXPECT_EQ(c.tie_word_embeddings, e.tie);
  }
}

TEST(ModelConfig, FamilySpecificFields) {
  if (!test::have_shared("fixtures/arch")) GTEST_SKIP() << "fixtures/arch missing";
  auto g3 = io::load_model_config(test::shared("fixtures/arch/gemma3_text"));
  EXPECT_DOUBLE_EQ(g3.rope_for("full_attention").theta, 1000000.0);
  EXPECT_DOUBLE_EQ(g3.rope_for("sliding_attention").theta, 10000.0);
  auto l3 = io::load_model_config(test::shared("fixtures/arch/llama_rope_llama3"));
  EXPECT_DOUBLE_EQ(l3.rope.params.value("factor", 0.0), 8.0);
  EXPECT_DOUBLE_EQ(l3.rope.params.value("low_freq_factor", 0.0), 1.0);
  EXPECT_DOUBLE_EQ(l3.rope.params.value("high_freq_factor", 0.0), 4.0);
  EXPECT_EQ(l3.rope.params.value("original_max_position_embeddings", 0), 64);
  auto house = io::load_model_config(test::shared("models/house-llama-13m"));
  EXPECT_EQ(house.dtype, "bfloat16");
  EXPECT_EQ(house.max_position_embeddings, 2048);
  EXPECT_EQ(house.hidden_act, "silu");
}

TEST(ModelConfig, Transformers4And5SpellingsGiveTheSameRope) {
  const nlohmann::json base = {{"model_type", "llama"},
                               {"hidden_size", 64},
                               {"num_hidden_layers", 2},
                               {"num_attention_heads", 4},
                               {"vocab_size", 100}};
  struct Case {
    const char* what;
    nlohmann::json v4, v5;
  };
  const Case cases[] = {
      {"llama3 scaling",
       {{"rope_theta", 500000.0},
        {"rope_scaling",
         {{"rope_type", "llama3"},
          {"factor", 8.0},
          {"low_freq_factor", 1.0},
          {"high_freq_factor", 4.0},
          {"original_max_position_embeddings", 8192}}},
        {"torch_dtype", "bfloat16"}},
       {{"rope_parameters",
         {{"rope_type", "llama3"},
          {"rope_theta", 500000.0},
          {"factor", 8.0},
          {"low_freq_factor", 1.0},
          {"high_freq_factor", 4.0},
          {"original_max_position_embeddings", 8192}}},
        {"dtype", "bfloat16"}}},
      {"old \"type\" key",
       {{"rope_theta", 10000.0},
        {"rope_scaling", {{"type", "linear"}, {"factor", 2.0}}},
        {"torch_dtype", "float16"}},
       {{"rope_parameters", {{"rope_type", "linear"}, {"rope_theta", 10000.0}, {"factor", 2.0}}},
        {"dtype", "float16"}}},
      {"no scaling, partial rotary",
       {{"rope_theta", 25000.0},
        {"rope_scaling", nullptr},
        {"partial_rotary_factor", 0.25},
        {"torch_dtype", "float32"}},
       {{"rope_parameters",
         {{"rope_type", "default"}, {"rope_theta", 25000.0}, {"partial_rotary_factor", 0.25}}},
        {"dtype", "float32"}}},
      {"defaults",
       nlohmann::json::object(),
       {{"rope_parameters", {{"rope_type", "default"}, {"rope_theta", 10000.0}}}}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    nlohmann::json j4 = base, j5 = base;
    j4.update(c.v4);
    j5.update(c.v5);
    const auto a = io::parse_model_config(j4, "v4/config.json");
    const auto b = io::parse_model_config(j5, "v5/config.json");
    EXPECT_EQ(a.rope.type, b.rope.type);
    EXPECT_DOUBLE_EQ(a.rope.theta, b.rope.theta);
    EXPECT_DOUBLE_EQ(a.rope.partial_rotary_factor, b.rope.partial_rotary_factor);
    EXPECT_EQ(a.rope.params, b.rope.params);
    EXPECT_EQ(a.dtype, b.dtype);
  }
  // gemma3: rope_theta + rope_local_base_freq (v4) vs rope_parameters keyed by layer type (v5).
  nlohmann::json g4 = base, g5 = base;
  g4["model_type"] = g5["model_type"] = "gemma3_text";
  g4.update({{"rope_theta", 1000000.0},
             {"rope_local_base_freq", 10000.0},
             {"rope_scaling", {{"rope_type", "linear"}, {"factor", 8.0}}}});
  g5["rope_parameters"] = {
      {"full_attention", {{"rope_type", "linear"}, {"factor", 8.0}, {"rope_theta", 1000000.0}}},
      {"sliding_attention", {{"rope_type", "default"}, {"rope_theta", 10000.0}}}};
  const auto a = io::parse_model_config(g4, "v4/config.json");
  const auto b = io::parse_model_config(g5, "v5/config.json");
  for (const char* lt : {"full_attention", "sliding_attention"}) {
    SCOPED_TRACE(lt);
    EXPECT_EQ(a.rope_for(lt).type, b.rope_for(lt).type);
    EXPECT_DOUBLE_EQ(a.rope_for(lt).theta, b.rope_for(lt).theta);
    EXPECT_EQ(a.rope_for(lt).params, b.rope_for(lt).params);
  }
  EXPECT_EQ(a.rope_for("full_attention").type, "linear");
  EXPECT_DOUBLE_EQ(a.rope_for("sliding_attention").theta, 10000.0);
}

TEST(ModelConfig, GptNeoxRotaryPctIsPartialRotary) {
  nlohmann::json j = {{"model_type", "gpt_neox"}, {"hidden_size", 64},
                      {"num_hidden_layers", 2},   {"num_attention_heads", 4},
                      {"vocab_size", 100},        {"rotary_pct", 0.25},
                      {"rotary_emb_base", 20000}, {"intermediate_size", 256}};
  auto c = io::parse_model_config(j, "neox/config.json");
  EXPECT_DOUBLE_EQ(c.rope.partial_rotary_factor, 0.25);
  EXPECT_DOUBLE_EQ(c.rope.theta, 20000.0);
  EXPECT_EQ(c.num_key_value_heads, 4);
  EXPECT_EQ(c.intermediate_size, 256);
}

TEST(ModelConfig, Gpt2InnerDimension) {
  nlohmann::json j = {{"model_type", "gpt2"}, {"n_embd", 48},      {"n_layer", 2},
                      {"n_head", 4},          {"vocab_size", 100}, {"n_inner", nullptr}};
  EXPECT_EQ(io::parse_model_config(j, "gpt2/config.json").intermediate_size, 192);
  j["n_inner"] = 100;
  EXPECT_EQ(io::parse_model_config(j, "gpt2/config.json").intermediate_size, 100);
  j.erase("n_inner");
  EXPECT_EQ(io::parse_model_config(j, "gpt2/config.json").intermediate_size, 192);
}

// Which model_types are supported is the ArchSpec rows' to say (tests/rank/test_arch_sources):
// io parses any, and still requires one.
TEST(ModelConfig, AnyModelTypeParsesButOneIsRequired) {
  nlohmann::json j = {{"model_type", "bloom"},
                      {"hidden_size", 64},
                      {"num_hidden_layers", 2},
                      {"num_attention_heads", 4},
                      {"vocab_size", 100}};
  EXPECT_EQ(io::parse_model_config(j, "test/config.json").model_type, "bloom");
  j.erase("model_type");
  const std::string msg = parse_error(j);
  EXPECT_NE(msg.find("test/config.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("model_type"), std::string::npos) << msg;
}

TEST(ModelConfig, MissingFileAndKeyAreInputErrors) {
  test::TempDir dir;
  EXPECT_THROW(io::load_model_config(dir.path()), InputError);
  nlohmann::json j = {{"model_type", "llama"},
                      {"num_hidden_layers", 2},
                      {"num_attention_heads", 4},
                      {"vocab_size", 100}};
  const std::string msg = parse_error(j);
  EXPECT_NE(msg.find("hidden_size"), std::string::npos) << msg;
}
