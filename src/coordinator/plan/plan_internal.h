// Pieces of make_plan() in their own translation units (internal to the coordinator).
#pragma once

#include "coordinator/plan/plan.h"
#include "io/model/model_weights.h"

namespace sq::coordinator::detail {

// Every tensor the shape rules (rank/model/arch_shapes.h) imply is present with the implied shape
// (plan_shapes.cpp). InputError naming file, tensor, expected and actual.
void check_shapes(const io::ModelConfig& cfg, const io::ModelWeights& w);

// Fills plan.memory from the plan's blocks and the options (formula in plan.h).
void estimate_memory(Plan& plan, const Options& opts);

// The float-module facts of plan.h (plan_float.cpp), after --keep-fp-layers marked plan.blocks:
// refuses a keep that splits a fused set or a format the architecture's modules cannot hold
// (InputError naming the entry / format), then fills plan.float_modules and plan.model_dtype.
void plan_float_modules(Plan& plan, const Options& opts, const io::ModelWeights& w);

}  // namespace sq::coordinator::detail
