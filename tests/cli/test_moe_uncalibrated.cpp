// Every expert is quantized, always (issue 21 point 2). Calibration of one sample of one token
// reaches exactly top-k of the 4 routed experts of each MoE block of the fixtures (mixtral and
// deepseek_v3: 2, so 2 experts per block, 6 linears, receive no token by construction; llama4_text,
// whose fused experts are quantized per expert (issue 23): 1, so 3 experts, 9 linears). The run
// must still pack them (qweight present, no float weight left), count them per block in the log and
// the summary, and never list an expert among the modules the runtime should leave unconverted.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "cli/run_binary.h"
#include "cli/test_quantize_e2e_checks.h"
#include "fixture_model.h"
#include "test_paths.h"

namespace {

namespace fs = std::filesystem;
using namespace sq;

struct Case {
  const char* fixture;
  int moe_blocks;      // decoder blocks with routed experts
  const char* expert;  // regex of a routed expert's linear prefix
  int uncalibrated;    // expert linears per MoE block that no token reaches (3 × (4 − top-k))
  bool repo = false;   // fixture in tests/fixtures/arch (else ../shared/fixtures/arch)
};

class MoeUncalibrated : public ::testing::TestWithParam<Case> {};

TEST_P(MoeUncalibrated, UnreachedExpertsAreQuantizedAndCounted) {
  const Case c = GetParam();
  const std::string rel = std::string("fixtures/arch/") + c.fixture;
  const std::string src = c.repo ? test::source_dir() + "/tests/" + rel : test::shared(rel);
  if (!std::filesystem::exists(src + "/config.json")) GTEST_SKIP() << src << " missing";
  test::TempDir tmp;
  const std::string model = tmp / "model", calib = tmp / "calib.txt";
  test::make_fixture_model(src, model);
  {
    // One-character texts: AWQ's sampling keeps only texts of at most seq_len = 1 token.
    std::ofstream f(calib);
    for (const char* t : {"t", "h", "e", "a"}) f << t << "\n";
  }
  const std::regex expert(c.expert);
  for (const char* method : {"--awq", "--gptq"}) {
    const std::string out = tmp / (std::string("out") + method);
    const test::RunResult r = test::run_shardquant(
        {"--model_path", model, "--output_dir", out, "--calib-file", calib, "--calib-size", "1",
         "--seq_len", "1", "--q-group-size", "8", "--bits", "4", "--device", "cpu", method});
    ASSERT_EQ(r.code, 0) << method << "\n" << r.all();

    const auto summary = test::e2e::load_json(out + "/shardquant_summary.json");
    int blocks_with = 0;
    for (const auto& b : summary.at("blocks")) {
      if (!b.contains("uncalibrated_linears")) continue;
      ++blocks_with;
      EXPECT_EQ(b.at("uncalibrated_linears").get<int>(), c.uncalibrated)
          << method << " block " << b["index"];
      ASSERT_EQ(b.at("uncalibrated").size(), size_t(c.uncalibrated));
      for (const auto& n : b.at("uncalibrated"))
        EXPECT_TRUE(std::regex_search(n.get<std::string>(), expert)) << n;
    }
    EXPECT_EQ(blocks_with, c.moe_blocks) << method;
    EXPECT_EQ(summary.value("uncalibrated_linears", 0), c.uncalibrated * c.moe_blocks) << method;

    const std::string log = test::e2e::file_bytes(out + "/quantize.log");
    EXPECT_NE(log.find(", " + std::to_string(c.uncalibrated) + " without calibration tokens (RTN)"),
              std::string::npos)
        << log;

    // Packed: every routed expert linear has its qweight and no float weight.
    const test::e2e::StoredTensors st(out);
    int expert_linears = 0;
    for (const auto& [name, where] : st.where) {
      if (!std::regex_search(name, expert)) continue;
      const std::string suffix = name.substr(name.rfind('.') + 1);
      EXPECT_NE(suffix, "weight") << name << " left in floating point";
      if (suffix == "qweight") ++expert_linears;
    }
    EXPECT_EQ(expert_linears, 4 * 3 * c.moe_blocks) << method;
    const auto cfg = test::e2e::load_json(out + "/config.json");
    for (const auto& m :
         cfg.at("quantization_config").value("modules_to_not_convert", nlohmann::json::array()))
      EXPECT_FALSE(std::regex_search(m.get<std::string>(), expert)) << m;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Fixtures, MoeUncalibrated,
    ::testing::Values(Case{"mixtral", 2, R"(\.experts\.\d+\.w[123]$|\.experts\.\d+\.w[123]\.)", 6},
                      Case{"deepseek_v3", 2, R"(\.mlp\.experts\.\d+\.)", 6},
                      Case{"llama4_text", 2, R"(\.feed_forward\.experts\.\d+\.)", 9, true}),
    [](const auto& info) { return std::string(info.param.fixture); });

}  // namespace
