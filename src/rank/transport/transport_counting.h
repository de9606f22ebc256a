// A Transport that forwards every call to another and counts the payload this rank handed over
// or received — what the distributed benchmarks report as traffic per rank (issue 8).
//
// CONTRACT
//   * Behaviour, errors, timeouts and ordering are the inner transport's; only counts are added.
//   * counts(): payload bytes this rank passed in (all_reduce_sum and broadcast count the tensor's
//     bytes once per call — the wire traffic of a ring all-reduce is about 2(n−1)/n of that —
//     send counts out, recv counts in, gather_bytes counts this rank's buffer out and, on the
//     root, the others' buffers in; broadcast_bytes counts the buffer out on the root, in
//     elsewhere), and the number of calls. agree() and barrier() are control traffic: counted
//     as calls, not bytes.
#pragma once

#include <cstdint>
#include <memory>

#include "rank/transport/transport.h"

namespace sq::rank {

struct TransportCounts {
  int64_t bytes_out = 0;
  int64_t bytes_in = 0;
  int64_t calls = 0;
};

class CountingTransport final : public Transport {
 public:
  explicit CountingTransport(std::unique_ptr<Transport> inner);

  const TransportCounts& counts() const { return counts_; }

  int rank() const override { return inner_->rank(); }
  int world() const override { return inner_->world(); }
  int local_rank() const override { return inner_->local_rank(); }
  const char* name() const override { return inner_->name(); }
  at::Device device() const override { return inner_->device(); }

  void all_reduce_sum(at::Tensor& t) override;
  void broadcast(at::Tensor& t, int root) override;
  void send(const at::Tensor& t, int dst, int tag) override;
  void recv(at::Tensor& t, int src, int tag) override;
  std::vector<std::string> gather_bytes(const std::string& mine, int root) override;
  void broadcast_bytes(std::string& bytes, int root) override;
  void barrier() override;
  Status agree(const Status& mine) override;
  bool healthy() const override { return inner_->healthy(); }
  void abort_job(int code) noexcept override { inner_->abort_job(code); }
  void leave_unsynchronized() noexcept override { inner_->leave_unsynchronized(); }

 private:
  std::unique_ptr<Transport> inner_;
  TransportCounts counts_;
};

}  // namespace sq::rank
