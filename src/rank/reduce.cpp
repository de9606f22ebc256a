// Reductions go through the transport on its own device (host memory for MPI) and come back to
// the caller's device; the transport's sum order is fixed, so every rank sees identical bits.
#include "rank/reduce.h"

namespace sq::rank {

int64_t Reducer::sum(int64_t v) const {
  at::Tensor t = at::full({1}, v, at::kLong);
  sum(t);
  return t.item<int64_t>();
}

void TransportReducer::sum(at::Tensor& t) const {
  if (t_.world() <= 1) return;
  t_.all_reduce_sum(t);
}

}  // namespace sq::rank
