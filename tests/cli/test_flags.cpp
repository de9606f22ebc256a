// The built binary's flag surface: --help, --version, spellings, env mapping and precedence,
// output-dir defaults. Output-dir naming is read back from the dry-run plan's "output dir:"
// line on a symlinked copy of the house model.
#include <gtest/gtest.h>

#include <regex>

#include "cli/bad_models.h"
#include "coordinator/options/options_table.h"

namespace sq::test {
namespace {

// Every flag a user of the two container tools and of the issue may pass (canonical spelling).
const std::vector<std::string> kAllFlags = {"model_path",    "seq_len",
                                            "output_dir",    "force_cpu",
                                            "max_quality",   "awq",
                                            "gptq",          "bits",
                                            "q_group_size",  "zero_point",
                                            "desc_act",      "keep_fp_layers",
                                            "iter",          "search_step",
                                            "dump_salient",  "salient_quota",
                                            "calib_size",    "calib_split",
                                            "dataset",       "dataset_dir",
                                            "seed",          "dry_run",
                                            "log_file",      "version",
                                            "help",          "no_duo_scaling",
                                            "no_clip",       "n_grid",
                                            "static_groups", "damp_percent",
                                            "propagate",     "true_sequential",
                                            "sym",           "calib_file",
                                            "calib_cache",   "max_shard_size",
                                            "parallel",      "transport",
                                            "comm_timeout",  "gpu_mem_limit",
                                            "format",        "device",
                                            "verbose",       "quiet"};

std::string kebab(std::string s) {
  for (auto& c : s)
    if (c == '_') c = '-';
  return s;
}

std::string plan_value(const std::string& out, const std::string& key) {
  std::smatch m;
  const std::regex re("(^|\\n)" + key + ": ([^\\n]*)");
  return std::regex_search(out, m, re) ? m[2].str() : "<" + key + " missing>";
}

TEST(Flags, HelpListsEveryFlagInBothSpellings) {
  auto r = run_shardquant({"--help"});
  ASSERT_EQ(r.code, 0) << r.all();
  for (const auto& f : kAllFlags) {
    EXPECT_NE(r.out.find("--" + f), std::string::npos) << f;
    EXPECT_NE(r.out.find("--" + kebab(f)), std::string::npos) << f;
  }
  auto h = run_shardquant({"-h"});
  EXPECT_EQ(h.code, 0);
  EXPECT_EQ(h.out, r.out);
}

TEST(Flags, VersionMatchesCMakeProject) {
  auto r = run_shardquant({"--version"});
  ASSERT_EQ(r.code, 0) << r.all();
  const std::string cmake = slurp(source_dir() + "/CMakeLists.txt");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(cmake, m, std::regex("project\\(shardquant VERSION ([0-9.]+)")));
  EXPECT_EQ(r.out, "shardquant " + m[1].str() + "\n");
}

TEST(Flags, ReadmeFlagTableMatchesHelp) {
  const std::string readme = slurp(source_dir() + "/README.md");
  auto md = run_shardquant({"--help-markdown"});
  ASSERT_EQ(md.code, 0) << md.all();
  std::istringstream lines(md.out);
  std::string line;
  while (std::getline(lines, line))
    EXPECT_NE(readme.find(line), std::string::npos)
        << "README.md is out of date; regenerate the table with `shardquant --help-markdown`: "
        << line;
}

class WithModel : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(house_model() + "/config.json")) GTEST_SKIP() << "house model absent";
    model_ = tmp_ / "house";
    link_model(house_model(), model_);
  }
  RunResult dry(std::vector<std::string> args, const std::map<std::string, std::string>& env = {}) {
    args.insert(args.begin(), "--dry-run");
    return run_shardquant(args, env);
  }
  TempDir tmp_;
  std::string model_;
};

TEST_F(WithModel, DefaultOutputDirs) {
  struct Row {
    std::vector<std::string> flags;
    std::string dir;
  };
  const Row rows[] = {{{}, "AWQ-4bit"},
                      {{"--gptq"}, "GPTQ-8bit"},
                      {{"--gptq", "--bits", "4"}, "GPTQ-4bit"},
                      {{"--max_quality"}, "AWQ-4bit-MAX"},
                      {{"--gptq", "--max-quality", "--bits=3"}, "GPTQ-3bit-MAX"}};
  for (const auto& row : rows) {
    auto args = row.flags;
    args.insert(args.end(), {"--model_path", model_});
    auto r = dry(args);
    ASSERT_EQ(r.code, 0) << r.all();
    EXPECT_EQ(plan_value(r.out, "output dir"), model_ + "/" + row.dir);
  }
}

TEST_F(WithModel, SnakeAndKebabAreEquivalent) {
  const std::string out = tmp_ / "out";
  auto a = dry({"--model_path", model_, "--output_dir", out, "--seq_len", "64", "--calib_size", "8",
                "--q_group_size", "64", "--force_cpu"});
  auto b = dry({"--model-path", model_, "--output-dir", out, "--seq-len=64", "--calib-size", "8",
                "--q-group-size=64", "--force-cpu=true"});
  ASSERT_EQ(a.code, 0) << a.all();
  ASSERT_EQ(b.code, 0) << b.all();
  EXPECT_EQ(a.out, b.out);
  EXPECT_EQ(plan_value(a.out, "calibration"), "8 x 64 tokens, seed 42");
}

TEST_F(WithModel, EnvVariablesMapOntoFlags) {
  const std::string out = tmp_ / "env-out";
  auto r = dry({}, {{"MODEL_PATH", model_},
                    {"OUTPUT_DIR", out},
                    {"SEQ_LEN", "256"},
                    {"METHOD", "gptq"},
                    {"BITS", "4"},
                    {"FORCE_CPU", "yes"},
                    {"EXTRA_ARGS", "--calib-size 16 --seed '7'"}});
  ASSERT_EQ(r.code, 0) << r.all();
  EXPECT_EQ(plan_value(r.out, "output dir"), out);
  EXPECT_EQ(plan_value(r.out, "calibration"), "16 x 256 tokens, seed 7");
  EXPECT_EQ(plan_value(r.out, "method").substr(0, 7), "GPTQ w4");
  EXPECT_EQ(plan_value(r.out, "device"), "cpu");
}

TEST_F(WithModel, MaxQualityFromEnvGivesMaxDir) {
  auto r = dry({}, {{"MODEL_PATH", model_}, {"MAX_QUALITY", "1"}});
  ASSERT_EQ(r.code, 0) << r.all();
  EXPECT_EQ(plan_value(r.out, "output dir"), model_ + "/AWQ-4bit-MAX");
}

TEST_F(WithModel, CommandLineBeatsEnvAndExtraArgs) {
  auto r = dry({"--model_path", model_, "--seq_len", "32", "--awq"},
               {{"MODEL_PATH", "/nonexistent"},
                {"SEQ_LEN", "999"},
                {"METHOD", "gptq"},
                {"EXTRA_ARGS", "--seq-len 77 --calib_size 4"}});
  ASSERT_EQ(r.code, 0) << r.all();
  EXPECT_EQ(plan_value(r.out, "calibration"), "4 x 32 tokens, seed 42");
  EXPECT_EQ(plan_value(r.out, "method").substr(0, 3), "AWQ");
  // EXTRA_ARGS beats the single env variables.
  auto e = dry({"--model_path", model_}, {{"SEQ_LEN", "999"}, {"EXTRA_ARGS", "--seq-len 77"}});
  ASSERT_EQ(e.code, 0) << e.all();
  EXPECT_EQ(plan_value(e.out, "calibration"), "128 x 77 tokens, seed 42");
}

TEST_F(WithModel, BadEnvValueNamesTheVariable) {
  auto r = dry({"--model_path", model_}, {{"FORCE_CPU", "perhaps"}});
  EXPECT_EQ(r.code, 2) << r.all();
  EXPECT_NE(r.err.find("FORCE_CPU"), std::string::npos) << r.err;
  auto q = dry({"--model_path", model_}, {{"EXTRA_ARGS", "--seed 'unterminated"}});
  EXPECT_EQ(q.code, 2) << q.all();
  EXPECT_NE(q.err.find("EXTRA_ARGS"), std::string::npos) << q.err;
}

TEST_F(WithModel, LogFileGetsRankTaggedLines) {
  const std::string log = tmp_ / "logs/q.log";
  auto r = dry({"--model_path", model_, "--log-file", log});
  ASSERT_EQ(r.code, 0) << r.all();
  const std::string text = slurp(log);
  EXPECT_NE(text.find("[r0]"), std::string::npos) << text;
  EXPECT_NE(text.find("dry run"), std::string::npos) << text;
}

}  // namespace
}  // namespace sq::test
