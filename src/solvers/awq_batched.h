// The AWQ scale search of many experts at once (issue 21 point 3, MoE at speed): each routed
// expert's up → down group is its own search, over the same α grid, with a loss that is a
// quadratic form in its weight change (solvers/awq_gram.h). One expert at a time, a 128-expert
// block spends its time launching hundreds of tiny operations and waiting for one read-back per
// expert; here the candidates of all experts are made per α in one pass, the losses of a chunk of
// equally shaped experts come from one batched product, and the host reads all losses once.
//
// CONTRACT
//   awq_search_experts(in, n_grid, duo, scheme, dtype, chunk_bytes) → one AwqSearchResult per
//   expert, in input order. Expert e's search is awq_search_scales (round 1 only: no --iter
//   refinement) of x_mean[e], w_mean[e] with the loss
//       AwqGramLoss(x[e]).loss(awq_trial_weight_as(w[e], s, scheme, dtype), w[e]) / (rows_e · N)
//   — the per-expert path of rank/quant/block_awq.cpp. Candidates are bit-identical to that path;
//   the losses are the same sums in another order (batched products, per-expert sums over one
//   tensor): within kAwqGramRelTol of the per-expert loss (tests/solvers/test_awq_batched.cpp),
//   so a near-tie may pick a neighbouring α.
//   * Every expert must share w's shape [N, K] and dtype; x[e] is [rows_e, K] with rows_e > 0.
//   * Temporaries stay within about chunk_bytes (float32 copies of a chunk's weights, trial
//     weights and products, plus its Gram matrices); at least one expert per chunk.
//   * The group names label errors (a non-finite loss at every α: awq_pick_best's message).
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "solvers/awq.h"

namespace sq::solvers {

struct AwqExpertInputs {
  std::vector<at::Tensor> x;       // per expert: its routed input rows [rows_e, K]
  std::vector<at::Tensor> w;       // per expert: the linear's weight [N, K] (block dtype)
  std::vector<at::Tensor> x_mean;  // per expert [K] float32 (awq_x_mean of x[e])
  std::vector<at::Tensor> w_mean;  // per expert [K] float32 (awq_w_mean of {w[e]})
  std::vector<std::string> names;  // per expert: the group's name for messages
};

std::vector<AwqSearchResult> awq_search_experts(const AwqExpertInputs& in, int n_grid, bool duo,
                                                const QuantScheme& scheme, at::ScalarType dtype,
                                                uint64_t chunk_bytes);

}  // namespace sq::solvers
