// Rewriting GPTQ qzeros from checkpoint format v1 (zero − 1 stored) to v2 (true zeros) in place
// inside written safetensors shards. The tensors keep their size and offsets, only their bytes
// change, so a run that discovers an asymmetric zero of 0 late can switch the whole checkpoint
// to gptq_v2 without rewriting its shards.
#pragma once

#include <string>
#include <vector>

namespace sq::io {

// For each name in `qzeros_names` found in the shard at `path`, replaces the stored v1 values v
// by (v + 1) mod 2^bits. Returns how many tensors were rewritten.
int rewrite_qzeros_v1_to_v2(const std::string& path, const std::vector<std::string>& qzeros_names,
                            int bits);

}  // namespace sq::io
