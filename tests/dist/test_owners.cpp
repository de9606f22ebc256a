// Owners of the shared-Hessian groups in --parallel data with GPTQ (issue 6 point 4): the greedy
// assignment's balance bound, the groups of the house model against its linears, and the plan's
// JSON round trip and printout.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "coordinator/options/options.h"
#include "coordinator/plan/plan.h"
#include "coordinator/plan/protocol.h"
#include "test_paths.h"

namespace {

using namespace sq::coordinator;

TEST(AssignOwners, EqualCostsGoRoundRobin) {
  // With equal costs the least-loaded rank (ties: lowest) is always the next one in turn.
  const std::vector<int> o = assign_owners(std::vector<int64_t>(7, 5), 3);
  EXPECT_EQ(o, (std::vector<int>{0, 1, 2, 0, 1, 2, 0}));
  EXPECT_EQ(assign_owners({3, 9, 1}, 1), (std::vector<int>{0, 0, 0}));
}

// Data-mode sample shares: contiguous, covering 0..n once; whole micro-batches whenever there
// are at least as many micro-batches as ranks (every forward then has the single process's shape).
TEST(SampleShare, WholeMicroBatchesWhenEnough) {
  struct Case {
    int64_t n, mb;
    int world;
  };
  for (const Case c : {Case{128, 8, 2}, Case{128, 8, 3}, Case{130, 8, 4}, Case{4, 1, 4},
                       Case{4, 256, 2}, Case{5, 2, 4}, Case{3, 1, 4}}) {
    const int64_t units = (c.n + c.mb - 1) / c.mb;
    int64_t next = 0;
    for (int r = 0; r < c.world; ++r) {
      const auto [b, e] = sample_share(c.n, c.world, r, c.mb);
      EXPECT_EQ(b, next) << c.n << "/" << c.mb << "/" << c.world << " rank " << r;
      EXPECT_LE(b, e);
      if (units >= c.world) {
        EXPECT_EQ(b % c.mb, 0) << "share starts inside a micro-batch";
        EXPECT_GT(e, b) << "a rank without samples although micro-batches suffice";
      }
      next = e;
    }
    EXPECT_EQ(next, c.n);
  }
  // The split itself: 16 micro-batches of 8 over 3 ranks = 5, 5, 6 micro-batches.
  EXPECT_EQ(sample_share(128, 3, 0, 8), (std::pair<int64_t, int64_t>{0, 40}));
  EXPECT_EQ(sample_share(128, 3, 1, 8), (std::pair<int64_t, int64_t>{40, 80}));
  EXPECT_EQ(sample_share(128, 3, 2, 8), (std::pair<int64_t, int64_t>{80, 128}));
  // Fewer micro-batches than ranks: by samples.
  EXPECT_EQ(sample_share(4, 2, 1, 256), (std::pair<int64_t, int64_t>{2, 4}));
}

TEST(AssignOwners, LoadsWithinOneItemOfEachOther) {
  std::vector<int64_t> costs;
  for (int i = 0; i < 97; ++i) costs.push_back(1 + (i * 7919) % 61);
  for (int world : {2, 3, 4, 7}) {
    const std::vector<int> o = assign_owners(costs, world);
    ASSERT_EQ(o.size(), costs.size());
    std::vector<int64_t> load(world, 0);
    for (size_t i = 0; i < o.size(); ++i) {
      ASSERT_GE(o[i], 0);
      ASSERT_LT(o[i], world);
      load[o[i]] += costs[i];
    }
    const int64_t max_cost = *std::max_element(costs.begin(), costs.end());
    EXPECT_LE(*std::max_element(load.begin(), load.end()),
              *std::min_element(load.begin(), load.end()) + max_cost)
        << world << " ranks";
    EXPECT_EQ(o, assign_owners(costs, world)) << "not deterministic";
  }
}

class HouseGroups : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!sq::test::have_shared("models/house-llama-13m")) GTEST_SKIP() << "house model absent";
    const auto args = std::vector<std::string>{"--model_path",
                                               sq::test::shared("models/house-llama-13m"),
                                               "--output_dir",
                                               tmp_ / "out",
                                               "--gptq",
                                               "--parallel",
                                               "data",
                                               "--calib-size",
                                               "8"};
    o_ = parse_options(args, {}).options;
    plan_ = make_plan(o_);
  }
  sq::test::TempDir tmp_;
  Options o_;
  Plan plan_;
};

TEST_F(HouseGroups, EveryQuantizedLinearInExactlyOneGroupCostInSquared) {
  const auto groups = hessian_groups(plan_, 3);
  std::map<std::string, int64_t> in_of;
  for (const auto& b : plan_.blocks)
    for (const auto& l : b.linears)
      if (l.quantized) in_of[l.ref.name] = l.ref.in_features;
  std::set<std::string> seen;
  for (const auto& g : groups) {
    ASSERT_FALSE(g.linears.empty());
    EXPECT_GE(g.owner, 0);
    EXPECT_LT(g.owner, 3);
    for (const auto& name : g.linears) {
      ASSERT_TRUE(in_of.count(name)) << name << " is not a quantized linear";
      EXPECT_EQ(g.cost, in_of[name] * in_of[name]) << name;
      EXPECT_TRUE(seen.insert(name).second) << name << " in two groups";
      EXPECT_EQ(name.rfind(plan_.blocks[g.block].prefix + ".", 0), 0u) << name;
    }
  }
  EXPECT_EQ(seen.size(), in_of.size());
  // Linears sharing an input share a group: q, k and v of block 0 have one owner.
  EXPECT_EQ(groups.front().linears.size(), 3u);
  std::set<int> owners;
  for (const auto& g : groups) owners.insert(g.owner);
  EXPECT_EQ(owners.size(), 3u) << "some rank owns no group";
}

TEST_F(HouseGroups, DistPlanCarriesOwnersThroughJsonAndPrintsThem) {
  const DistPlan d = make_dist_plan(plan_, o_, 2, "/tmp/x.partial");
  ASSERT_FALSE(d.groups.empty());
  const DistPlan back = dist_plan_from_json(to_json(d));
  ASSERT_EQ(back.groups.size(), d.groups.size());
  for (size_t i = 0; i < d.groups.size(); ++i) {
    EXPECT_EQ(back.groups[i].block, d.groups[i].block);
    EXPECT_EQ(back.groups[i].linears, d.groups[i].linears);
    EXPECT_EQ(back.groups[i].cost, d.groups[i].cost);
    EXPECT_EQ(back.groups[i].owner, d.groups[i].owner);
  }
  const std::string text = describe_dist_plan(d, plan_);
  EXPECT_NE(text.find("rank 0: solves "), std::string::npos) << text;
  EXPECT_NE(text.find("rank 1: solves "), std::string::npos) << text;
  // Block 0's first group goes to rank 0 (all loads 0, lowest rank), the next to rank 1.
  EXPECT_NE(text.find("block 0 owners: {self_attn."), std::string::npos) << text;
  EXPECT_NE(text.find("}→r0 {"), std::string::npos) << text;
  EXPECT_NE(text.find("}→r1"), std::string::npos) << text;
}

TEST_F(HouseGroups, BlocksModeAndAwqHaveNoGroups) {
  Options awq = o_;
  awq.method = Method::kAwq;
  EXPECT_TRUE(make_dist_plan(plan_, awq, 2, "p").groups.empty());
  Options blocks = o_;
  blocks.parallel = ParallelMode::kBlocks;
  EXPECT_TRUE(make_dist_plan(plan_, blocks, 2, "p").groups.empty());
}

}  // namespace
