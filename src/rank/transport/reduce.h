// Cross-rank reduction and result sharing used by the block solvers in --parallel data (issue 6
// point 4).
//
// CONTRACT
//   * Reducer::sum(t) replaces t, on every rank, by the element-wise sum of every rank's t; every
//     rank gets the same bits (the transport's deterministic all_reduce_sum). Every rank must call
//     it the same number of times in the same order with tensors of the same shape and dtype
//     (float32, float64 or int64).
//   * owner(linear): the rank that solves the shared-Hessian group holding `linear` (the plan's
//     assignment); -1 when no owner is assigned — every rank then solves the group itself (same
//     reduced statistics → same bits, no broadcast).
//   * broadcast / broadcast_bytes: root's value on every rank (collective, same order everywhere).
//   * share_quantized(r, q, report_seconds, note, root, device, root_failure): root's
//     QuantizedLinear (codes, zeros, scales, g_idx, dequant, stats) plus its report fields arrive
//     bit for bit on every rank; other ranks' q is replaced (tensors allocated on `device`). When
//     the root passes a failed Status (its solve threw), every rank — root included — throws that
//     error (agreed: Status::raise, step "solve") instead, so nobody waits for tensors.
//   * A null Reducer* passed to a solver means one process: the solver's results are then exactly
//     those of the single-process code (no extra arithmetic on the statistics).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <string>

#include "rank/transport/transport.h"
#include "solvers/quant_grid.h"

namespace sq::rank {

class Reducer {
 public:
  virtual ~Reducer() = default;
  virtual void sum(at::Tensor& t) const = 0;
  // Sum of one integer over the ranks.
  int64_t sum(int64_t v) const;
  virtual int rank() const { return 0; }
  virtual int world() const { return 1; }
  virtual int owner(const std::string& linear) const { return -1; }
  virtual void broadcast(at::Tensor& t, int root) const {}
  virtual void broadcast_bytes(std::string& bytes, int root) const {}
};

using OwnerOf = std::function<int(const std::string& linear)>;

class TransportReducer : public Reducer {
 public:
  explicit TransportReducer(Transport& t, OwnerOf owner_of = {})
      : t_(t), owner_of_(std::move(owner_of)) {}
  void sum(at::Tensor& t) const override;
  using Reducer::sum;
  int rank() const override { return t_.rank(); }
  int world() const override { return t_.world(); }
  int owner(const std::string& linear) const override;
  void broadcast(at::Tensor& t, int root) const override;
  void broadcast_bytes(std::string& bytes, int root) const override;

 private:
  Transport& t_;
  OwnerOf owner_of_;
};

void share_quantized(const Reducer& r, solvers::QuantizedLinear& q, double& report_seconds,
                     std::string& note, int root, at::Device device,
                     const Status& root_failure = Status::ok());

}  // namespace sq::rank
