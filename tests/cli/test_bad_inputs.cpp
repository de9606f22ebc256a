// One test per bad input of issue 2 point 7: exit code 2 and a message naming what is wrong.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "cli/bad_models.h"

namespace sq::test {
namespace {

class BadInput : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(house_model() + "/config.json")) GTEST_SKIP() << "house model absent";
    model_ = tmp_ / "model";
    link_model(house_model(), model_);
  }
  RunResult dry(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"--dry-run", "--model_path", model_};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_shardquant(args);
  }
  TempDir tmp_;
  std::string model_;
};

TEST_F(BadInput, MissingDirectory) {
  const std::string missing = tmp_ / "no-such-model";
  auto r = run_shardquant({"--dry-run", "--model_path", missing});
  EXPECT_EQ(r.code, 2) << r.all();
  EXPECT_NE(r.err.find(missing), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("not found"), std::string::npos) << r.err;
}

TEST_F(BadInput, DirectoryWithoutSafetensors) {
  const std::string dir = tmp_ / "config-only";
  fs::create_directories(dir);
  fs::copy_file(house_model() + "/config.json", dir + "/config.json");
  auto r = run_shardquant({"--dry-run", "--model_path", dir});
  EXPECT_EQ(r.code, 2) << r.all();
  EXPECT_NE(r.err.find("safetensors"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(dir), std::string::npos) << r.err;
}

TEST_F(BadInput, TruncatedFile) {
  const std::string shard = shard_of(model_, "model.layers.5.mlp.down_proj.weight");
  const std::string path = materialize(model_, shard);
  fs::resize_file(path, fs::file_size(path) - 1000);
  auto r = dry();
  EXPECT_EQ(r.code, 2) << r.all();
  EXPECT_NE(r.err.find(shard), std::string::npos) << r.err;
}

TEST_F(BadInput, CorruptedHeader) {
  const std::string shard = shard_of(model_, "model.embed_tokens.weight");
  const std::string path = materialize(model_, shard);
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(8);  // the JSON header starts after the 8-byte length
    f.write("#garbage#", 9);
  }
  auto r = dry();
  EXPECT_EQ(r.code, 2) << r.all();
  EXPECT_NE(r.err.find(shard), std::string::npos) << r.err;
}

TEST_F(BadInput, ShapeMismatchWithConfig) {
  const std::string cfg_path = materialize(model_, "config.json");
  auto cfg = read_json(cfg_path);
  const int64_t inter = cfg["intermediate_size"].get<int64_t>();
  cfg["intermediate_size"] = inter + 8;
  write_json(cfg_path, cfg);
  auto r = dry();
  EXPECT_EQ(r.code, 2) << r.all();
  EXPECT_NE(r.err.find("mlp.gate_proj.weight"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(std::to_string(inter + 8)), std::string::npos) << r.err;  // expected
  EXPECT_NE(r.err.find(std::to_string(inter)), std::string::npos) << r.err;      // actual
}

TEST_F(BadInput, NonDivisibleGroupSize) {
  const auto cfg = read_json(model_ + "/config.json");
  const int64_t hidden = cfg["hidden_size"].get<int64_t>();
  int64_t g = 100;
  while (hidden % g == 0) ++g;
  auto r = dry({"--q-group-size", std::to_string(g)});
  EXPECT_EQ(r.code, 2) << r.all();
  EXPECT_NE(r.err.find("not divisible"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(std::to_string(hidden)), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(".safetensors"), std::string::npos) << r.err;
}

TEST_F(BadInput, NegativeGroupSizeOtherThanMinusOne) {
  auto r = dry({"--q-group-size", "-2"});
  EXPECT_EQ(r.code, 2) << r.all();
  EXPECT_NE(r.err.find("-2"), std::string::npos) << r.err;
}

TEST_F(BadInput, OutputEqualsInput) {
  auto r = dry({"--output_dir", model_});
  EXPECT_EQ(r.code, 2) << r.all();
  EXPECT_NE(r.err.find("model directory itself"), std::string::npos) << r.err;
  auto r2 = dry({"--output_dir", model_ + "/./"});
  EXPECT_EQ(r2.code, 2) << r2.all();
}

TEST_F(BadInput, OutputIsOneOfTheInputFiles) {
  auto r = dry({"--output_dir", model_ + "/config.json"});
  EXPECT_EQ(r.code, 2) << r.all();
  EXPECT_NE(r.err.find("config.json"), std::string::npos) << r.err;
}

TEST_F(BadInput, OutputContainsTheModel) {
  auto r = dry({"--output_dir", tmp_.path()});
  EXPECT_EQ(r.code, 2) << r.all();
  EXPECT_NE(r.err.find("contains the model"), std::string::npos) << r.err;
}

TEST_F(BadInput, UnwritableOutput) {
  // /proc refuses new files even for root, unlike a chmod'ed directory.
  const std::string out = "/proc/shardquant-test/out";
  auto r = dry({"--output_dir", out});
  EXPECT_EQ(r.code, 2) << r.all();
  EXPECT_NE(r.err.find("not writable"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(out), std::string::npos) << r.err;
}

TEST_F(BadInput, OutputUnderAFile) {
  auto r = dry({"--output_dir", model_ + "/config.json/sub"});
  EXPECT_EQ(r.code, 2) << r.all();
  EXPECT_NE(r.err.find("not a directory"), std::string::npos) << r.err;
}

TEST(BadFlags, UnknownFlag) {
  auto r = run_shardquant({"--model_path", "/x", "--frobnicate", "3"});
  EXPECT_EQ(r.code, 2) << r.all();
  EXPECT_NE(r.err.find("--frobnicate"), std::string::npos) << r.err;
}

// The exit code reaches $SHARDQUANT_STATUS_DIR too (slurm/quantize.sbatch reads it: srun exits 0
// when its step never launched).
TEST(BadFlags, ExitCodeIsWrittenToTheStatusDirectory) {
  TempDir dir;
  auto r = run_shardquant({"--model_path", "/x", "--frobnicate", "3"},
                          {{"SHARDQUANT_STATUS_DIR", dir.path()}});
  EXPECT_EQ(r.code, 2) << r.all();
  EXPECT_EQ(slurp(dir / "rank-0.status"), "2\n");
}

TEST(BadFlags, AbbreviationsAreNotGuessed) {
  auto r = run_shardquant({"--model_path", "/x", "--bit", "4", "--dry-run"});
  EXPECT_EQ(r.code, 2) << r.all();
  EXPECT_NE(r.err.find("--bit"), std::string::npos) << r.err;
}

TEST(BadFlags, ConflictingMethods) {
  auto r = run_shardquant({"--model_path", "/x", "--awq", "--gptq", "--dry-run"});
  EXPECT_EQ(r.code, 2) << r.all();
  EXPECT_NE(r.err.find("mutually exclusive"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--awq"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--gptq"), std::string::npos) << r.err;
}

TEST(BadFlags, ConflictingSymmetry) {
  auto r = run_shardquant({"--model_path", "/x", "--zero-point", "--sym", "--dry-run"});
  EXPECT_EQ(r.code, 2) << r.all();
  EXPECT_NE(r.err.find("mutually exclusive"), std::string::npos) << r.err;
}

TEST(BadFlags, SameFlagInBothSpellings) {
  auto r = run_shardquant({"--model_path", "/x", "--seq_len", "1", "--seq-len", "2"});
  EXPECT_EQ(r.code, 2) << r.all();
  EXPECT_NE(r.err.find("--seq_len"), std::string::npos) << r.err;
}

TEST(BadFlags, BitsNotSupportedByMethod) {
  auto r = run_shardquant({"--model_path", "/x", "--bits", "3", "--dry-run"});
  EXPECT_EQ(r.code, 2) << r.all();
  EXPECT_NE(r.err.find("AWQ"), std::string::npos) << r.err;
  auto g = run_shardquant({"--model_path", "/x", "--gptq", "--bits", "5", "--dry-run"});
  EXPECT_EQ(g.code, 2) << g.all();
  EXPECT_NE(g.err.find("2, 3, 4, 8"), std::string::npos) << g.err;
}

TEST(BadFlags, MethodOnlyFlag) {
  auto r = run_shardquant({"--model_path", "/x", "--static-groups", "--dry-run"});
  EXPECT_EQ(r.code, 2) << r.all();
  EXPECT_NE(r.err.find("GPTQ only"), std::string::npos) << r.err;
}

TEST(BadFlags, MissingModelPath) {
  auto r = run_shardquant({"--dry-run"});
  EXPECT_EQ(r.code, 2) << r.all();
  EXPECT_NE(r.err.find("--model_path"), std::string::npos) << r.err;
}

TEST(BadFlags, BadNumberAndBadBoolean) {
  auto r = run_shardquant({"--model_path", "/x", "--seq_len", "lots"});
  EXPECT_EQ(r.code, 2) << r.all();
  EXPECT_NE(r.err.find("lots"), std::string::npos) << r.err;
  auto b = run_shardquant({"--model_path", "/x", "--force_cpu=maybe"});
  EXPECT_EQ(b.code, 2) << b.all();
  EXPECT_NE(b.err.find("maybe"), std::string::npos) << b.err;
}

TEST(BadFlags, StrayPositionalArgument) {
  auto r = run_shardquant({"--model_path", "/x", "stray"});
  EXPECT_EQ(r.code, 2) << r.all();
  EXPECT_NE(r.err.find("stray"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace sq::test
