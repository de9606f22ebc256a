// Owners of the shared-Hessian groups in --parallel data with GPTQ (issue 6 point 4). A group's
// solve (Cholesky + column sweep) costs about in² per output row, and its Hessian holds in²
// values, so in² is the balancing weight. Assignment runs over the whole model in solve order:
// every rank rebuilds the same list from its own (digest-checked) plan, and rank 0's copy travels
// with the distributed plan, so the owners are fixed before any work starts.
#include <algorithm>
#include <map>
#include <sstream>

#include "common/check.h"
#include "coordinator/plan/protocol.h"
#include "io/model/model_weights.h"
#include "rank/model/arch_table.h"

namespace sq::coordinator {
namespace {

// Deep models print the owners of this many blocks; the pattern repeats after that.
constexpr size_t kBlocksShown = 2;

}  // namespace

std::vector<int> assign_owners(const std::vector<int64_t>& costs, int world) {
  SQ_REQUIRE(world >= 1, "world size must be positive, got " << world);
  std::vector<int64_t> load(world, 0);
  std::vector<int> out;
  out.reserve(costs.size());
  for (int64_t c : costs) {
    const int r = static_cast<int>(std::min_element(load.begin(), load.end()) - load.begin());
    load[r] += c;
    out.push_back(r);
  }
  return out;
}

std::vector<HessianGroup> hessian_groups(const Plan& plan, int world) {
  io::ModelWeights w(plan.model_dir);
  std::vector<HessianGroup> groups;
  for (const auto& b : plan.blocks) {
    std::map<std::string, const PlannedLinear*> by_name;
    for (const auto& l : b.linears) by_name[l.ref.name] = &l;
    for (const auto& step : rank::gptq_steps(plan.config, w, b.index))
      for (const auto& set : step.input_sets) {
        HessianGroup g;
        g.block = b.index;
        for (const auto& name : set) {
          auto it = by_name.find(name);
          if (it == by_name.end() || !it->second->quantized) continue;
          g.linears.push_back(name);
          g.cost = it->second->ref.in_features * it->second->ref.in_features;
        }
        if (!g.linears.empty()) groups.push_back(std::move(g));
      }
  }
  std::vector<int64_t> costs;
  for (const auto& g : groups) costs.push_back(g.cost);
  const std::vector<int> owners = assign_owners(costs, world);
  for (size_t i = 0; i < groups.size(); ++i) groups[i].owner = owners[i];
  return groups;
}

std::string describe_owners(const DistPlan& d, const Plan& plan) {
  if (d.groups.empty()) return "";
  std::ostringstream s;
  std::vector<int64_t> count(d.world, 0), load(d.world, 0);
  for (const auto& g : d.groups) {
    SQ_CHECK(g.owner >= 0 && g.owner < d.world,
             "Hessian group owner " << g.owner << " outside 0.." << d.world - 1);
    ++count[g.owner];
    load[g.owner] += g.cost;
  }
  for (int r = 0; r < d.world; ++r)
    s << "  rank " << r << ": solves " << count[r] << " Hessian groups (load " << load[r]
      << " in²)\n";
  int64_t shown_block = -1;
  size_t shown = 0;
  for (const auto& g : d.groups) {
    if (g.block != shown_block) {
      if (shown == kBlocksShown) break;
      s << (shown_block >= 0 ? "\n" : "") << "  block " << g.block << " owners:";
      shown_block = g.block;
      ++shown;
    }
    const std::string pre = plan.blocks.at(g.block).prefix + ".";
    s << " {";
    for (size_t i = 0; i < g.linears.size(); ++i)
      s << (i ? "," : "")
        << (g.linears[i].rfind(pre, 0) == 0 ? g.linears[i].substr(pre.size()) : g.linears[i]);
    s << "}→r" << g.owner;
  }
  s << "\n";
  if (plan.blocks.size() > kBlocksShown)
    s << "  (" << plan.blocks.size() - kBlocksShown
      << " more blocks, owners chosen the same way)\n";
  return s.str();
}

}  // namespace sq::coordinator
