// The calibration cache file (HDF5): datasets /tokens (int64 [n, seq_len]) and /mask (uint8
// [n, seq_len], 1 = real token) and /provenance, the UTF-8 JSON as a 1-D uint8 dataset of any
// size (caches of earlier builds hold it as a fixed-length string attribute, still read).
// Written atomically: <path>.tmp-<pid> then rename.
#pragma once

#include <ATen/ATen.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace sq::io {

struct TokenCache {
  at::Tensor tokens;  // int64 [n, seq_len]
  at::Tensor mask;    // bool [n, seq_len]
  nlohmann::json provenance;
};

// Writes (creating the parent directory). BackendError on any HDF5 or file-system failure; the
// destination is untouched then.
void write_token_cache(const std::string& path, const TokenCache& cache);

// nullopt when `path` does not exist. A file that is not HDF5, lacks the datasets (or provenance), has
// the wrong types or shapes, or whose provenance is not JSON throws BackendError naming the path
// and what is wrong (callers treat it as a cache miss).
std::optional<TokenCache> read_token_cache(const std::string& path);

}  // namespace sq::io
