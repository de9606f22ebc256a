// A checkpoint record in HDF5 (issue 22): a JSON document plus named raw tensors, written so that
// a kill at any instant leaves either the previous record or the new one at `path`.
//
// CONTRACT
//   * Layout: a 1-D uint8 dataset "meta" holding the UTF-8 JSON (of any size; records of earlier
//     builds hold it as a root fixed-length string attribute, which is still read) and one 1-D
//     uint8 dataset per tensor holding its bytes (no tensor may be named "meta"); the tensors'
//     dtype and shape are in meta["tensors"][name]
//     ({"dtype": ATen name, "shape": [...]}), so any ATen dtype (bf16 included) round-trips
//     bit for bit.
//   * write_record: writes <path>.tmp-<pid>, fsyncs it, renames it over `path` and fsyncs the
//     directory. BackendError naming the file on any failure (the old record stays).
//   * read_record: nullopt when `path` does not exist; a file that is not a readable record is
//     a BackendError naming it and what is wrong. Tensors come back on the CPU; with
//     `tensors` false only the meta is read (`tensors` of the result empty).
//   * file_digest / header_digest: FNV-1a 64 of a whole file, or of a safetensors file's
//     8-byte length and JSON header, as 16 hex digits (change detection, not security).
#pragma once

#include <ATen/ATen.h>

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace sq::io {

struct Record {
  nlohmann::json meta = nlohmann::json::object();
  std::map<std::string, at::Tensor> tensors;
};

void write_record(const std::string& path, const Record& r);
// Whether two threads may call write_record at once: HDF5's thread-safe build (Debian's and
// Ubuntu's serial libhdf5) serializes its calls itself; a caller linked against another build
// must not overlap them.
bool concurrent_records_safe();
std::optional<Record> read_record(const std::string& path, bool tensors = true);

std::string file_digest(const std::string& path);
std::string header_digest(const std::string& safetensors_path);

}  // namespace sq::io
