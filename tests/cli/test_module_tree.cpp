// Issue 20 point 3: for the house model and every architecture fixture the built binary writes
// all three formats, and every output passes the rules of cli/module_tree.h against the module
// tree the input implies (each linear, lm_head included, packed or matched by the format's
// ignore / modules_to_not_convert list the way loaders match it). --keep-fp-layers (the last
// block; for the house model also a linear name) puts kept linears in every output. The GPTQ and
// compressed-tensors outputs of one GPTQ solve hold the same codes, zero points and g_idx, and
// compressed-tensors' weight_scale is the GPTQ fp16 scale in the model dtype. Plan-time refusals:
// a keep that splits a fused layer; compressed-tensors for GPT-2's Conv1D linears.
#include <algorithm>
#include <cmath>
#include <filesystem>

#include "cli/module_tree.h"
#include "fixture_model.h"
#include "io/model/model_weights.h"
#include "io/safetensors/tensor.h"

namespace sq::test::tree {
namespace {

namespace fs = std::filesystem;

// Every fixture of ../shared/fixtures/arch (a test below checks that none is missing).
const std::vector<std::string> kFixtures = {"cohere",
                                            "deepseek_v3",
                                            "falcon",
                                            "gemma",
                                            "gemma2",
                                            "gemma3_text",
                                            "gpt2",
                                            "gpt_neox",
                                            "granite",
                                            "llama",
                                            "llama_bias_tied",
                                            "llama_rope_llama3",
                                            "mistral",
                                            "mixtral",
                                            "olmo2",
                                            "opt",
                                            "phi3",
                                            "phimoe",
                                            "qwen2",
                                            "qwen2_moe",
                                            "qwen3",
                                            "qwen3_moe",
                                            "starcoder2"};

// The repository's own fixtures (tests/fixtures/arch, written by transformers 5.17 for issue 23)
// whose model_type has a row. For these the AWQ and GPTQ outputs are also read back by
// `shardquant eval`.
// llama4_vlm wraps llama4_text (tests/fixtures/wrap_llama4_vlm.py).
const std::vector<std::string> kRepoFixtures = {"ernie4_5_moe", "gemma3_vlm",  "glm4_moe",
                                                "gpt_oss",      "llama4_text", "llama4_vlm",
                                                "mistral3_vlm", "qwen3_next",  "smollm3"};
// Repository fixtures of architectures without a row yet (issue 23 continues): listed so the
// coverage test below notices a new fixture, skipped by the fixture tests.
const std::vector<std::string> kRepoFixturesWithoutRow = {};

bool is_repo_fixture(const std::string& v) {
  return std::find(kRepoFixtures.begin(), kRepoFixtures.end(), v) != kRepoFixtures.end();
}
std::string repo_fixture_dir(const std::string& v) {
  return source_dir() + "/tests/fixtures/arch/" + v;
}

struct FormatRun {
  const char* format;
  std::vector<std::string> args;
};
// GPTQ asymmetric with act order, so that the compressed-tensors output holds weight_zero_point
// and weight_g_idx; the gptq output is the same solve.
const std::vector<FormatRun> kRuns = {
    {"awq", {"--awq"}},
    {"gptq", {"--gptq", "--bits", "4", "--zero-point", "--desc-act"}},
    {"compressed-tensors",
     {"--gptq", "--bits", "4", "--zero-point", "--desc-act", "--format", "compressed-tensors"}},
};

io::QuantLinear unpacked(const io::ModelWeights& w, const std::string& linear) {
  const io::QuantizedLayout& l = *w.quantization();
  const auto stored = w.stored_names();
  io::PackedLinear p;
  p.format = l.format;
  p.scheme = l.scheme;
  for (const auto& suffix : io::format_row(l.format).suffixes) {
    const std::string t = linear + "." + suffix;
    if (std::binary_search(stored.begin(), stored.end(), t))
      p.tensors[suffix] = w.get_stored(t).contiguous();
  }
  return io::unpack(p);
}

// The same GPTQ solve packed both ways: equal integers, and compressed-tensors' scales are the
// GPTQ fp16 scales converted to the model dtype.
void expect_same_solve(const std::string& gptq_dir, const std::string& ct_dir, io::DType dtype) {
  const io::ModelWeights g(gptq_dir), c(ct_dir);
  ASSERT_NE(g.quantization(), nullptr);
  ASSERT_NE(c.quantization(), nullptr);
  int compared = 0;
  for (const auto& name : g.names()) {
    if (!g.is_dequantized(name)) continue;
    SCOPED_TRACE(name);
    ASSERT_TRUE(c.is_dequantized(name));
    const std::string L = name.substr(0, name.size() - 7);
    const io::QuantLinear a = unpacked(g, L), b = unpacked(c, L);
    EXPECT_TRUE(at::equal(a.codes, b.codes));
    EXPECT_TRUE(at::equal(a.zeros, b.zeros));
    EXPECT_TRUE(at::equal(a.g_idx, b.g_idx));
    ASSERT_EQ(b.scales.scalar_type(), io::to_scalar_type(dtype));
    EXPECT_TRUE(at::equal(a.scales.to(b.scales.scalar_type()), b.scales));
    ++compared;
  }
  EXPECT_GT(compared, 0);
}

class ModuleTree : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (!have_shared("data/corpus/brown-train.txt")) GTEST_SKIP() << "no Brown corpus";
    const bool house = GetParam() == "house";
    const std::string rel = house ? "models/house-llama-13m" : "fixtures/arch/" + GetParam();
    if (house) {
      if (!have_shared(rel)) GTEST_SKIP() << rel << " not in " << shared_dir();
      model_ = house_model();
    } else if (is_repo_fixture(GetParam())) {
      model_ = tmp_ / "model";
      make_fixture_model(repo_fixture_dir(GetParam()), model_);
    } else {
      if (!have_shared(rel)) GTEST_SKIP() << rel << " not in " << shared_dir();
      model_ = tmp_ / "model";
      make_fixture_model(shared(rel), model_);
    }
    write_head(shared("data/corpus/brown-train.txt"), tmp_ / "calib.txt", 200);
    // Fixtures: hidden 32, every in_features a multiple of 8. The house model: group 128, and
    // the down projections kept besides the last block.
    common_ = {"--model_path",   model_,         "--calib-file", tmp_ / "calib.txt",
               "--calib-size=4", "--seq_len=32", "--device=cpu", "--quiet"};
    common_.push_back(house ? "--q-group-size=128" : "--q-group-size=8");
    common_.push_back(house ? "--keep-fp-layers=-1,mlp.down_proj" : "--keep-fp-layers=-1");
  }
  std::string model_;
  std::vector<std::string> common_;
  TempDir tmp_;
};

TEST_P(ModuleTree, EveryLinearIsPackedOrListedInAllThreeFormats) {
  const bool conv1d = GetParam() == "gpt2";
  for (const auto& run : kRuns) {
    SCOPED_TRACE(run.format);
    const std::string out = tmp_ / run.format;
    std::vector<std::string> args = common_;
    args.insert(args.end(), {"--output_dir", out});
    args.insert(args.end(), run.args.begin(), run.args.end());
    const RunResult r = run_shardquant(args);
    if (conv1d && std::string(run.format) == "compressed-tensors") {
      EXPECT_EQ(r.code, 2) << r.all();
      EXPECT_NE(r.err.find("Conv1D"), std::string::npos) << r.err;
      EXPECT_FALSE(fs::exists(out));
      continue;
    }
    ASSERT_EQ(r.code, 0) << r.all();
    EXPECT_GT(check_module_tree(model_, out, run.format), 0) << "nothing packed";
    // Issue 23: the new architectures' AWQ and GPTQ checkpoints are read back by eval.
    if (is_repo_fixture(GetParam()) && std::string(run.format) != "compressed-tensors") {
      const RunResult ev =
          run_shardquant({"eval", "--model", out, "--text", tmp_ / "calib.txt", "--seq_len", "32",
                          "--max-windows", "4", "--device", "cpu"});
      ASSERT_EQ(ev.code, 0) << ev.all();
      const double ppl =
          nlohmann::json::parse(ev.out.substr(0, ev.out.find('\n')))["ppl"].get<double>();
      EXPECT_TRUE(std::isfinite(ppl) && ppl > 1.0) << run.format << ": eval ppl " << ppl;
    }
    // Multimodal: vision tower, projector (everything outside language_model.) copied byte for
    // byte, each of their linears named in the format's float list, and the config keeps the
    // multimodal architecture and its vision_config, with quantization_config at its top level
    // (where transformers and vLLM read it for the whole model).
    if (GetParam().find("_vlm") != std::string::npos) {
      const e2e::StoredTensors in(model_), q(out);
      const nlohmann::json a = e2e::load_json(model_ + "/config.json"),
                           b = e2e::load_json(out + "/config.json");
      ASSERT_TRUE(b.contains("quantization_config")) << b.dump();
      EXPECT_FALSE(b["text_config"].contains("quantization_config"));
      const nlohmann::json& qc = b["quantization_config"];
      const std::string list_key =
          std::string(run.format) == "compressed-tensors" ? "ignore" : "modules_to_not_convert";
      const auto listed = qc.value(list_key, std::vector<std::string>{});
      int copied = 0, linears = 0;
      for (const auto& [name, where] : in.where) {
        if (name.rfind("language_model.", 0) == 0) continue;
        ASSERT_TRUE(q.has(name)) << name;
        EXPECT_EQ(q.info(name).dtype, in.info(name).dtype) << name;
        EXPECT_TRUE(q.bytes(name) == in.bytes(name)) << name << " changed";
        ++copied;
        if (in.info(name).shape.size() == 2 && name.size() > 7 &&
            name.compare(name.size() - 7, 7, ".weight") == 0) {
          const std::string module = name.substr(0, name.size() - 7);
          EXPECT_NE(std::find(listed.begin(), listed.end(), module), listed.end())
              << module << " not in " << list_key;
          ++linears;
        }
      }
      EXPECT_GT(copied, 0);
      EXPECT_GT(linears, 0);
      for (const char* key : {"architectures", "model_type", "vision_config", "text_config"})
        EXPECT_EQ(a[key], b[key]) << key;
    }
  }
  if (!conv1d)
    expect_same_solve(tmp_ / "gptq", tmp_ / "compressed-tensors",
                      model_dtype(e2e::load_json(model_ + "/config.json")));
}

INSTANTIATE_TEST_SUITE_P(Models, ModuleTree, ::testing::ValuesIn([] {
                           std::vector<std::string> v = {"house"};
                           v.insert(v.end(), kFixtures.begin(), kFixtures.end());
                           v.insert(v.end(), kRepoFixtures.begin(), kRepoFixtures.end());
                           return v;
                         }()),
                         [](const auto& info) { return info.param; });

TEST(ModuleTreeCoverage, EveryFixtureArchitectureIsListed) {
  if (!have_shared("fixtures/arch")) GTEST_SKIP() << "no fixtures";
  for (const auto& e : fs::directory_iterator(shared("fixtures/arch")))
    if (e.is_directory())
      EXPECT_NE(std::find(kFixtures.begin(), kFixtures.end(), e.path().filename().string()),
                kFixtures.end())
          << e.path().filename() << " is not in kFixtures";
}

TEST(ModuleTreeCoverage, EveryRepoFixtureIsListed) {
  for (const auto& e : fs::directory_iterator(source_dir() + "/tests/fixtures/arch")) {
    if (!e.is_directory()) continue;
    const std::string v = e.path().filename().string();
    EXPECT_TRUE(is_repo_fixture(v) ||
                std::find(kRepoFixturesWithoutRow.begin(), kRepoFixturesWithoutRow.end(), v) !=
                    kRepoFixturesWithoutRow.end())
        << v << " is in neither kRepoFixtures nor kRepoFixturesWithoutRow";
  }
}

// Keeping part of a fused layer is refused at plan time; a linear outside any is not.
TEST(ModuleTreePlan, KeepingPartOfAFusedLayerIsRefused) {
  if (!have_shared("models/house-llama-13m")) GTEST_SKIP() << "house model absent";
  TempDir tmp;
  auto dry = [&](const std::string& keep) {
    return run_shardquant({"--dry-run", "--model_path", house_model(), "--output_dir", tmp / "o",
                           "--keep-fp-layers", keep});
  };
  const RunResult q = dry("self_attn.q_proj");
  EXPECT_EQ(q.code, 2) << q.all();
  EXPECT_NE(q.err.find("model.layers.0.self_attn.k_proj"), std::string::npos) << q.err;
  const RunResult gate = dry("3,mlp.gate_proj");
  EXPECT_EQ(gate.code, 2) << gate.all();
  EXPECT_NE(gate.err.find("mlp.up_proj"), std::string::npos) << gate.err;
  const RunResult down = dry("mlp.down_proj");
  EXPECT_EQ(down.code, 0) << down.all();
  EXPECT_NE(down.out.find("float linear modules: 7 "), std::string::npos) << down.out;
}

TEST(ModuleTreePlan, KeepingSomeExpertsOfABlockIsRefused) {
  if (!have_shared("fixtures/arch/mixtral")) GTEST_SKIP() << "mixtral fixture absent";
  TempDir tmp;
  const RunResult r =
      run_shardquant({"--dry-run", "--model_path", shared("fixtures/arch/mixtral"), "--output_dir",
                      tmp / "o", "--q-group-size", "8", "--keep-fp-layers", "experts.1."});
  EXPECT_EQ(r.code, 2) << r.all();
  EXPECT_NE(r.err.find("experts.0.w1"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace sq::test::tree
