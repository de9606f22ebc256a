#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "io/model/model_config.h"
#include "io/model/model_weights.h"
#include "test_paths.h"

using namespace sq;

TEST(ModelWeights, HouseModelMatchesIndependentChecksums) {
  if (!test::have_shared("models/house-llama-13m")) GTEST_SKIP() << "shared model missing";
  io::ModelWeights w(test::shared("models/house-llama-13m"));
  std::ifstream in(test::shared("models/house-llama-13m.checksums.json"));
  auto sums = nlohmann::json::parse(in);
  ASSERT_EQ(sums.size(), w.names().size());
  for (auto it = sums.begin(); it != sums.end(); ++it) {
    at::Tensor t = w.get(it.key()).to(at::kDouble);
    double s = t.sum().item<double>(), s2 = (t * t).sum().item<double>();
    double es = it.value()["sum"], es2 = it.value()["sum_sq"];
    EXPECT_NEAR(s, es, 1e-9 * std::max(1.0, std::abs(es))) << it.key();
    EXPECT_NEAR(s2, es2, 1e-9 * std::max(1.0, std::abs(es2))) << it.key();
  }
}
