// The quantization run behind `shardquant --model_path … ` (without --dry-run).
//
// CONTRACT: called by app.cpp after parse_options() and make_plan() succeeded, with logging
// already set up (console + the log file). Returns the process exit code; throws sq::Error on
// failure. The output directory is written as `<output>.partial` and renamed at the end.
#pragma once

#include "coordinator/options.h"
#include "coordinator/plan.h"

namespace sq::coordinator {

int run_quantize(const Options& opts, const Plan& plan);

}  // namespace sq::coordinator
