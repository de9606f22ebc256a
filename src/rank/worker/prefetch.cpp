// Page-cache prefetch of the next block (prefetch.h). The reads go through a volatile sink so
// the compiler keeps them; madvise first lets the kernel issue large read-ahead requests.
#include "rank/worker/prefetch.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>

namespace sq::rank {

uint64_t page_in_tensors(const io::ModelWeights& w, const std::string& prefix) {
  const std::string p = prefix + ".";
  const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  uint64_t bytes = 0;
  volatile unsigned char sink = 0;
  for (const auto& name : w.names()) {
    if (name.compare(0, p.size(), p) != 0) continue;
    // The stored bytes (packed / FP8 / MXFP4 ones for a virtual weight): reading them is all a
    // later get() needs from the disk, and decoding them here would only burn this thread.
    for (const auto& part : w.stored_parts(name)) {
      const io::ModelWeights::Span s = w.stored_span(part);
      const unsigned char* data = s.data;
      const size_t n = s.size;
      if (n == 0) continue;
      const uintptr_t a = reinterpret_cast<uintptr_t>(data) & ~(page - 1);
      madvise(reinterpret_cast<void*>(a), reinterpret_cast<uintptr_t>(data) + n - a, MADV_WILLNEED);
      for (size_t off = 0; off < n; off += page) sink = sink + data[off];
      bytes += n;
    }
  }
  return bytes;
}

void BlockPrefetcher::prefetch(const std::string& prefix) {
  bytes_done();
  running_ = std::async(std::launch::async, [this, prefix]() -> uint64_t {
    try {
      return page_in_tensors(w_, prefix);
    } catch (...) {
      return 0;
    }
  });
}

uint64_t BlockPrefetcher::bytes_done() {
  if (running_.valid()) done_ += running_.get();
  return done_;
}

BlockPrefetcher::~BlockPrefetcher() {
  if (running_.valid()) running_.wait();
}

}  // namespace sq::rank
