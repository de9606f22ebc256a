// Every architecture fixture (../shared/fixtures/arch/<variant> and the repo's own
// tests/fixtures/arch/<variant>, issue 23): each block fed block.{i}.input reproduces
// block.{i}.output, and the whole model reproduces logits from input_ids, with relative error
// ≤ 1e-5 in fp32 on CPU. Also: every ArchSpec row has a fixture.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>

#include "common/errors.h"
#include "io/model/model_config.h"
#include "io/model/model_weights.h"
#include "io/safetensors/tensor.h"
#include "rank/arch_reference.h"
#include "rank/model/arch.h"
#include "rank/model/arch_table.h"
#include "rank/model/block.h"
#include "rank/model/model.h"
#include "test_paths.h"

namespace fs = std::filesystem;
using namespace sq;

namespace {

// Every variant with reference activations in either root (rank/arch_reference.h).
std::vector<std::string> fixture_variants() {
  std::vector<std::string> out;
  for (const auto& root : test::arch_fixture_roots()) {
    if (!fs::exists(root)) continue;
    for (const auto& e : fs::directory_iterator(root))
      if (e.is_directory() && fs::exists(e.path() / "reference.safetensors"))
        out.push_back(e.path().filename().string());
  }
  if (out.empty()) return {"<missing fixtures/arch>"};
  std::sort(out.begin(), out.end());
  return out;
}


// Where and in what precision the fixtures run: CPU fp32 by default (CI); the GPU run sets
// SQ_TEST_DEVICE=cuda and SQ_TEST_DTYPE=fp32|bf16|fp16. Tolerances are relative L2 errors:
// fp32 must match transformers to 1e-5 anywhere; the half types carry 8 (bf16) or 11 (fp16)
// mantissa bits through two blocks, so their bars are set from their unit roundoff.
struct Precision {
  const char* name;
  at::ScalarType dtype;
  double tolerance;
};
constexpr Precision kPrecisions[] = {
    {"fp32", at::kFloat, 1e-5}, {"bf16", at::kBFloat16, 3e-2}, {"fp16", at::kHalf, 5e-3}};

const Precision& test_precision() {
  const char* e = std::getenv("SQ_TEST_DTYPE");
  for (const auto& p : kPrecisions)
    if (e && std::string(e) == p.name) return p;
  return kPrecisions[0];
}

at::Device test_device() {
  const char* e = std::getenv("SQ_TEST_DEVICE");
  return e ? at::Device(e) : at::Device(at::kCPU);
}

double rel_err(const at::Tensor& out, const at::Tensor& ref) {
  return (out.to(at::kDouble) - ref.to(at::kDouble)).norm().item<double>() /
         ref.to(at::kDouble).norm().item<double>();
}

// MoE in bf16/fp16: a token whose top-k experts are near-tied can pick a different expert than
// the fp32 model (a discrete flip: that token's MLP output is then another expert's, which no
// tolerance on the whole tensor can absorb). So for MoE in half precision the routing of both
// runs is recorded (ActivationTap::on_routing), our fp32 run standing in for the reference's
// routing (it matches the reference to 1e-5), and the precision's tolerance applies to every
// row no flip can have reached: for one block, the rows whose own routing agrees (attention
// precedes the MoE); for logits, the positions before a sequence's first flip in any layer
// (causal attention carries a flip to every later position). At least kMinComparedShare of the
// rows must remain, so a broken router cannot pass by flipping everything.
constexpr double kMinComparedShare = 0.25;

// A routing change is a different expert set or a routing weight that moved by more than
// kRoutingWeightFlip (weights lie in [0,1]; bf16 rounding moves them by < 1e-2, while PhiMoE's
// sparsemixer, whose jitter mask can flip without changing the experts, moves them by ~0.1+).
constexpr double kRoutingWeightFlip = 2e-2;

struct RoutingRecorder : rank::ActivationTap {
  std::vector<at::Tensor> ids, weights;  // per MoE layer: [N,k] sorted by expert id, CPU
  bool wants(const std::string&) const override { return false; }
  void on_input(const std::string&, const at::Tensor&) override {}
  void on_routing(const std::string&, const at::Tensor& e, const at::Tensor& w) override {
    auto sorted = e.sort(-1);
    ids.push_back(std::get<0>(sorted).cpu());
    weights.push_back(w.to(at::kFloat).gather(-1, std::get<1>(sorted)).cpu());
  }
};

// [N] bool: rows whose routing differs between the runs in any recorded layer.
at::Tensor routing_flips(const RoutingRecorder& a, const RoutingRecorder& b, int64_t n) {
  at::Tensor flips = at::zeros({n}, at::kBool);
  EXPECT_EQ(a.ids.size(), b.ids.size()) << "different number of MoE layers recorded";
  for (size_t l = 0; l < std::min(a.ids.size(), b.ids.size()); ++l) {
    flips = flips.logical_or(a.ids[l].ne(b.ids[l]).any(-1));
    flips = flips.logical_or((a.weights[l] - b.weights[l]).abs().gt(kRoutingWeightFlip).any(-1));
  }
  return flips;
}

// Relative error over the rows in `keep` (rows of [..., last]); checks the share kept.
void expect_close_rows(const at::Tensor& out, const at::Tensor& ref, const at::Tensor& keep,
                       double tol, const std::string& what) {
  auto o = out.to(at::kDouble).reshape({-1, out.size(-1)});
  auto r = ref.to(at::kDouble).reshape({-1, ref.size(-1)});
  const double share = keep.to(at::kDouble).mean().item<double>();
  std::cout << "[fixture] " << what << ": routing flips reach " << 1 - share
            << " of the rows; comparing the rest\n";
  ASSERT_GE(share, kMinComparedShare) << what << ": too many rows reached by routing flips";
  const double e = rel_err(o.index({keep}), r.index({keep}));
  EXPECT_LE(e, tol) << what << ": rel err over rows without routing flips " << e;
}

bool is_moe(const io::ModelConfig& cfg) {
  return !rank::arch_spec(cfg.model_type).role("router").empty();
}

// Whole-tensor check at the precision's tolerance. Returns true when it settles the case —
// passed, or failed where no routing argument applies (dense model or fp32) — and false when a
// half-precision MoE output missed it and needs the routing analysis below.
bool whole_tensor_settles(const at::Tensor& out, const at::Tensor& ref, const Precision& p,
                          bool moe, const std::string& what) {
  const double e = rel_err(out, ref);
  std::cout << "[fixture] " << what << " (" << p.name << "): rel err " << e << "\n";
  if (e <= p.tolerance) return true;
  const bool routing_may_explain = moe && p.dtype != at::kFloat;
  if (!routing_may_explain)
    ADD_FAILURE() << what << " (" << p.name << "): rel err " << e << " > " << p.tolerance;
  return !routing_may_explain;
}

// Logits computed block by block with a routing recorder.
at::Tensor logits_recording(const rank::Model& m, const at::Tensor& ids, RoutingRecorder* rec) {
  auto ctx = rank::make_context(ids.size(0), ids.size(1), m.device());
  at::Tensor h = m.embed(ids, ctx);
  for (int64_t i = 0; i < m.num_blocks(); ++i) h = m.block(i)->forward(h, ctx, rec);
  return m.lm_head(m.final_norm(h));
}

bool has_row(const std::string& dir) {
  const std::string mt =
      nlohmann::json::parse(std::ifstream(dir + "/config.json")).value("model_type", "");
  const auto& rows = rank::arch_specs();
  return std::any_of(rows.begin(), rows.end(),
                     [&](const rank::ArchSpec& r) { return r.model_type == mt; });
}

class ArchFixture : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    dir_ = test::arch_fixture_dir(GetParam());
    if (dir_.empty()) GTEST_SKIP() << "fixture " << GetParam() << " absent";
    // The repository's issue-23 fixtures include architectures whose rows are still to come;
    // those are reported skipped (a shared fixture without a row fails below instead).
    if (dir_.rfind(test::source_dir(), 0) == 0 && !has_row(dir_))
      GTEST_SKIP() << "fixture " << GetParam() << ": model_type has no architecture row yet";
    ref_ = io::SafetensorsFile::open(dir_ + "/reference.safetensors");
  }
  at::Tensor ref(const std::string& name) const { return io::view(ref_, ref_->at(name)); }
  std::string dir_;
  std::shared_ptr<io::SafetensorsFile> ref_;
};

TEST_P(ArchFixture, BlocksReproduceReference) {
  auto cfg = io::load_model_config(dir_);
  io::ModelWeights w(dir_);
  for (int64_t i = 0; i < cfg.num_hidden_layers; ++i) {
    const Precision& p = test_precision();
    rank::Block b(w, cfg, i, test_device(), p.dtype);
    at::Tensor in = ref("block." + std::to_string(i) + ".input").to(test_device(), p.dtype);
    auto ctx = rank::make_context(in.size(0), in.size(1), test_device());
    RoutingRecorder half;
    at::Tensor out = b.forward(in, ctx, &half).cpu();
    const at::Tensor want = ref("block." + std::to_string(i) + ".output");
    const std::string what = GetParam() + " block " + std::to_string(i);
    if (whole_tensor_settles(out, want, p, is_moe(cfg), what)) continue;
    RoutingRecorder full;
    rank::Block b32(w, cfg, i, test_device(), at::kFloat);
    b32.forward(ref("block." + std::to_string(i) + ".input").to(test_device()), ctx, &full);
    const at::Tensor flips = routing_flips(full, half, in.size(0) * in.size(1));
    expect_close_rows(out, want, flips.logical_not(), p.tolerance, what);
  }
}

TEST_P(ArchFixture, ModelReproducesLogits) {
  auto cfg = io::load_model_config(dir_);
  io::ModelWeights w(dir_);
  const Precision& p = test_precision();
  rank::Model m(w, cfg, test_device(), p.dtype);
  at::Tensor ids = ref("input_ids").to(test_device());
  auto ctx = rank::make_context(ids.size(0), ids.size(1), test_device());
  EXPECT_LE(rel_err(m.embed(ids, ctx).cpu(), ref("block.0.input")), p.tolerance) << "embeddings";
  const std::string what = GetParam() + " logits";
  RoutingRecorder half;
  const at::Tensor logits = logits_recording(m, ids, &half).cpu();
  if (whole_tensor_settles(logits, ref("logits"), p, is_moe(cfg), what)) return;
  rank::Model m32(w, cfg, test_device(), at::kFloat);
  RoutingRecorder full;
  logits_recording(m32, ids, &full);
  // A flip at position t reaches every later position of its sequence.
  const int64_t B = ids.size(0), T = ids.size(1);
  at::Tensor reached = routing_flips(full, half, B * T).view({B, T}).to(at::kInt).cumsum(1) > 0;
  expect_close_rows(logits, ref("logits"), reached.logical_not().reshape({-1}), p.tolerance, what);
}

// The tap sees every quantizable linear (block_linears) of every block.
TEST_P(ArchFixture, TapSeesEveryQuantizableLinear) {
  auto cfg = io::load_model_config(dir_);
  io::ModelWeights w(dir_);
  struct Rec : rank::ActivationTap {
    std::set<std::string> seen;
    void on_input(const std::string& n, const at::Tensor&) override { seen.insert(n); }
  };
  for (int64_t i = 0; i < cfg.num_hidden_layers; ++i) {
    rank::Block b(w, cfg, i);
    at::Tensor in = ref("block." + std::to_string(i) + ".input");
    Rec tap;
    b.forward(in, rank::make_context(in.size(0), in.size(1), at::kCPU), &tap);
    // Experts are tapped only when tokens are routed to them.
    for (const auto& l : rank::block_linears(cfg, w, i))
      if (l.name.find(".experts.") == std::string::npos)
        EXPECT_TRUE(tap.seen.count(l.name)) << l.name << " never tapped";
    EXPECT_FALSE(rank::block_linears(cfg, w, i).empty());
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ArchFixture, ::testing::ValuesIn(fixture_variants()),
                         [](const ::testing::TestParamInfo<std::string>& i) {
                           std::string s = i.param;
                           for (auto& c : s)
                             if (!isalnum(static_cast<unsigned char>(c))) c = '_';
                           return s;
                         });

TEST(ArchTable, EveryRowHasAFixture) {
  if (!test::have_shared("fixtures/arch")) GTEST_SKIP() << "no fixtures";
  std::set<std::string> covered;
  for (const auto& v : fixture_variants())
    if (has_row(test::arch_fixture_dir(v))) covered.insert(io::load_model_config(test::arch_fixture_dir(v)).model_type);
  for (const auto& r : rank::arch_specs())
    EXPECT_TRUE(covered.count(r.model_type)) << "row " << r.model_type << " has no fixture";
}

TEST(ArchTable, UnknownModelTypeIsInputError) {
  EXPECT_THROW(rank::arch_spec("no_such_model"), sq::InputError);
}

}  // namespace
