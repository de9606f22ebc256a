// Merge of a distributed run's output (issue 6 point 6). Each rank writes the exported tensors of
// its own blocks into one fragment file under <out>.partial/.fragments/; after every rank reported
// success, rank 0 streams the non-block tensors and then every fragment (rank order = block order)
// through io::ShardedWriter, exactly the order the single-process run adds tensors in, so shard
// boundaries, names and bytes match a single-process run. Fragments are removed afterwards.
//
// CONTRACT
//   * write_fragment keeps the given tensor order (stored as the "order" metadata entry; the
//     safetensors layout itself is sorted by name) and is atomic (tmp + rename).
//   * add_fragment adds the fragment's tensors to `writer` in that stored order; the tensors are
//     zero-copy views whose mapping lives as long as the writer holds them. A fragment without a
//     valid order entry, or whose order names a tensor it lacks, is an InternalError naming it.
#pragma once

#include <string>

#include "io/safetensors_writer.h"
#include "rank/block_export.h"

namespace sq::coordinator {

std::string fragments_dir(const std::string& partial_dir);
std::string fragment_path(const std::string& partial_dir, int rank);
void write_fragment(const std::string& path, const rank::NamedTensors& tensors);
void add_fragment(const std::string& path, io::ShardedWriter& writer);
void remove_fragments(const std::string& partial_dir);

}  // namespace sq::coordinator
