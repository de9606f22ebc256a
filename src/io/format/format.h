// The output format key: the one type that names a quantized checkpoint's on-disk layout, used
// by the options (--format), the packers, the quantization_config writer and the loader view.
// Light on purpose (no torch, no json): options.h includes it. Everything a format is — names,
// pack, config keys, loader view, accepted schemes — is its row in io/format_registry.h.
//
// CONTRACT
//   * One value per layout whose bytes differ: GPTQ v1 and v2 are two values (they differ in
//     the stored qzeros, the config's checkpoint_format and how a loader reads the zeros back);
//     --format gptq selects kGptqV1, and a writer widens it to kGptqV2 when some zero cannot be
//     stored in v1 (FormatRow::widened).
//   * format_name(): the layout's name in messages and configs ("awq-gemm", "gptq", "gptq_v2",
//     "pack-quantized"). cli_name(): its --format spelling ("awq", "gptq", "compressed-tensors";
//     "gptq" for kGptqV2 too, whose spelling is its narrow row's).
//   * format_from_cli(name): the format --format `name` selects; InputError listing the known
//     spellings otherwise. cli_formats(): those spellings and their formats, in table order.
//   * scheme_error(f, s): "" when format f can hold codes of scheme s (bits, zero point, act
//     order, group size), else the reason, naming the format and the offending value.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "common/quant_scheme.h"

namespace sq::io {

enum class Format {
  kAwqGemm,        // AutoAWQ GEMM
  kGptqV1,         // GPTQ, checkpoint_format "gptq": qzeros store zero − 1
  kGptqV2,         // GPTQ, checkpoint_format "gptq_v2": qzeros store the true zeros
  kCompressedPack  // compressed-tensors pack-quantized
};

const char* format_name(Format f);
const char* cli_name(Format f);
Format format_from_cli(const std::string& name);
std::vector<std::pair<const char*, Format>> cli_formats();
std::string scheme_error(Format f, const QuantScheme& s);

}  // namespace sq::io
