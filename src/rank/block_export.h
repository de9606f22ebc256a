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
// GPTQ v1 cannot store an asymmetric zero point of 0 (io/pack.h gptq_v1_can_store): such a
// linear is packed as v2 and `gptq_zero_zero` is set; `v1_qzeros` (optional) receives the names
// of the qzeros tensors packed as v1, so the caller can rewrite them as v2 when the checkpoint
// as a whole must become gptq_v2 (io::rewrite_qzeros_v1_to_v2).
#pragma once

#include <ATen/ATen.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "io/model_weights.h"
#include "io/pack.h"
#include "rank/block.h"
#include "solvers/quant_grid.h"

namespace sq::rank {

struct ExportOptions {
  io::PackFormat format = io::PackFormat::kAwqGemm;
  QuantScheme scheme;   // bits and group size of the packed codes
  io::PackOptions pack;  // compressed-tensors: symmetric (no zero points), weight_scale dtype
};

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

NamedTensors export_block(const Block& block,
                          const std::map<std::string, solvers::QuantizedLinear>& quantized,
                          const io::ModelWeights& w, const ExportOptions& opts,
                          bool* gptq_zero_zero = nullptr,
                          std::vector<std::string>* v1_qzeros = nullptr);

}  // namespace sq::rank
