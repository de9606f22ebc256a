// Next-block prefetch: while block i is solved, a background thread pages block i+1's tensors
// of the mmapped shards into the page cache (madvise WILLNEED, then one read per page), so
// building block i+1 copies from memory instead of waiting on the disk.
//
// CONTRACT: prefetch(prefix) starts paging every tensor whose name starts with "<prefix>."
// after the previous request finished (requests never overlap; one thread). It never throws
// (a failure only loses the speed-up). The destructor waits for the running request.
// `w` must outlive the prefetcher.
#pragma once

#include <future>
#include <string>

#include "io/model/model_weights.h"

namespace sq::rank {

class BlockPrefetcher {
 public:
  explicit BlockPrefetcher(const io::ModelWeights& w) : w_(w) {}
  ~BlockPrefetcher();
  BlockPrefetcher(const BlockPrefetcher&) = delete;
  BlockPrefetcher& operator=(const BlockPrefetcher&) = delete;

  void prefetch(const std::string& prefix);
  // Bytes paged by finished requests (for the log / tests).
  uint64_t bytes_done();

 private:
  const io::ModelWeights& w_;
  std::future<uint64_t> running_;
  uint64_t done_ = 0;
};

// Pages the tensors under `prefix` synchronously; returns their byte count.
uint64_t page_in_tensors(const io::ModelWeights& w, const std::string& prefix);

}  // namespace sq::rank
