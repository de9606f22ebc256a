// Giving back the mapped pages of tensors already copied out of the shards, so that the
// process's resident memory does not grow with every block it reads (issue 21 point 5).
//
// CONTRACT
//   release_pages(w, names): madvise(MADV_DONTNEED) over every whole page covering the stored
//   bytes of `names` (for a virtual weight: its packed / FP8 / MXFP4 tensors). The shards are
//   mapped read-only and shared, so this only drops the process's page-table entries: the data is
//   unchanged, the page cache keeps it, and a later read of the same tensor faults it back in
//   (a zero-copy view still alive reads correct bytes). Returns the bytes advised; 0 when
//   SHARDQUANT_RELEASE_PAGES=0 (kept mapped, the behaviour before). Never throws for madvise
//   failures (the pages then just stay resident).
//   Call it only with tensors whose data the caller has copied (a Block after load).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/model/model_weights.h"

namespace sq::io {

uint64_t release_pages(const ModelWeights& w, const std::vector<std::string>& names);

}  // namespace sq::io
