// Perplexity evaluation (REFERENCE.md §7): the token stream is cut into non-overlapping windows
// of seq_len (a shorter tail is dropped), every window starts fresh (positions 0..seq_len-1), and
// the result is exp(mean NLL) over every predicted token (seq_len − 1 per window).
//
// CONTRACT (library entry point for `shardquant eval` and the pipeline's before/after report):
//   evaluate_perplexity(model, ids, opts[, provider])
// With low_memory, each block is built once and run over all windows before the next one is
// built (only one block in memory); otherwise all blocks are built once and each batch of windows
// runs through all of them. `provider` (optional) supplies the blocks instead of
// Model::block() — e.g. quantized blocks kept in memory by the pipeline.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "rank/model/model.h"

namespace sq::rank {

struct EvalOptions {
  int64_t seq_len = 512;
  int64_t max_windows = -1;  // ≤ 0: all
  int64_t batch = 4;         // windows per forward
  bool low_memory = false;
};
struct EvalResult {
  double ppl = 0, mean_nll = 0;
  int64_t tokens = 0;  // predicted tokens
  int64_t windows = 0;
  double seconds = 0;
};
using BlockProvider = std::function<std::unique_ptr<Block>(int64_t)>;

EvalResult evaluate_perplexity(const Model& model, const std::vector<int32_t>& ids,
                               const EvalOptions& opts, const BlockProvider& provider = {});

}  // namespace sq::rank
