// The format registry: one row per output format (REFERENCE.md §3.1–3.3), the only place that
// knows what a format is. The packers (io/format/pack.h), the quantization_config writer
// (io/format/quant_config.h), the loader view (io/format/quantized_view.h), the options (--format)
// and the checkpoint writer (rank/quant/block_export, coordinator/run/merge) look up the row; none
// of them switches on the format itself. Each row is defined next to its code: format_awq.cpp,
// format_gptq.cpp (v1 and v2), format_compressed.cpp.
//
// CONTRACT (per row)
//   names         name (format_name), cli_name (--format spelling), selectable (whether
//                 --format cli_name picks this row; false for gptq_v2, the writer's choice).
//   schemes       scheme_error(s): "" or why the format cannot hold codes of scheme s. pack()
//                 checks it before packing; option validation checks it for --format.
//   pack          marker: the suffix that marks a quantized linear "<L>" in a checkpoint;
//                 suffixes: every "<L>.<suffix>" pack() may write (marker first); pack/unpack:
//                 the canonical form (io/format/pack.h) <-> those tensors. pack may assume
//                 check_quant_ linear and scheme_error passed; it checks the shapes it needs
//                 (InputError).
//   deferred      pack_zeros / can_store_zeros (GPTQ only, else nullptr): the qzeros of true
//   zeros         zeros [n_groups, N], and whether this row can store them; widened: the row a
//                 checkpoint is written in when a zero cannot be stored (gptq → gptq_v2). A
//                 writer that sees the zeros of every linear first packs them all in one row.
//   config        quant_method, config (the quantization_config object), side_files (extra JSON
//                 files by name), both from QuantSettings whose format is this row.
//   loader view   read_config(quantization_config, context, &scheme): the row a config of this
//                 quant_method describes and its bits/group size (rows sharing a quant_method
//                 share the reader: gptq's picks v1 or v2 from checkpoint_format); InputError
//                 naming `context` and the value for a variant it cannot load. stored_shape:
//                 [N, K] of "<prefix>" from the stored shapes alone (InputError naming prefix).
//   planning      conv1d_error: nullptr, or why Conv1D ([in, out]) linears cannot be written in
//                 this format (plan time, with the model type prepended).
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "io/format/format.h"
#include "io/format/pack.h"
#include "io/format/quant_config.h"

namespace sq::io {

// Looks up a stored tensor by full name (zero-copy view); an undefined tensor when absent.
using StoredLookup = std::function<at::Tensor(const std::string& name)>;

struct FormatRow {
  Format format;
  const char* name;
  const char* cli_name;
  bool selectable;

  std::string (*scheme_error)(const QuantScheme&);

  const char* marker;
  std::vector<std::string> suffixes;
  PackedLinear (*pack)(const QuantLinear&, const PackOptions&);
  QuantLinear (*unpack)(const PackedLinear&);

  at::Tensor (*pack_zeros)(const at::Tensor& zeros, int bits);
  bool (*can_store_zeros)(const at::Tensor& zeros, int bits);
  std::optional<Format> widened;

  const char* quant_method;
  nlohmann::json (*config)(const QuantSettings&);
  std::map<std::string, nlohmann::json> (*side_files)(const QuantSettings&);

  Format (*read_config)(const nlohmann::json& q, const std::string& context, QuantScheme* scheme);
  std::vector<int64_t> (*stored_shape)(const QuantScheme&, const std::string& prefix,
                                       const StoredLookup& stored);

  const char* conv1d_error;
};

// Every row, in --format / loader lookup order.
const std::vector<FormatRow>& format_rows();
// The row of `f` (InternalError for a value without one).
const FormatRow& format_row(Format f);

}  // namespace sq::io
