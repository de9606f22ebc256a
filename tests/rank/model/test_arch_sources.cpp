// The ArchSpec rows are the one list of architectures: config parsing accepts exactly the rows'
// model_types, every row has shape rules, the shape rules and the synthetic layouts agree with
// the transformers-made fixtures (../shared/fixtures/arch), and synth writes every row whose
// layout it knows, refusing the rest by name.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "common/errors.h"
#include "io/model/model_config.h"
#include "io/model/model_weights.h"
#include "rank/model/arch.h"
#include "rank/model/arch_shapes.h"
#include "rank/model/arch_table.h"
#include "rank/synth/synth.h"
#include "test_paths.h"

namespace sq::rank {
namespace {

namespace fs = std::filesystem;

nlohmann::json minimal_config(const std::string& model_type) {
  return {{"model_type", model_type}, {"hidden_size", 32},
          {"num_hidden_layers", 2},   {"num_attention_heads", 4},
          {"num_key_value_heads", 2}, {"intermediate_size", 64},
          {"vocab_size", 128},        {"max_position_embeddings", 64}};
}

std::string error_of(const nlohmann::json& j) {
  try {
    parse_model_config(j, "test/config.json");
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

bool has_row(const fs::path& dir) {
  const std::string mt =
      nlohmann::json::parse(std::ifstream(dir / "config.json")).value("model_type", "");
  const auto& rows = arch_specs();
  return std::any_of(rows.begin(), rows.end(),
                     [&](const ArchSpec& r) { return r.model_type == mt; });
}

// Fixture directories (a variant may share its model_type with others: llama_bias_tied): the
// shared folder's, and the repository's (tests/fixtures/arch, issue 23) whose model_type has a
// row already.
std::vector<fs::path> fixtures() {
  std::vector<fs::path> out;
  const fs::path root = test::shared("fixtures/arch");
  if (fs::exists(root))
    for (const auto& e : fs::directory_iterator(root))
      if (fs::exists(e.path() / "config.json")) out.push_back(e.path());
  const fs::path repo = fs::path(test::source_dir()) / "tests/fixtures/arch";
  if (fs::exists(root) && fs::exists(repo))
    for (const auto& e : fs::directory_iterator(repo))
      if (fs::exists(e.path() / "config.json") && has_row(e.path())) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

TEST(ArchSources, EveryRowParsesAndHasShapeRules) {
  ASSERT_GE(arch_specs().size(), 21u);
  for (const auto& row : arch_specs()) {
    SCOPED_TRACE(row.model_type);
    io::ModelConfig c;
    ASSERT_NO_THROW(c = parse_model_config(minimal_config(row.model_type), "test/config.json"));
    EXPECT_EQ(c.model_type, row.model_type);
    const auto roles = shaped_roles(row);
    EXPECT_NE(std::find(roles.begin(), roles.end(), "embed"), roles.end());
    // Every block role with a rule names a tensor of the row.
    for (const auto& r : roles)
      EXPECT_TRUE(!model_tensor(row, r).empty() || !row.role(r).empty()) << r;
  }
}

TEST(ArchSources, ModelTypeWithoutARowIsRefusedNamingFileAndRows) {
  const std::string msg = error_of(minimal_config("bloom"));
  EXPECT_NE(msg.find("test/config.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("unsupported model_type \"bloom\""), std::string::npos) << msg;
  for (const auto& row : arch_specs())
    EXPECT_NE(msg.find(row.model_type), std::string::npos) << row.model_type << ": " << msg;
  // io parses any model_type: judging support is the rows' business.
  EXPECT_EQ(io::parse_model_config(minimal_config("bloom"), "x").model_type, "bloom");
  EXPECT_THROW(arch_spec("bloom"), InputError);
}

// The rules' shapes are the fixtures' shapes wherever a rule covers a tensor.
TEST(ArchSources, ShapeRulesHoldOnEveryFixture) {
  const auto dirs = fixtures();
  if (dirs.empty()) GTEST_SKIP() << "no fixtures/arch";
  std::set<std::string> types;
  for (const auto& d : dirs) {
    SCOPED_TRACE(d.filename().string());
    const auto cfg = load_model_config(d.string());
    const io::ModelWeights w(d.string());
    const ArchSpec& row = arch_spec(cfg.model_type);
    types.insert(cfg.model_type);
    int checked = 0;
    for (const auto& role : shaped_roles(row)) {
      const std::string model_name = model_tensor(row, role);
      if (!model_name.empty()) {
        if (!w.has(model_name)) {
          EXPECT_EQ(role, "lm_head");
          EXPECT_TRUE(cfg.tie_word_embeddings);
          continue;
        }
        EXPECT_EQ(w.info(model_name).shape, implied_shape(cfg, role, 0)->shape) << model_name;
        ++checked;
        continue;
      }
      for (int64_t b = 0; b < cfg.num_hidden_layers; ++b) {
        const auto want = implied_shape(cfg, role, b);
        if (!want) continue;
        const std::string name = block_prefix(cfg, b) + "." + row.role(role) + ".weight";
        // A routed-expert rule holds for every expert of the block.
        const bool per_expert = name.find("{e}") != std::string::npos;
        const int64_t n = per_expert ? num_experts(cfg, w, b) : 1;
        if (per_expert) EXPECT_GT(n, 0) << name;
        for (int64_t e = 0; e < n; ++e) {
          const std::string t = per_expert ? expand_expert(name, e) : name;
          ASSERT_TRUE(w.has(t)) << t;
          EXPECT_EQ(w.info(t).shape, want->shape) << t << " (" << want->why << ")";
          ++checked;
        }
      }
    }
    EXPECT_GT(checked, 0);
  }
  for (const auto& row : arch_specs()) EXPECT_TRUE(types.count(row.model_type)) << row.model_type;
}

// synth_tensors() of a fixture's config.json lists exactly the fixture's tensors and shapes.
TEST(ArchSources, SynthLayoutsAreTheFixtures) {
  const auto dirs = fixtures();
  if (dirs.empty()) GTEST_SKIP() << "no fixtures/arch";
  std::set<std::string> written;
  for (const auto& d : dirs) {
    SCOPED_TRACE(d.filename().string());
    const auto cfg = load_model_config(d.string());
    if (!synth_writes(arch_spec(cfg.model_type))) continue;
    std::map<std::string, std::vector<int64_t>> want, got;
    const io::ModelWeights w(d.string());
    // Multimodal rows: synth writes the language model; the vision tower is not its business.
    const std::string& lp = arch_spec(cfg.model_type).language_prefix;
    for (const auto& n : w.names())
      if (n.compare(0, lp.size(), lp) == 0) want[n] = w.info(n).shape;
    for (const auto& t : synth_tensors(cfg.raw)) EXPECT_TRUE(got.emplace(t.name, t.shape).second);
    for (const auto& [n, shape] : want)
      EXPECT_TRUE(got.count(n) && got.at(n) == shape) << n << " not written as in the fixture";
    for (const auto& [n, shape] : got) EXPECT_TRUE(want.count(n)) << n << " written, not in it";
    written.insert(cfg.model_type);
  }
  EXPECT_EQ(std::vector<std::string>(written.begin(), written.end()), synth_model_types());
}

TEST(ArchSources, SynthRefusesALayoutItDoesNotWriteNamingTheOnesItDoes) {
  for (const auto& row : arch_specs()) {
    if (synth_writes(row)) continue;
    SCOPED_TRACE(row.model_type);
    try {
      synth_tensors(minimal_config(row.model_type));
      ADD_FAILURE() << "expected InputError";
    } catch (const InputError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(row.model_type), std::string::npos) << msg;
      for (const auto& t : synth_model_types()) EXPECT_NE(msg.find(t), std::string::npos) << msg;
    }
  }
}

}  // namespace
}  // namespace sq::rank
