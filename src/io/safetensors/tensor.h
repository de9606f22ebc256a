// Bridges safetensors views and ATen tensors.
//
// Contract: view() returns a zero-copy CPU tensor over the read-only mapping, which stays mapped
// while the tensor lives. Never write into it: clone() or .to() first. F8 dtypes are decoded
// to a new float32 tensor (LibTorch 1.13 has no float8 types); data not aligned to its element
// size (the format allows any header length) is copied into an aligned tensor.
#pragma once

#include <ATen/ATen.h>

#include <memory>

#include "io/safetensors/safetensors.h"

namespace sq::io {

at::ScalarType to_scalar_type(DType d);  // F8 types throw (no ATen type in 1.13)
DType from_scalar_type(at::ScalarType t);

at::Tensor view(const std::shared_ptr<SafetensorsFile>& file, const TensorInfo& t);

}  // namespace sq::io
