// Distributed plan: block assignment by cost, calibration shares, and the JSON that rank 0
// broadcasts. The partition is the classic "linear partition" minimising the largest share; it
// is solved exactly by binary search on the bound (L ≤ a few hundred blocks).
#include "coordinator/plan/protocol.h"

#include <algorithm>
#include <functional>
#include <nlohmann/json.hpp>
#include <numeric>
#include <sstream>

#include "common/check.h"

namespace sq::coordinator {
namespace {

// Greedy fill under `bound`, leaving at least one block for each later rank. Returns the
// ranges, or an empty vector when the bound is too small.
std::vector<BlockRange> fill(const std::vector<int64_t>& c, int world, int64_t bound) {
  const int64_t L = static_cast<int64_t>(c.size());
  std::vector<BlockRange> out;
  int64_t i = 0;
  for (int r = 0; r < world; ++r) {
    BlockRange br{i, i};
    int64_t sum = 0;
    const int64_t max_last = r == world - 1 ? L : L - (world - r - 1);
    while (br.last < max_last && (br.size() == 0 || sum + c[br.last] <= bound)) sum += c[br.last++];
    if (sum > bound || br.size() == 0 || (r == world - 1 && br.last != L)) return {};
    out.push_back(br);
    i = br.last;
  }
  return out;
}

}  // namespace

const char* to_string(DistMode m) {
  return m == DistMode::kBlocks ? "blocks" : "data";
}

DistMode resolve_mode(const Options& o) {
  switch (o.parallel) {
    case ParallelMode::kBlocks:
      return DistMode::kBlocks;
    case ParallelMode::kData:
      return DistMode::kData;
    case ParallelMode::kAuto:
      break;
  }
  return o.propagate == Propagate::kQuant ? DistMode::kData : DistMode::kBlocks;
}

std::vector<BlockRange> assign_blocks(const std::vector<int64_t>& costs, int world) {
  const int64_t L = static_cast<int64_t>(costs.size());
  SQ_REQUIRE(world >= 1, "world size must be positive, got " << world);
  SQ_REQUIRE(L >= world, "--parallel blocks: " << world << " ranks but the model has only " << L
                                               << " blocks (use at most " << L
                                               << " ranks, or --parallel data)");
  int64_t lo = *std::max_element(costs.begin(), costs.end());
  int64_t hi = std::accumulate(costs.begin(), costs.end(), int64_t{0});
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (fill(costs, world, mid).empty())
      lo = mid + 1;
    else
      hi = mid;
  }
  auto out = fill(costs, world, lo);
  SQ_CHECK(!out.empty(),
           "block partition failed for " << L << " blocks over " << world << " ranks");
  return out;
}

std::pair<int64_t, int64_t> sample_share(int64_t n, int world, int rank, int64_t micro_batch) {
  // Whole micro-batches when there are enough: GPU GEMMs round differently for different row
  // counts, and in half precision such a difference compounds through GPTQ's quantized
  // propagation (issue 6 point 7); equal shapes give equal bits.
  const int64_t mb = std::max<int64_t>(1, micro_batch), units = (n + mb - 1) / mb;
  if (units >= world)
    return {std::min(n, units * rank / world * mb), std::min(n, units * (rank + 1) / world * mb)};
  return {n * rank / world, n * (rank + 1) / world};
}

int DistPlan::owner_of(int64_t block) const {
  for (size_t r = 0; r < ranges.size(); ++r)
    if (block >= ranges[r].first && block < ranges[r].last) return static_cast<int>(r);
  return -1;
}

std::string plan_digest(const Plan& plan) {
  std::ostringstream s;
  s << plan.architecture << '|' << plan.blocks.size();
  for (const auto& b : plan.blocks) {
    s << '|' << b.prefix << ':' << b.params;
    for (const auto& l : b.linears) s << (l.quantized ? '+' : '-');
  }
  for (const auto& n : plan.non_block) s << '|' << n;
  return std::to_string(std::hash<std::string>{}(s.str())) + "/" + std::to_string(s.str().size());
}

DistPlan make_dist_plan(const Plan& plan, const Options& o, int world, std::string partial_dir) {
  DistPlan d;
  d.world = world;
  // One rank is the plain single process: blocks mode (data mode would only add collectives
  // over a single share).
  d.mode = world == 1 ? DistMode::kBlocks : resolve_mode(o);
  d.partial_dir = std::move(partial_dir);
  d.digest = plan_digest(plan);
  if (d.mode == DistMode::kBlocks) {
    std::vector<int64_t> costs;
    for (const auto& b : plan.blocks) costs.push_back(std::max<int64_t>(1, b.params));
    d.ranges = assign_blocks(costs, world);
  } else {
    SQ_REQUIRE(o.calib_size >= world, "--parallel data: " << world << " ranks but only "
                                                          << o.calib_size
                                                          << " calibration samples (--calib-size)");
    if (o.method == Method::kGptq) d.groups = hessian_groups(plan, world);
  }
  return d;
}

std::string to_json(const DistPlan& d) {
  nlohmann::json j = {{"world", d.world},
                      {"mode", to_string(d.mode)},
                      {"partial_dir", d.partial_dir},
                      {"digest", d.digest},
                      {"ranges", nlohmann::json::array()}};
  for (const auto& r : d.ranges) j["ranges"].push_back({r.first, r.last});
  j["groups"] = nlohmann::json::array();
  for (const auto& g : d.groups) j["groups"].push_back({g.block, g.owner, g.cost, g.linears});
  return j.dump();
}

DistPlan dist_plan_from_json(const std::string& text) {
  DistPlan d;
  try {
    const auto j = nlohmann::json::parse(text);
    d.world = j.at("world").get<int>();
    d.mode = j.at("mode").get<std::string>() == "data" ? DistMode::kData : DistMode::kBlocks;
    d.partial_dir = j.at("partial_dir").get<std::string>();
    d.digest = j.at("digest").get<std::string>();
    for (const auto& r : j.at("ranges")) d.ranges.push_back({r.at(0), r.at(1)});
    for (const auto& g : j.at("groups"))
      d.groups.push_back({g.at(0).get<int64_t>(), g.at(3).get<std::vector<std::string>>(),
                          g.at(2).get<int64_t>(), g.at(1).get<int>()});
  } catch (const nlohmann::json::exception& e) {
    SQ_THROW(InternalError, "distributed plan from rank 0 is malformed: " << e.what());
  }
  return d;
}

std::string describe_dist_plan(const DistPlan& d, const Plan& plan) {
  std::ostringstream s;
  s << "distributed: " << d.world << " ranks, --parallel " << to_string(d.mode) << "\n";
  if (d.mode == DistMode::kBlocks) {
    for (size_t r = 0; r < d.ranges.size(); ++r) {
      int64_t cost = 0;
      for (int64_t i = d.ranges[r].first; i < d.ranges[r].last; ++i) cost += plan.blocks[i].params;
      s << "  rank " << r << ": blocks " << d.ranges[r].first << ".." << d.ranges[r].last - 1
        << " (" << d.ranges[r].size() << " blocks, " << cost << " params)\n";
    }
  } else {
    s << "  every rank walks all " << plan.blocks.size()
      << " blocks on its contiguous share of the calibration samples\n";
    s << describe_owners(d, plan);
  }
  return s.str();
}

}  // namespace sq::coordinator
