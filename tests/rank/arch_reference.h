// The architecture fixtures with reference activations, for tests that run one block of them:
// ../shared/fixtures/arch/<variant> and the repository's own tests/fixtures/arch/<variant>
// (issue 23; no variant is in both).
//   arch_fixture_roots(): both roots, shared first.
//   arch_fixture_dir(v): the first root holding v/reference.safetensors, "" when none does.
//   ArchReference: a fixture parameterised by variant; SetUp skips when the variant is absent,
//     dir_ is its directory, input(i) a copy of block i's recorded input.
//   kMoeFixtures: the variants whose blocks hold routed experts.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "io/safetensors/tensor.h"
#include "test_paths.h"

namespace sq::test {

inline std::vector<std::filesystem::path> arch_fixture_roots() {
  return {shared("fixtures/arch"), std::filesystem::path(source_dir()) / "tests/fixtures/arch"};
}

inline std::string arch_fixture_dir(const std::string& variant) {
  for (const auto& root : arch_fixture_roots())
    if (std::filesystem::exists(root / variant / "reference.safetensors"))
      return (root / variant).string();
  return "";
}

inline const std::vector<const char*> kMoeFixtures = {"mixtral",     "qwen3_moe",    "qwen2_moe",
                                                      "deepseek_v3", "phimoe",       "llama4_text",
                                                      "glm4_moe",    "ernie4_5_moe", "qwen3_next"};

class ArchReference : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    dir_ = arch_fixture_dir(GetParam());
    if (dir_.empty()) GTEST_SKIP() << "fixtures/arch/" << GetParam() << " absent";
    ref_ = io::SafetensorsFile::open(dir_ + "/reference.safetensors");
  }
  at::Tensor input(int64_t i) const {
    return io::view(ref_, ref_->at("block." + std::to_string(i) + ".input")).clone();
  }
  std::string dir_;
  std::shared_ptr<io::SafetensorsFile> ref_;
};

}  // namespace sq::test
