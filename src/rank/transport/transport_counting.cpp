// See transport_counting.h. Counts are taken before the call, so a call that throws is counted
// too (its payload was handed over).
#include "rank/transport/transport_counting.h"

#include "common/check.h"

namespace sq::rank {
namespace {

int64_t bytes_of(const at::Tensor& t) {
  return static_cast<int64_t>(t.numel() * t.element_size());
}

}  // namespace

CountingTransport::CountingTransport(std::unique_ptr<Transport> inner) : inner_(std::move(inner)) {
  SQ_CHECK(inner_ != nullptr, "CountingTransport needs a transport");
}

void CountingTransport::all_reduce_sum(at::Tensor& t) {
  ++counts_.calls;
  counts_.bytes_out += bytes_of(t);
  counts_.bytes_in += bytes_of(t);
  inner_->all_reduce_sum(t);
}

void CountingTransport::broadcast(at::Tensor& t, int root) {
  ++counts_.calls;
  (rank() == root ? counts_.bytes_out : counts_.bytes_in) += bytes_of(t);
  inner_->broadcast(t, root);
}

void CountingTransport::send(const at::Tensor& t, int dst, int tag) {
  ++counts_.calls;
  counts_.bytes_out += bytes_of(t);
  inner_->send(t, dst, tag);
}

void CountingTransport::recv(at::Tensor& t, int src, int tag) {
  ++counts_.calls;
  counts_.bytes_in += bytes_of(t);
  inner_->recv(t, src, tag);
}

std::vector<std::string> CountingTransport::gather_bytes(const std::string& mine, int root) {
  ++counts_.calls;
  counts_.bytes_out += static_cast<int64_t>(mine.size());
  std::vector<std::string> all = inner_->gather_bytes(mine, root);
  for (size_t r = 0; r < all.size(); ++r)
    if (static_cast<int>(r) != rank()) counts_.bytes_in += static_cast<int64_t>(all[r].size());
  return all;
}

void CountingTransport::broadcast_bytes(std::string& bytes, int root) {
  ++counts_.calls;
  const bool is_root = rank() == root;
  if (is_root) counts_.bytes_out += static_cast<int64_t>(bytes.size());
  inner_->broadcast_bytes(bytes, root);
  if (!is_root) counts_.bytes_in += static_cast<int64_t>(bytes.size());
}

void CountingTransport::barrier() {
  ++counts_.calls;
  inner_->barrier();
}

Status CountingTransport::agree(const Status& mine) {
  ++counts_.calls;
  return inner_->agree(mine);
}

}  // namespace sq::rank
