// The checkpoint's assembly from block fragments (issue 6 point 6, issue 18 point 3). Whatever
// rank quantized a block writes its exported tensors as one fragment file under
// <out>.partial/.fragments/ as soon as the block is done; after every rank reported success,
// rank 0 streams the non-block tensors and then the fragments in block order through
// io::ShardedWriter — the same tensors in the same order for any rank count or mode, so shard
// boundaries, names and bytes do not depend on them. Fragments are removed afterwards.
//
// The checkpoint's format (GPTQ v1 or v2) is decided here, once, before a byte of it is written:
// a fragment keeps GPTQ qzeros as true zeros (rank/quant/block_export.h); merge_fragments first
// reads every fragment's zeros, keeps the asked format's row unless one of them cannot store a zero
// (gptq v1: an asymmetric zero of 0), then takes the row's `widened` one (gptq_v2) for the whole
// checkpoint (io/format/format_registry.h), and packs every qzeros with that row as it streams
// them.
//
// CONTRACT
//   * write_fragment keeps the given tensor order (stored as the "order" metadata entry; the
//     safetensors layout itself is sorted by name) and the list of unpacked qzeros ("unpacked_
//     qzeros"), and is atomic (tmp + rename).
//   * format_known_before_solves(x): true when no block of a checkpoint exported with `x` can
//     change its format — a row without a widened one, or symmetric zeros (every zero is
//     2^(bits-1), which every row stores). Then a one-rank run needs no fragments: add_block
//     streams each block's tensors into the writer as it is done (the same tensors in the same
//     order as merge_fragments would add them, so the same bytes, written once), packing
//     unpacked qzeros with `format`'s row; a zero it cannot store is an InternalError there.
//   * merge_fragments adds the fragments' tensors to `writer` in the given file order, each in its
//     stored order, packing unpacked qzeros of `bits` bits in the decided row; returns that
//     format (`format` or its widened row). The tensors are zero-copy views whose mapping lives as
//     long as the writer holds them. A fragment without a valid order entry, or whose order names a
//     tensor it lacks, is an InternalError naming it.
#pragma once

#include <string>
#include <vector>

#include "io/output/safetensors_writer.h"
#include "rank/quant/block_export.h"

namespace sq::coordinator {

std::string fragments_dir(const std::string& partial_dir);
std::string fragment_path(const std::string& partial_dir, int64_t block);
void write_fragment(const std::string& path, const rank::NamedTensors& tensors,
                    const std::vector<std::string>& unpacked_qzeros = {});
bool format_known_before_solves(const rank::ExportOptions& x);
void add_block(io::ShardedWriter& writer, const rank::NamedTensors& tensors,
               const std::vector<std::string>& unpacked_qzeros, int bits, io::Format format);
// A fragment's tensors in their stored order (zero-copy views of the mapped file) and its
// unpacked qzeros: what a resumed direct run adds to its writer again (issue 22).
struct FragmentContent {
  rank::NamedTensors tensors;
  std::vector<std::string> unpacked_qzeros;
};
FragmentContent read_fragment(const std::string& path);
io::Format merge_fragments(const std::vector<std::string>& paths, io::ShardedWriter& writer,
                           int bits, io::Format format);
void remove_fragments(const std::string& partial_dir);

}  // namespace sq::coordinator
