// GPTQ Hessians in passes (issue 21 point 3: an MoE block's expert Hessians within a memory
// budget). With --hessian-budget small enough to hold one set's float64 sums, every step runs
// one capture-and-solve pass per shared-input set; the output must be byte-identical to the
// one-pass run (a set's sums do not depend on which sets share its forward), and the summary
// notes how many passes each step took.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli/run_binary.h"
#include "cli/test_quantize_e2e_checks.h"
#include "fixture_model.h"
#include "test_paths.h"

namespace {

namespace fs = std::filesystem;
using namespace sq;

class HessianPasses : public ::testing::TestWithParam<const char*> {};

TEST_P(HessianPasses, ByteIdenticalToOnePass) {
  const std::string rel = std::string("fixtures/arch/") + GetParam();
  if (!test::have_shared(rel + "/config.json")) GTEST_SKIP() << rel << " missing";
  if (!test::have_shared("data/corpus/brown-train.txt")) GTEST_SKIP() << "no Brown corpus";
  test::TempDir tmp;
  const std::string model = tmp / "model", calib = tmp / "calib.txt";
  test::make_fixture_model(test::shared(rel), model);
  test::write_head(test::shared("data/corpus/brown-train.txt"), calib, 200);
  // hidden 32: one set's sums are 32² · 8 = 8 KiB; 8 KiB per pass holds exactly one set.
  const int64_t hidden = test::e2e::load_json(model + "/config.json")["hidden_size"];
  ASSERT_EQ(hidden, 32) << "the budget below assumes hidden_size 32";
  std::map<std::string, std::string> files[2];
  int passes_noted = 0;
  for (int i = 0; i < 2; ++i) {
    const std::string out = tmp / ("out" + std::to_string(i));
    // --q-group-size 8 divides every fixture's widths (deepseek_v3's q_b input is 24).
    std::vector<std::string> a = {"--model_path", model, "--output_dir", out,
                                  "--calib-file", calib};
    for (const char* x : {"--calib-size", "4", "--seq_len", "32", "--q-group-size", "8", "--gptq",
                          "--bits", "4", "--desc-act", "--device", "cpu", "--quiet"})
      a.push_back(x);
    if (i == 1) a.insert(a.end(), {"--hessian-budget", "8KiB"});
    const test::RunResult r = test::run_shardquant(a);
    ASSERT_EQ(r.code, 0) << r.all();
    files[i] = test::e2e::dir_contents(out);
    files[i].erase("quantize.log");
    const auto summary = test::e2e::load_json(out + "/shardquant_summary.json");
    files[i].erase("shardquant_summary.json");
    for (const auto& b : summary["blocks"])
      for (const auto& n : b["notes"])
        if (n.get<std::string>().find(" passes (budget 8192 bytes)") != std::string::npos)
          passes_noted += i == 1 ? 1 : 100;  // the one-pass run must note none
  }
  EXPECT_GT(passes_noted, 0);
  EXPECT_LT(passes_noted, 100);
  ASSERT_EQ(files[0].size(), files[1].size());
  for (const auto& [name, bytes] : files[0]) {
    ASSERT_TRUE(files[1].count(name)) << name;
    EXPECT_TRUE(bytes == files[1].at(name)) << name << " differs with the Hessians in passes";
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, HessianPasses,
                         ::testing::Values("mixtral", "qwen3_moe", "qwen2_moe", "deepseek_v3"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
