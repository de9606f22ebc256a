// --dry-run on the house model: the printed plan against facts derived from the model's own
// config.json and index (not from our output).
#include <gtest/gtest.h>

#include <regex>

#include "cli/bad_models.h"

namespace sq::test {
namespace {

std::string value(const std::string& out, const std::string& key) {
  std::smatch m;
  const std::regex re("(^|\\n)" + key + ": ([^\\n]*)");
  return std::regex_search(out, m, re) ? m[2].str() : "<" + key + " missing>";
}
int64_t number(const std::string& out, const std::string& key) {
  const std::string v = value(out, key);
  return std::isdigit(static_cast<unsigned char>(v[0])) ? std::stoll(v) : -1;
}

class DryRun : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(house_model() + "/config.json")) GTEST_SKIP() << "house model absent";
    model_ = tmp_ / "house";
    link_model(house_model(), model_);
    cfg_ = read_json(model_ + "/config.json");
    index_ = read_json(model_ + "/model.safetensors.index.json");
  }
  // Linears of the Llama layout, counted from the index's tensor names.
  int64_t linears_in_index() const {
    const std::regex re(R"(^model\.layers\.\d+\.(self_attn|mlp)\.[a-z_]+_proj\.weight$)");
    int64_t n = 0;
    for (auto it = index_["weight_map"].begin(); it != index_["weight_map"].end(); ++it)
      n += std::regex_match(it.key(), re);
    return n;
  }
  int64_t linear_params_from_config() const {
    const int64_t h = cfg_["hidden_size"], i = cfg_["intermediate_size"],
                  q = cfg_["num_attention_heads"].get<int64_t>() * cfg_["head_dim"].get<int64_t>(),
                  kv = cfg_["num_key_value_heads"].get<int64_t>() * cfg_["head_dim"].get<int64_t>();
    return cfg_["num_hidden_layers"].get<int64_t>() * (2 * h * q + 2 * h * kv + 3 * h * i);
  }
  TempDir tmp_;
  std::string model_;
  nlohmann::json cfg_, index_;
};

TEST_F(DryRun, PrintsThePlan) {
  auto r = run_shardquant({"--dry-run", "--model_path", model_});
  ASSERT_EQ(r.code, 0) << r.all();
  EXPECT_EQ(number(r.out, "blocks"), cfg_["num_hidden_layers"].get<int64_t>());
  EXPECT_EQ(number(r.out, "quantized linears"), linears_in_index());
  EXPECT_EQ(linears_in_index(), 42);  // the house model's documented layout: 6 blocks x 7
  EXPECT_EQ(number(r.out, "parameters"), index_["metadata"]["total_parameters"].get<int64_t>());
  EXPECT_EQ(number(r.out, "quantized parameters"), linear_params_from_config());
  EXPECT_EQ(number(r.out, "kept parameters"),
            index_["metadata"]["total_parameters"].get<int64_t>() - linear_params_from_config());
  EXPECT_EQ(number(r.out, "kept tensors"),
            static_cast<int64_t>(index_["weight_map"].size()) - linears_in_index());
  EXPECT_EQ(number(r.out, "kept linears"), 0);
  EXPECT_NE(value(r.out, "architecture").find("LlamaForCausalLM"), std::string::npos);
  EXPECT_EQ(value(r.out, "output dir"), model_ + "/AWQ-4bit");
  EXPECT_GT(number(r.out, "peak host memory"), 0);
  EXPECT_GE(number(r.out, "peak gpu memory"), 0);
  EXPECT_FALSE(fs::exists(model_ + "/AWQ-4bit")) << "a dry run must not create the output";
}

TEST_F(DryRun, KeepFpLayersByIndexAndName) {
  const int64_t blocks = cfg_["num_hidden_layers"];
  auto r = run_shardquant({"--dry-run", "--model_path", model_, "--keep-fp-layers", "0,-1"});
  ASSERT_EQ(r.code, 0) << r.all();
  EXPECT_EQ(number(r.out, "kept linears"), 2 * linears_in_index() / blocks);
  auto n = run_shardquant({"--dry-run", "--model_path", model_, "--keep_fp_layers=down_proj"});
  ASSERT_EQ(n.code, 0) << n.all();
  EXPECT_EQ(number(n.out, "kept linears"), blocks);
  auto bad = run_shardquant({"--dry-run", "--model_path", model_, "--keep-fp-layers", "99"});
  EXPECT_EQ(bad.code, 2) << bad.all();
  auto typo = run_shardquant({"--dry-run", "--model_path", model_, "--keep-fp-layers", "dwn"});
  EXPECT_EQ(typo.code, 2) << typo.all();
  EXPECT_NE(typo.err.find("dwn"), std::string::npos);
}

TEST_F(DryRun, MemoryGrowsWithCalibration) {
  auto small = run_shardquant({"--dry-run", "--model_path", model_, "--force_cpu", "--seq_len",
                               "128", "--calib-size", "8"});
  auto big = run_shardquant({"--dry-run", "--model_path", model_, "--force_cpu", "--seq_len",
                             "2048", "--calib-size", "128"});
  ASSERT_EQ(small.code, 0) << small.all();
  ASSERT_EQ(big.code, 0) << big.all();
  // Activations alone: 2 x n x seq x hidden x 4 bytes (fp32 on CPU).
  const int64_t acts = 2LL * 128 * 2048 * cfg_["hidden_size"].get<int64_t>() * 4;
  EXPECT_GT(number(big.out, "peak host memory"), acts);
  EXPECT_LT(number(small.out, "peak host memory"), number(big.out, "peak host memory"));
  EXPECT_EQ(number(big.out, "peak gpu memory"), 0);
}

TEST_F(DryRun, GroupMinusOneIsAccepted) {
  auto r = run_shardquant({"--dry-run", "--model_path", model_, "--gptq", "--q-group-size", "-1"});
  EXPECT_EQ(r.code, 0) << r.all();
}

}  // namespace
}  // namespace sq::test
