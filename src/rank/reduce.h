// Cross-rank reduction used by the block solvers in --parallel data (issue 6 point 4).
//
// CONTRACT
//   * Reducer::sum(t) replaces t, on every rank, by the element-wise sum of every rank's t; every
//     rank gets the same bits (the transport's deterministic all_reduce_sum). Every rank must call
//     it the same number of times in the same order with tensors of the same shape and dtype
//     (float32, float64 or int64).
//   * A null Reducer* passed to a solver means one process: the solver's results are then exactly
//     those of the single-process code (no extra arithmetic on the statistics).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

#include "rank/transport.h"

namespace sq::rank {

class Reducer {
 public:
  virtual ~Reducer() = default;
  virtual void sum(at::Tensor& t) const = 0;
  // Sum of one integer over the ranks.
  int64_t sum(int64_t v) const;
};

class TransportReducer : public Reducer {
 public:
  explicit TransportReducer(Transport& t) : t_(t) {}
  void sum(at::Tensor& t) const override;
  using Reducer::sum;

 private:
  Transport& t_;
};

}  // namespace sq::rank
