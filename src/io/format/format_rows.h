// Internal to the format registry: each format file's row and the helpers the rows share
// (reading quantization_config keys, fetching stored tensors). Not for use outside io/format_*.
#pragma once

#include <initializer_list>
#include <string>

#include "io/format/format_registry.h"

namespace sq::io::rows {

FormatRow awq_gemm();             // format_awq.cpp
FormatRow gptq(Format v1_or_v2);  // format_gptq.cpp
FormatRow compressed_pack();      // format_compressed.cpp

std::string lower(std::string s);
// First present key among `keys` as an integer; `fallback` when none is present. A JSON null
// (compressed-tensors' channel strategy) counts as -1 = one group per row. InputError naming
// `context` and the key for a value that is not an integer.
int64_t int_key(const nlohmann::json& j, std::initializer_list<const char*> keys, int64_t fallback,
                const std::string& context);
// j[key] when it is a string, else `fallback`.
std::string str_key(const nlohmann::json& j, const char* key, const std::string& fallback);
// "<prefix>.<suffix>" from `stored`: InputError naming the linear, the format and the tensor when
// it is missing or a scalar.
at::Tensor need(const StoredLookup& stored, const std::string& prefix, const std::string& suffix,
                const char* format);
// 2^bits − 1.
inline int32_t max_code(int bits) {
  return (1 << bits) - 1;
}

}  // namespace sq::io::rows
