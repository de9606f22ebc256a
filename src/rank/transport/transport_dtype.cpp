#include "rank/transport/transport_dtype.h"

#include "common/check.h"

namespace sq::rank {
namespace {

struct ReducibleRow {
  at::ScalarType type;
  bool exact;  // integer sums are associative: any reduction order gives the same bits
};

constexpr ReducibleRow kReducible[] = {
    {at::kFloat, false},
    {at::kDouble, false},
    {at::kLong, true},
};

const ReducibleRow* find_row(at::ScalarType type) {
  for (const auto& r : kReducible)
    if (r.type == type) return &r;
  return nullptr;
}

}  // namespace

void require_reducible(const at::Tensor& t, const char* transport, int rank, const char* op) {
  SQ_CHECK(t.defined(), transport << " rank " << rank << ": " << op << " of an undefined tensor");
  SQ_CHECK(find_row(t.scalar_type()) != nullptr,
           transport << " rank " << rank << ": " << op << " supports float32, float64 and int64, "
                     << "got " << t.scalar_type() << " tensor of shape " << t.sizes());
}

bool exact_sum_dtype(at::ScalarType type) {
  const ReducibleRow* r = find_row(type);
  return r != nullptr && r->exact;
}

}  // namespace sq::rank
