// The quantization_config blocks (io/format/quant_config.h): the float-module list reaches every
// format under its own key, and compressed-tensors' actorder says which act order the checkpoint
// holds.
#include <gtest/gtest.h>

#include "io/format/quant_config.h"

using namespace sq;

namespace {

io::QuantSettings settings(io::Format f) {
  io::QuantSettings s;
  s.format = f;
  s.modules_to_not_convert = {"lm_head", "model.layers.0.mlp.gate"};
  return s;
}

TEST(QuantConfig, FloatModulesUnderEachFormatsKey) {
  const auto list = nlohmann::json::array({"lm_head", "model.layers.0.mlp.gate"});
  EXPECT_EQ(io::quantization_config(settings(io::Format::kAwqGemm))["modules_to_not_convert"],
            list);
  EXPECT_EQ(io::quantization_config(settings(io::Format::kGptqV1))["modules_to_not_convert"], list);
  const nlohmann::json ct = io::quantization_config(settings(io::Format::kCompressedPack));
  EXPECT_EQ(ct["ignore"], list);
  EXPECT_FALSE(ct.contains("modules_to_not_convert"));
  EXPECT_EQ(ct["config_groups"]["group_0"]["targets"], nlohmann::json::array({"Linear"}));
}

TEST(QuantConfig, CompressedTensorsActorder) {
  io::QuantSettings s = settings(io::Format::kCompressedPack);
  auto actorder = [&] {
    return io::quantization_config(s)["config_groups"]["group_0"]["weights"]["actorder"];
  };
  EXPECT_TRUE(actorder().is_null());
  s.scheme.act_order = true;
  EXPECT_EQ(actorder(), "group");  // g_idx = processing position / G, stored as weight_g_idx
  s.static_groups = true;
  EXPECT_EQ(actorder(), "weight");  // g_idx = k / G: nothing to store
}

}  // namespace
