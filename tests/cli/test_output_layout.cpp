// --output-layout suffixed (issue 17 point 5): <model>/<name>-AWQ/ (or -GPTQ) whose weight files
// and index carry the same suffix, as the AWQ/GPTQ container tool our users come from writes
// them; the default layout is unchanged; `shardquant eval` reads either.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "cli/run_binary.h"

namespace fs = std::filesystem;
using namespace sq::test;

namespace {

class OutputLayout : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have_shared("models/house-llama-13m/config.json")) GTEST_SKIP() << "house model absent";
    if (!have_shared("data/corpus/brown-train.txt")) GTEST_SKIP() << "corpus absent";
    // Outputs go inside the model directory by default: a writable copy of the house model.
    model_ = tmp_ / "house";
    fs::copy(house_model(), model_, fs::copy_options::recursive);
    // shared/ may be read-only; the copy's directory must take the output.
    fs::permissions(model_, fs::perms::owner_all, fs::perm_options::add);
  }
  RunResult quantize(std::vector<std::string> extra) {
    std::vector<std::string> a = {
        "--model_path",     model_, "--calib-file", shared("data/corpus/brown-train.txt"),
        "--calib-size",     "4",    "--seq_len",    "64",
        "--max-shard-size", "8MB"};
    a.insert(a.end(), extra.begin(), extra.end());
    return run_shardquant(a);
  }
  static std::set<std::string> names(const fs::path& dir) {
    std::set<std::string> s;
    for (const auto& e : fs::directory_iterator(dir)) s.insert(e.path().filename().string());
    return s;
  }
  // Every weight file is <stem>-0000i-of-0000N.safetensors, the index is
  // <stem>.safetensors.index.json and maps every tensor to one of them.
  static void expect_sharded(const fs::path& dir, const std::string& stem) {
    const auto files = names(dir);
    std::set<std::string> shards;
    for (const auto& f : files)
      if (f.size() > 12 && f.substr(f.size() - 12) == ".safetensors") shards.insert(f);
    ASSERT_GE(shards.size(), 2u) << dir << ": expected several shards with --max-shard-size 8MB";
    const std::string n = std::to_string(shards.size());
    for (size_t i = 1; i <= shards.size(); ++i) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "-%05zu-of-%05zu.safetensors", i, shards.size());
      EXPECT_TRUE(shards.count(stem + buf)) << dir << " lacks " << stem + buf;
    }
    const fs::path index = dir / (stem + ".safetensors.index.json");
    ASSERT_TRUE(fs::exists(index)) << index;
    const auto j = nlohmann::json::parse(slurp(index.string()));
    std::set<std::string> mapped;
    for (const auto& [tensor, file] : j["weight_map"].items())
      mapped.insert(file.get<std::string>());
    EXPECT_EQ(mapped, shards);
    EXPECT_TRUE(j["weight_map"].contains("model.layers.0.self_attn.q_proj.qweight"));
  }
  static void expect_evaluates(const fs::path& dir) {
    auto r = run_shardquant({"eval", "--model", dir.string(), "--text",
                             shared("data/corpus/brown-test.txt"), "--seq_len", "64",
                             "--max-windows", "2", "--device", "cpu"});
    ASSERT_EQ(r.code, 0) << r.all();
    const double ppl = nlohmann::json::parse(r.out.substr(0, r.out.find('\n')))["ppl"];
    EXPECT_TRUE(std::isfinite(ppl) && ppl > 1.0) << r.out;
  }
  TempDir tmp_;
  std::string model_;
};

TEST_F(OutputLayout, SuffixedAwqAndGptq) {
  auto r = quantize({"--output-layout", "suffixed"});
  ASSERT_EQ(r.code, 0) << r.all();
  const fs::path awq = fs::path(model_) / "house-AWQ";
  ASSERT_TRUE(fs::is_directory(awq)) << names(model_).size();
  EXPECT_FALSE(fs::exists(fs::path(model_) / "AWQ-4bit"));
  expect_sharded(awq, "model-AWQ");
  for (const auto& f : names(awq)) EXPECT_NE(f.rfind("model.safetensors", 0), 0u) << f;
  EXPECT_TRUE(fs::exists(awq / "config.json"));
  EXPECT_TRUE(fs::exists(awq / "tokenizer.json"));
  expect_evaluates(awq);

  r = quantize({"--output-layout", "suffixed", "--gptq", "--bits", "4"});
  ASSERT_EQ(r.code, 0) << r.all();
  expect_sharded(fs::path(model_) / "house-GPTQ", "model-GPTQ");
}

TEST_F(OutputLayout, DefaultLayoutUnchanged) {
  auto r = quantize({});
  ASSERT_EQ(r.code, 0) << r.all();
  const fs::path awq = fs::path(model_) / "AWQ-4bit";
  expect_sharded(awq, "model");
  EXPECT_FALSE(fs::exists(fs::path(model_) / "house-AWQ"));
}

TEST_F(OutputLayout, BadChoiceIsAnInputError) {
  auto r = quantize({"--output-layout", "flat"});
  EXPECT_EQ(r.code, 2) << r.all();
  EXPECT_NE(r.all().find("output"), std::string::npos) << r.all();
  EXPECT_NE(r.all().find("suffixed"), std::string::npos) << r.all();
}

}  // namespace
