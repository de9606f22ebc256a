// The local transport: one process, world 1. Collectives are the identity (all_reduce_sum,
// broadcast, barrier leave data as is; gather_bytes returns {mine}); send/recv have no peer and
// throw InternalError naming the misuse; roots other than 0 are InternalError.
#pragma once

#include <memory>

#include "rank/transport/transport.h"

namespace sq::rank {

std::unique_ptr<Transport> make_local_transport(const TransportOptions& options);

}  // namespace sq::rank
