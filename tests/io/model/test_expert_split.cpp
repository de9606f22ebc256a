// Llama 4's fused expert tensors read per expert (io/model/expert_split.h): every element of every
// virtual weight is checked against the fused tensor by explicit index arithmetic, the fused
// tensors are hidden, and malformed layouts are refused with the tensor named.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "common/errors.h"
#include "io/model/model_weights.h"
#include "io/output/safetensors_writer.h"
#include "test_paths.h"

namespace {

using namespace sq;

const std::string kC = "model.layers.1.feed_forward.experts";

void write_model(const std::string& dir, const std::string& model_type,
                 std::vector<io::TensorToWrite> tensors) {
  io::write_safetensors(dir + "/model.safetensors", std::move(tensors));
  std::ofstream(dir + "/config.json") << nlohmann::json{{"model_type", model_type}}.dump();
}

TEST(ExpertSplit, EveryExpertSliceEqualsItsFusedElements) {
  const int64_t E = 3, H = 4, I = 5;
  // Distinct values: element (e, h, j) of gate_up is e·1000 + h·100 + j; of down e·1000 + i·100 +
  // h.
  at::Tensor gate_up = at::empty({E, H, 2 * I}), down = at::empty({E, I, H});
  for (int64_t e = 0; e < E; ++e)
    for (int64_t h = 0; h < H; ++h) {
      for (int64_t j = 0; j < 2 * I; ++j) gate_up[e][h][j] = float(e * 1000 + h * 100 + j);
      for (int64_t i = 0; i < I; ++i) down[e][i][h] = float(e * 1000 + i * 100 + h);
    }
  for (const char* type : {"llama4_text", "llama4"}) {
    SCOPED_TRACE(type);
    test::TempDir dir;
    write_model(dir.path(), type,
                {{kC + ".gate_up_proj", gate_up.to(at::kBFloat16), {}},
                 {kC + ".down_proj", down, {}},
                 {"model.norm.weight", at::ones({H}), {}}});
    const io::ModelWeights w(dir.path());
    EXPECT_FALSE(w.has(kC + ".gate_up_proj"));
    EXPECT_FALSE(w.has(kC + ".down_proj"));
    EXPECT_EQ(w.names().size(), size_t(3 * E + 1));
    for (int64_t e = 0; e < E; ++e) {
      const std::string p = kC + "." + std::to_string(e) + ".";
      ASSERT_TRUE(w.has(p + "gate_proj.weight"));
      EXPECT_EQ(w.info(p + "gate_proj.weight").shape, std::vector<int64_t>({I, H}));
      EXPECT_EQ(w.info(p + "gate_proj.weight").dtype, io::DType::BF16);
      EXPECT_EQ(w.info(p + "down_proj.weight").shape, std::vector<int64_t>({H, I}));
      EXPECT_EQ(w.info(p + "down_proj.weight").dtype, io::DType::F32);
      EXPECT_EQ(w.stored_parts(p + "up_proj.weight"),
                std::vector<std::string>{kC + ".gate_up_proj"});
      const at::Tensor g = w.get_as(p + "gate_proj.weight", at::kFloat);
      const at::Tensor u = w.get_as(p + "up_proj.weight", at::kFloat);
      const at::Tensor d = w.get_as(p + "down_proj.weight", at::kFloat);
      ASSERT_TRUE(g.is_contiguous() && u.is_contiguous() && d.is_contiguous());
      for (int64_t i = 0; i < I; ++i)
        for (int64_t h = 0; h < H; ++h) {
          // gate_up is stored in bf16: the expected value is the bf16 rounding of its integer.
          const float eg =
              at::tensor(float(e * 1000 + h * 100 + i)).to(at::kBFloat16).item<float>();
          const float eu =
              at::tensor(float(e * 1000 + h * 100 + I + i)).to(at::kBFloat16).item<float>();
          EXPECT_EQ(g[i][h].item<float>(), eg) << e << " " << i << " " << h;
          EXPECT_EQ(u[i][h].item<float>(), eu) << e << " " << i << " " << h;
          EXPECT_EQ(d[h][i].item<float>(), float(e * 1000 + i * 100 + h))
              << e << " " << i << " " << h;
        }
    }
  }
}

TEST(ExpertSplit, OtherModelTypesKeepFusedTensors) {
  test::TempDir dir;
  write_model(dir.path(), "gpt_oss",
              {{kC + ".gate_up_proj", at::zeros({2, 4, 6}), {}},
               {kC + ".down_proj", at::zeros({2, 3, 4}), {}}});
  const io::ModelWeights w(dir.path());
  EXPECT_TRUE(w.has(kC + ".gate_up_proj"));
  EXPECT_FALSE(w.has(kC + ".0.gate_proj.weight"));
}

TEST(ExpertSplit, MalformedLayoutsAreRefusedNamingTheTensor) {
  struct Case {
    const char* what;
    std::vector<io::TensorToWrite> tensors;
    const char* expect;
  };
  const std::vector<Case> cases = {
      {"no sibling", {{kC + ".gate_up_proj", at::zeros({2, 4, 6}), {}}}, "without its sibling"},
      {"odd 2I",
       {{kC + ".gate_up_proj", at::zeros({2, 4, 5}), {}},
        {kC + ".down_proj", at::zeros({2, 3, 4}), {}}},
       "expected [experts, hidden, 2·intermediate], got [2, 4, 5]"},
      {"down disagrees",
       {{kC + ".gate_up_proj", at::zeros({2, 4, 6}), {}},
        {kC + ".down_proj", at::zeros({2, 4, 3}), {}}},
       "down_proj: expected [2, 3, 4]"},
      {"not floating",
       {{kC + ".gate_up_proj", at::zeros({2, 4, 6}, at::kInt), {}},
        {kC + ".down_proj", at::zeros({2, 3, 4}), {}}},
       "gate_up_proj: stored as I32, expected F32, BF16 or F16"},
      {"both layouts",
       {{kC + ".gate_up_proj", at::zeros({2, 4, 6}), {}},
        {kC + ".down_proj", at::zeros({2, 3, 4}), {}},
        {kC + ".1.up_proj.weight", at::zeros({3, 4}), {}}},
       "experts.1.up_proj.weight is stored beside the fused"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    test::TempDir dir;
    write_model(dir.path(), "llama4_text", c.tensors);
    try {
      io::ModelWeights w(dir.path());
      ADD_FAILURE() << "accepted";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(c.expect), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("config.json"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
