// Unit tests of the planner: real checkpoints (house model, every architecture fixture) plan
// without error, counts follow the config, and the output-dir rules hold.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/errors.h"
#include "coordinator/plan/plan.h"
#include "coordinator/plan/plan_internal.h"
#include "test_paths.h"

namespace sq::coordinator {
namespace {

namespace fs = std::filesystem;
using sq::test::TempDir;

Options options_for(const std::string& model, const std::string& out,
                    std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"--model_path", model, "--output_dir", out, "--dry-run"};
  args.insert(args.end(), extra.begin(), extra.end());
  return parse_options(args, {}).options;
}

nlohmann::json read_json(const std::string& p) {
  std::ifstream in(p);
  return nlohmann::json::parse(in);
}

TEST(Plan, HouseModelCountsFollowTheConfig) {
  const std::string model = sq::test::shared("models/house-llama-13m");
  if (!fs::exists(model + "/config.json")) GTEST_SKIP() << "house model absent";
  TempDir tmp;
  const Plan p = make_plan(options_for(model, tmp / "out"));
  const auto cfg = read_json(model + "/config.json");
  const auto idx = read_json(model + "/model.safetensors.index.json");
  EXPECT_EQ(static_cast<int64_t>(p.blocks.size()), cfg["num_hidden_layers"].get<int64_t>());
  EXPECT_EQ(p.total_params, idx["metadata"]["total_parameters"].get<int64_t>());
  EXPECT_EQ(p.quantized_linears + p.kept_tensors, static_cast<int64_t>(idx["weight_map"].size()));
  EXPECT_EQ(p.quantized_params + p.kept_params, p.total_params);
  for (const auto& b : p.blocks)
    for (const auto& l : b.linears) EXPECT_EQ(l.ref.in_features % 128, 0) << l.ref.name;
  EXPECT_TRUE(p.on_cpu || p.memory.device_peak > 0);
  EXPECT_GT(p.memory.host_peak, p.memory.block_weights);
  EXPECT_FALSE(fs::exists(tmp / "out"));  // planning creates nothing
  const std::string text = describe_plan(p, options_for(model, tmp / "out"));
  EXPECT_NE(text.find("blocks: " + std::to_string(p.blocks.size())), std::string::npos);
}

TEST(Plan, EveryArchitectureFixturePlans) {
  const std::string root = sq::test::shared("fixtures/arch");
  if (!fs::exists(root)) GTEST_SKIP() << "fixtures absent";
  TempDir tmp;
  int planned = 0;
  for (const auto& e : fs::directory_iterator(root)) {
    if (!fs::exists(e.path() / "config.json")) continue;
    SCOPED_TRACE(e.path().filename().string());
    const auto cfg = read_json((e.path() / "config.json").string());
    try {
      const Plan p =
          make_plan(options_for(e.path().string(), tmp / "out", {"--q-group-size", "-1"}));
      EXPECT_EQ(static_cast<int64_t>(p.blocks.size()), p.config.num_hidden_layers);
      EXPECT_GT(p.quantized_linears, 0);
      ++planned;
    } catch (const InputError& ex) {
      // Only an architecture this build does not know may be refused.
      EXPECT_NE(std::string(ex.what()).find("model_type"), std::string::npos) << ex.what();
    }
  }
  EXPECT_GT(planned, 0);
}

TEST(Plan, GroupDivisibilityNamesTheTensor) {
  const std::string model = sq::test::shared("fixtures/arch/llama");
  if (!fs::exists(model + "/config.json")) GTEST_SKIP() << "fixture absent";
  TempDir tmp;
  const int64_t hidden = read_json(model + "/config.json")["hidden_size"];
  try {
    make_plan(options_for(model, tmp / "out", {"--q-group-size", std::to_string(hidden * 2)}));
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("in_features " + std::to_string(hidden)),
              std::string::npos)
        << e.what();
  }
}

// A fixture whose config.json states other MoE / MLA sizes than its tensors: the shape rules of
// experts, shared experts and MLA projections name the first tensor that disagrees and the key.
void expect_shape_error(const std::string& fixture, const std::string& key, int64_t value,
                        const std::string& tensor, const std::string& why) {
  const std::string src = sq::test::shared("fixtures/arch/" + fixture);
  if (!fs::exists(src + "/config.json")) GTEST_SKIP() << "fixture absent";
  TempDir tmp;
  const std::string model = tmp / "model";
  fs::create_directories(model);
  for (const auto& e : fs::directory_iterator(src))
    if (e.path().filename() != "config.json")
      fs::create_symlink(fs::absolute(e.path()), fs::path(model) / e.path().filename());
  auto cfg = read_json(src + "/config.json");
  cfg[key] = value;
  std::ofstream(model + "/config.json") << cfg.dump(2);
  try {
    make_plan(options_for(model, tmp / "out", {"--q-group-size", "-1"}));
    FAIL() << "expected InputError for " << key << " = " << value;
  } catch (const InputError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("tensor " + tensor + " has shape"), std::string::npos) << m;
    EXPECT_NE(m.find(why), std::string::npos) << m;
  }
}

TEST(Plan, MoeAndMlaShapesFollowTheConfig) {
  // Mixtral names the expert width intermediate_size; the first expert's w1 is checked first.
  expect_shape_error("mixtral", "intermediate_size", 48,
                     "model.layers.0.block_sparse_moe.experts.0.w1.weight",
                     "moe_intermediate_size (else intermediate_size) 48");
  expect_shape_error("mixtral", "num_local_experts", 3,
                     "model.layers.0.block_sparse_moe.gate.weight",
                     "n_routed_experts / moe_num_experts) 3");
  expect_shape_error("qwen2_moe", "shared_expert_intermediate_size", 40,
                     "model.layers.0.mlp.shared_expert.gate_proj.weight",
                     "shared_expert_intermediate_size");
  // deepseek_v3: block 0 is dense (first_k_dense_replace), its MLA projections are not.
  expect_shape_error("deepseek_v3", "q_lora_rank", 20, "model.layers.0.self_attn.q_a_proj.weight",
                     "q_lora_rank 20");
  expect_shape_error("deepseek_v3", "kv_lora_rank", 12,
                     "model.layers.0.self_attn.kv_a_proj_with_mqa.weight",
                     "kv_lora_rank + qk_rope_head_dim 20");
  expect_shape_error("deepseek_v3", "moe_intermediate_size", 24,
                     "model.layers.1.mlp.experts.0.gate_proj.weight", "moe_intermediate_size");
}

// The printed plan lists an MoE block's routed experts once per shape, with their count.
TEST(Plan, DescribedExpertsAreCounted) {
  const std::string model = sq::test::shared("fixtures/arch/deepseek_v3");
  if (!fs::exists(model + "/config.json")) GTEST_SKIP() << "fixture absent";
  TempDir tmp;
  const Options o = options_for(model, tmp / "out", {"--q-group-size", "-1"});
  const std::string text = describe_plan(make_plan(o), o);
  const int64_t experts = read_json(model + "/config.json")["n_routed_experts"];
  const std::string want = "experts.*.down_proj[32x16]×" + std::to_string(experts);
  EXPECT_NE(text.find(want), std::string::npos) << text;
  EXPECT_EQ(text.find("experts.0."), std::string::npos) << text;
}

TEST(OutputDir, Rules) {
  TempDir tmp;
  const std::string model = tmp / "model";
  fs::create_directories(model);
  std::ofstream(model + "/config.json") << "{}";
  const std::vector<std::string> files = {model + "/model.safetensors"};
  EXPECT_NO_THROW(check_output_dir(model + "/AWQ-4bit", model, files));
  EXPECT_NO_THROW(check_output_dir(tmp / "elsewhere/deep/out", model, files));
  EXPECT_THROW(check_output_dir(model, model, files), InputError);
  EXPECT_THROW(check_output_dir(model + "/", model, files), InputError);
  EXPECT_THROW(check_output_dir(model + "/config.json", model, files), InputError);
  EXPECT_THROW(check_output_dir(files[0], model, files), InputError);
  EXPECT_THROW(check_output_dir(tmp.path(), model, files), InputError);
  EXPECT_THROW(check_output_dir(model + "/config.json/x", model, files), InputError);
  EXPECT_THROW(check_output_dir("/proc/sq-out", model, files), InputError);
  // The probe file is gone.
  for (const auto& e : fs::directory_iterator(model))
    EXPECT_EQ(e.path().filename().string().find(".shardquant-probe"), std::string::npos);
}

// The host estimate adds a block's codes that wait in host memory (rank::ResultStore::
// kCompactHost) exactly when the worker would put them there: the block's linear weights (kept
// ones included) above a sixteenth of the GPU's memory. Every figure below by hand from plan.h.
TEST(PlanMemory, CodesWaitingOnTheHostCountPastASixteenthOfTheGpu) {
  Plan p;
  p.config.hidden_size = 32;
  p.on_cpu = false;
  p.compute_dtype_bytes = 2;
  p.total_params = 1500;
  p.input_bytes = 3000;  // 2 stored bytes per parameter
  PlannedBlock b;
  b.params = 1000;
  auto linear = [](int64_t out, int64_t in, bool quantized) {
    PlannedLinear l;
    l.ref.out_features = out;
    l.ref.in_features = in;
    l.quantized = quantized;
    return l;
  };
  // Codes (quantized weights): 2048 + 2048 = 4096; weights the worker weighs: 4096 + 256 = 4352.
  b.linears = {linear(64, 32, true), linear(32, 64, true), linear(16, 16, false)};
  p.blocks = {b};
  Options o;
  o.method = Method::kGptq;
  o.bits = 4;
  o.calib_size = 2;
  o.seq_len = 4;
  // Without the codes: runtime + non-block (500 params × 2) 1000 + block weights (1000 × 2) 2000
  // + activations (2 × 8 tokens × 32 × 2) 1024 + output buffer (2000 × 4 / 16) 500 + mapped pages
  // (2 blocks × 1000 × 2) 4000.
  const uint64_t without = kHostRuntimeBytes + 1000 + 2000 + 1024 + 500 + 4000;

  p.gpu_memory = 16 * 4352;  // 4352 is not above a sixteenth: the codes stay on the GPU
  detail::estimate_memory(p, o);
  EXPECT_EQ(p.memory.host_codes, 0u);
  EXPECT_EQ(p.memory.host_peak, without);

  Plan host = p;
  host.memory = {};
  host.gpu_memory = 16 * 4352 - 1;  // a sixteenth is 4351: the codes wait on the host
  detail::estimate_memory(host, o);
  EXPECT_EQ(host.memory.host_codes, 4096u);
  EXPECT_EQ(host.memory.host_peak, without + 4096);
  EXPECT_EQ(host.memory.device_peak, p.memory.device_peak);

  Plan cpu = host;  // on the CPU the codes are part of the solve's memory already
  cpu.memory = {};
  cpu.on_cpu = true;
  detail::estimate_memory(cpu, o);
  EXPECT_EQ(cpu.memory.host_codes, 0u);
}

TEST(HumanBytes, Units) {
  EXPECT_EQ(human_bytes(512), "512 B");
  EXPECT_EQ(human_bytes(1536), "1.50 KiB");
  EXPECT_EQ(human_bytes(3ull << 30), "3.00 GiB");
}

}  // namespace
}  // namespace sq::coordinator
