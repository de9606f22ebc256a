// The transport kinds (transport.h), in a header of their own so that the coordinator's options
// name them without pulling in the transport interface and LibTorch.
#pragma once

namespace sq::rank {

enum class TransportKind { kLocal, kMpi, kNccl };

}  // namespace sq::rank
