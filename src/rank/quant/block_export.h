// Turning a quantized block back into checkpoint tensors.
//
// CONTRACT: export_block() returns, for every checkpoint tensor under the block's prefix, in
// checkpoint name order, the tensor(s) to write (CPU, contiguous):
//   - a quantized linear's "<L>.weight" becomes the packed format tensors "<L>.qweight",
//     "<L>.qzeros", "<L>.scales" (+ "<L>.g_idx" for GPTQ; compressed-tensors names for that
//     format, packed with opts.pack: weight_scale dtype, weight_zero_point or not);
//   - every other tensor the block holds (biases, norms, kept linears, routers, extras) is
//     written from the block — AWQ may have rescaled it — cast back to its checkpoint dtype
//     (Conv1D weights transposed back to [in, out]);
//   - tensors the block does not hold are copied unchanged from the checkpoint.
// Formats whose zeros a writer may pack later (the registry row's pack_zeros: GPTQ, where v1
// cannot store an asymmetric zero point of 0 and one such linear makes the whole checkpoint
// gptq_v2, io/format/format_registry.h): when `unpacked_qzeros` is given, each such linear's
// "<L>.qzeros" is returned as its true zeros (int32 [n_groups, N], unpacked) and named there;
// the writer packs them with the row's pack_zeros once the checkpoint's format is decided,
// before any byte is written. Without it they are packed in opts.format (InputError for a zero
// of 0 in v1).
#pragma once

#include <ATen/ATen.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "io/format/pack.h"
#include "io/model/model_weights.h"
#include "rank/model/block.h"
#include "solvers/quant_grid.h"

namespace sq::rank {

struct ExportOptions {
  io::Format format = io::Format::kAwqGemm;
  QuantScheme scheme;    // of the packed codes (act_order only where the format stores it)
  io::PackOptions pack;  // compressed-tensors: symmetric (no zero points), weight_scale dtype
};

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

NamedTensors export_block(const Block& block,
                          const std::map<std::string, solvers::QuantizedLinear>& quantized,
                          const io::ModelWeights& w, const ExportOptions& opts,
                          std::vector<std::string>* unpacked_qzeros = nullptr);

// The inverse for the quantized linears, used where a resume recomputes the chain's activations
// from the written tensors instead of storing them (issue 22, coordinator/run/checkpoint.h): every
// linear of the block whose format marker ("<L>.qweight", "<L>.weight_packed") is in `tensors`
// (export_block's output for this block, with `opts` and `unpacked_qzeros` as export_block gave
// them) gets the weight the solver left in the block: the dequantized float32 weight, cast to the
// linear's dtype. (codes − zeros)·scales with fp16-representable scales is exact in float32, so
// these are QuantizedLinear::dequant's bits (solvers/quant_grid.h). Nothing else of the block
// changes; the names of the linears set are returned. InternalError for a marker naming a linear
// the block lacks, or a weight of another shape.
// Whether import_quantized gives the solver's bits for blocks exported with `opts`: the packed
// scales must hold the fp16 values exactly — always for AWQ/GPTQ (fp16), for compressed-tensors
// only when weight_scale is fp16 or fp32 (a bf16 model's bf16 scales are rounded).
bool import_is_exact(const ExportOptions& opts);
std::vector<std::string> import_quantized(Block& block, const NamedTensors& tensors,
                                          const std::vector<std::string>& unpacked_qzeros,
                                          const ExportOptions& opts);

}  // namespace sq::rank
