// The distributed plan (issue 6 point 2): what rank 0 decides once and broadcasts as JSON so that
// every rank works from the same assignment.
//
// CONTRACT
//   * assign_blocks(costs, world) splits blocks 0..L-1 into `world` contiguous, non-empty ranges
//     minimising the largest range cost (ties: earlier ranks take as many as the bound allows). L <
//     world is an InputError (a rank would have nothing to do).
//   * sample_share(n, world, r, mb) is rank r's contiguous calibration share [begin, end) in
//     data mode; shares cover 0..n exactly once. With u = ceil(n/mb) micro-batches of mb samples
//     and u ≥ world, ranks take whole micro-batches (rank r: floor(u·r/world) ..
//     floor(u·(r+1)/world), in samples, the last one clipped at n), so every forward and every
//     per-batch Hessian has exactly the shape the single process gives it. With u < world the
//     split is by samples: floor(n·r/world) .. floor(n·(r+1)/world).
//   * DistPlan round-trips through to_json()/from_json() exactly; from_json() of a JSON that is
//     not a DistPlan is an InternalError naming the missing field.
//   * assign_owners(costs, world) gives each item (in order) to the rank with the smallest load
//     so far (load = sum of its items' costs; ties: the lowest rank). Pure and deterministic.
//   * Data mode with GPTQ: DistPlan::groups lists every shared-Hessian group (the linears of one
//     GPTQ input set that will be quantized, in gptq_steps order over all blocks) with its cost
//     in² and its owner — assign_owners over the whole model, so loads balance across blocks and
//     a step with several groups (MoE experts) spreads them over the ranks. The owner solves the
//     group and broadcasts the results; every other rank only contributes Hessian sums.
//   * plan_digest(plan) is a string that changes when the block list, the non-block tensor list or
//     the architecture differ: ranks that rebuilt the plan from the same command line compare it
//     with rank 0's to catch a rank that sees a different model directory.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "coordinator/options/options.h"
#include "coordinator/plan/plan.h"

namespace sq::coordinator {

enum class DistMode { kBlocks, kData };
const char* to_string(DistMode m);

// --parallel auto: data with quantized propagation (GPTQ's default, or AWQ with --propagate
// quant: a relay would be serial), else blocks.
DistMode resolve_mode(const Options& o);

struct BlockRange {
  int64_t first = 0;  // inclusive
  int64_t last = 0;   // exclusive
  int64_t size() const { return last - first; }
};

std::vector<BlockRange> assign_blocks(const std::vector<int64_t>& costs, int world);
std::pair<int64_t, int64_t> sample_share(int64_t n, int world, int rank, int64_t micro_batch);
std::vector<int> assign_owners(const std::vector<int64_t>& costs, int world);

// One shared-Hessian group of --parallel data with GPTQ.
struct HessianGroup {
  int64_t block = 0;
  std::vector<std::string> linears;  // full prefixes, the step's set minus kept linears
  int64_t cost = 0;                  // in_features²
  int owner = 0;                     // the rank that solves it
};

struct DistPlan {
  int world = 1;
  DistMode mode = DistMode::kBlocks;
  std::vector<BlockRange> ranges;    // blocks mode: rank r's blocks; data mode: unused
  std::string partial_dir;           // <out>.partial, created by rank 0
  std::string digest;                // plan_digest() of rank 0's plan
  std::vector<HessianGroup> groups;  // data mode with GPTQ: owners of the Hessian groups
  // Rank that owns block i (blocks mode).
  int owner_of(int64_t block) const;
};

std::string plan_digest(const Plan& plan);
DistPlan make_dist_plan(const Plan& plan, const Options& o, int world, std::string partial_dir);
std::string to_json(const DistPlan& d);
DistPlan dist_plan_from_json(const std::string& text);
// The lines --dry-run adds under mpirun: mode, and per rank its blocks and their cost.
std::string describe_dist_plan(const DistPlan& d, const Plan& plan);

// The Hessian groups of every block with owners (see CONTRACT); reads the safetensors headers of
// plan.model_dir for the GPTQ steps.
std::vector<HessianGroup> hessian_groups(const Plan& plan, int world);
// Data mode's owner lines: per rank its group count and load, then every block's groups as
// "{q_proj,k_proj,v_proj}→r0" (the first blocks only on deep models). "" without groups.
std::string describe_owners(const DistPlan& d, const Plan& plan);

}  // namespace sq::coordinator
