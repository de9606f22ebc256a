// Clear failure when an input shard shrinks while a run reads it (issue 24).
//
// CONTRACT
// - watch_mapping(begin, size, path, tensors, data_start): SafetensorsFile::open registers every
//   read-only mapping; unwatch_mapping(begin) when it is unmapped. `path` and `tensors` (data
//   offsets relative to `data_start`) must outlive the watch.
// - A shard truncated (or rewritten shorter) after its header was read makes the next access of
//   a lost page raise SIGBUS. The handler, installed by the first watch_mapping(), writes
//   "shardquant: system error: <file>: input file shrank while being read (tensor "<name>", byte
//   <offset> of the data section) …" to stderr and exits with 3 (async-signal-safe: no
//   allocation, no logger). The run's output stays "<out>.partial" (never committed).
// - A SIGBUS outside every watched mapping goes to the previous handler (default: terminate).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/safetensors/safetensors.h"

namespace sq::io {

void watch_mapping(const void* begin, uint64_t size, const std::string& path,
                   const std::vector<TensorInfo>& tensors, const uint8_t* data_start);
void unwatch_mapping(const void* begin);

}  // namespace sq::io
