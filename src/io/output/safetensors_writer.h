// safetensors writers: one file, or a sharded model directory (REFERENCE.md §3.4).
//
// Contract: output bytes depend only on the tensors, names and metadata — tensors are laid out
// sorted by name, the JSON header is compact with keys in that order ("__metadata__" first when
// present) and padded with spaces to a multiple of 8 bytes (as the Rust library does). Files are
// written to `<path>.tmp` and renamed into place, so a reader never sees a half-written file.
// I/O failures are BackendErrors naming the file; bad arguments (duplicate names, non-CPU
// tensors, F8 data that is not uint8) are InputErrors naming the tensor.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "io/safetensors/safetensors.h"

namespace sq::io {

struct TensorToWrite {
  std::string name;
  at::Tensor tensor;  // CPU, any layout (written contiguous)
  // Stored dtype; unset = from the tensor's ATen type. F8_E4M3 / F8_E5M2 (no ATen type in
  // LibTorch 1.13) take a uint8 tensor of raw bytes with the logical shape.
  std::optional<DType> dtype;
};

// Bytes of tensor data `t` will occupy.
uint64_t stored_bytes(const TensorToWrite& t);

// Writes one safetensors file.
void write_safetensors(const std::string& path, std::vector<TensorToWrite> tensors,
                       const std::map<std::string, std::string>& metadata = {});

// Parses a shard size: "5GB" (10^9), "500MB", "2GiB" (2^30), "100KB", "64KiB", "123" or "123B"
// (bytes); units case-insensitive except that a lower-case trailing "b" after a prefix means bits
// (HF: "5Gb" = 5·10^9 / 8). Decimals are allowed ("1.5GB"). InputError on anything else or 0.
uint64_t parse_size(const std::string& text);

// Writes a Hugging Face sharded model directory. Tensors arrive in order (add()); a shard is
// closed when the next tensor would take it past max_shard_bytes (a tensor larger than the limit
// gets a shard of its own). Closed shards are written at once under temporary names and renamed
// by finish() to <stem>-0000i-of-0000N.safetensors, plus <stem>.safetensors.index.json
// {"metadata":{"total_size":bytes},"weight_map":{name:file}} (sorted, 2-space indent); a single
// shard is written as <stem>.safetensors with no index. The stem is "model" (Hugging Face's
// names) unless the caller picks another (--output-layout suffixed: "model-AWQ").
// Memory held: one tensor. add() checks the tensor (storable, finite: check_output_tensor) and
// writes its bytes at once to a spill file beside the shard ("<shard>.partial.spill"); a closed
// shard is assembled from its spill file in name order and the spill file removed, so host
// memory does not grow with the shard (issue 21 point 5; a shard of a 70B model holds ~10
// blocks). Cost: the shard's bytes pass through the file system twice (the spill is usually still
// in the page cache when it is copied). The caller may drop or release a tensor once add() returns.
class ShardedWriter {
 public:
  ShardedWriter(std::string dir, uint64_t max_shard_bytes,
                std::map<std::string, std::string> metadata = {{"format", "pt"}},
                std::string stem = "model");
  ~ShardedWriter();  // removes temporary shards when finish() was never called (unless kept)
  ShardedWriter(const ShardedWriter&) = delete;
  ShardedWriter& operator=(const ShardedWriter&) = delete;

  void add(TensorToWrite t);
  void add(const std::string& name, const at::Tensor& tensor) { add({name, tensor, {}}); }
  // Writes the last shard, renames all, writes the index. Returns the final file names in order.
  std::vector<std::string> finish();

  uint64_t total_bytes() const { return total_; }

  // Resume (issue 22). closed_state(): the shards closed so far as JSON ({"shards": [[names]],
  // "bytes": their total}); restore(state) on a fresh writer (nothing added yet) takes them back —
  // their temporary files must exist, or their final names after an interrupted finish(), which
  // are renamed back (InternalError naming the shard otherwise) — so that adding the remaining
  // tensors again in the same order closes the same shards with the same bytes.
  // is_closed(name): the tensor is in a closed shard.
  nlohmann::json closed_state() const;
  void restore(const nlohmann::json& state);
  bool is_closed(const std::string& name) const;
  // The closed shards stay on disk when the writer is destroyed unfinished (a checkpoint refers
  // to them).
  void keep_closed_shards() { keep_ = true; }

 private:
  // A tensor of the open shard: its header fields and where its bytes lie in the spill file.
  struct Spilled {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    uint64_t offset = 0;
    uint64_t bytes = 0;
  };
  void flush();
  std::string shard_path() const;                // the open shard's temporary name
  std::string temp_name(size_t index) const;     // shard `index`'s temporary name
  std::string dir_;
  uint64_t max_;
  std::map<std::string, std::string> metadata_;
  std::string stem_;
  std::vector<Spilled> pending_;
  std::FILE* spill_ = nullptr;
  std::string spill_path_;
  uint64_t pending_bytes_ = 0;
  uint64_t total_ = 0;
  std::vector<std::string> temp_files_;
  std::vector<std::vector<std::string>> shard_names_;  // tensor names per shard
  std::map<std::string, size_t> seen_;                 // tensor -> shard index
  bool finished_ = false;
  bool keep_ = false;
};

}  // namespace sq::io
