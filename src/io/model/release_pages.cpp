// Why whole pages rounded outward: a page shared with a neighbouring tensor (of the next block,
// perhaps being prefetched) is only dropped from the page tables, never lost, so at worst it is
// faulted in once more from the page cache.
#include "io/model/release_pages.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace sq::io {

uint64_t release_pages(const ModelWeights& w, const std::vector<std::string>& names) {
  static const bool enabled = [] {
    const char* e = std::getenv("SHARDQUANT_RELEASE_PAGES");
    return !(e && std::strcmp(e, "0") == 0);
  }();
  if (!enabled) return 0;
  const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  uint64_t bytes = 0;
  for (const auto& name : names)
    for (const auto& part : w.stored_parts(name)) {
      const ModelWeights::Span s = w.stored_span(part);
      if (s.size == 0) continue;
      const uintptr_t a = reinterpret_cast<uintptr_t>(s.data) & ~(page - 1);
      const uintptr_t b = (reinterpret_cast<uintptr_t>(s.data) + s.size + page - 1) & ~(page - 1);
      if (madvise(reinterpret_cast<void*>(a), b - a, MADV_DONTNEED) == 0) bytes += b - a;
    }
  return bytes;
}

}  // namespace sq::io
