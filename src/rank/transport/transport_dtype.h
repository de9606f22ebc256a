// Dtype rules shared by the transports: which dtypes all_reduce_sum accepts (a table), and the
// checks that name the rank and operation when a tensor breaks them.
#pragma once

#include <ATen/ATen.h>

namespace sq::rank {

// InternalError unless t is float32, float64 or int64 ("<transport> rank <r>: <op> ...").
void require_reducible(const at::Tensor& t, const char* transport, int rank, const char* op);
// True for dtypes whose sum is exact (the order of addition cannot change the bits).
bool exact_sum_dtype(at::ScalarType type);

}  // namespace sq::rank
