// Fault injection for the failure-agreement tests (issue 6 point 8). The environment variable
//   SHARDQUANT_FAULT="rank=<r|*>,step=<name>[,mode=throw|hang|kill][,code=2|3|4]"
// makes fault_point(r, name) on the matching rank throw an sq::Error of `code` (default 4,
// internal) naming the rank and step, or, with mode=hang, block forever (to exercise timeouts),
// or, with mode=kill, SIGKILL its own process (a rank lost mid-collective, issue 24).
// Unset or empty: fault_point does nothing. A malformed value is an InputError.
#pragma once

#include <string>

namespace sq::rank {

void fault_point(int rank, const std::string& step);

}  // namespace sq::rank
