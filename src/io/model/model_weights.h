// The weights of a model directory: one `model.safetensors`, or shards listed in
// `model.safetensors.index.json`. Every file is mmapped once; tensors are zero-copy views.
//
// Quantized checkpoints (config.json with a quantization_config: AWQ GEMM, GPTQ v1/v2,
// compressed-tensors pack-quantized) are presented dequantized (io/format/quantized_view.h): every
// quantized linear "<L>" appears as a virtual float32 "<L>.weight" [N, K], and its packed tensors
// (qweight, qzeros, scales, g_idx, ...) are hidden from has()/names()/info()/get(). The stored
// tensors stay reachable through stored_names()/get_stored(). file_of() of a virtual weight is the
// shard holding its marker tensor (qweight / weight_packed).
//
// FP8 and MXFP4 checkpoints (io/model/source_formats.h) are presented the same way: each FP8
// linear's
// "<L>.weight" and each MXFP4 "<P>" read as virtual tensors in the model dtype (config.json
// torch_dtype / dtype, BF16 when absent), dequantized when read; their scale tensors and
// "<P>_blocks"/"<P>_scales" are hidden. quantization() stays nullptr for them: nothing about the
// source format survives into the output.
//
// Llama 4 checkpoints (io/model/expert_split.h) present their fused routed-expert tensors
// "<C>.experts.gate_up_proj" / "<C>.experts.down_proj" as per-expert linear weights
// "<C>.experts.{e}.gate_proj.weight" ... in the stored dtype (strided views of the shard until
// get_as copies one); the fused tensors are hidden like packed ones, stored_parts() of a slice is
// its fused tensor.
//
// Errors (InputError): directory missing, no *.safetensors, index listing a missing shard, a
// tensor listed in the index but absent from its shard, a tensor present in two shards,
// a shard holding a tensor the index assigns elsewhere.
#pragma once

#include <ATen/ATen.h>

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "io/format/quantized_view.h"
#include "io/model/expert_split.h"
#include "io/model/source_formats.h"
#include "io/safetensors/safetensors.h"

namespace sq::io {

class ModelWeights {
 public:
  explicit ModelWeights(const std::string& model_dir);

  const std::string& dir() const { return dir_; }
  bool has(const std::string& name) const;
  // Sorted tensor names (virtual dequantized weights included, packed tensors excluded).
  std::vector<std::string> names() const;
  const TensorInfo& info(const std::string& name) const;
  // The shard path that holds `name`.
  const std::string& file_of(const std::string& name) const;
  // Zero-copy read-only CPU view in the stored dtype (see io/safetensors/tensor.h).
  at::Tensor get(const std::string& name) const;
  // get() converted to `dtype` (a copy when the dtype differs; clone otherwise so it is writable).
  at::Tensor get_as(const std::string& name, at::ScalarType dtype) const;
  // get_as() on `device`. An FP8/MXFP4 weight moves as stored bytes and is dequantized there
  // (same bits as on the CPU); a plainly stored tensor moves from the mapped shard to a GPU and is
  // checked (NaN/Inf, check_source_once) and cast there; on the CPU, get_as(name, dtype).
  at::Tensor get_on(const std::string& name, at::ScalarType dtype, at::Device device) const;
  // Shard file paths in order.
  std::vector<std::string> files() const;
  uint64_t total_bytes() const;

  // The quantized layout read from config.json; nullptr for a full-precision checkpoint.
  const QuantizedLayout* quantization() const { return quant_ ? &*quant_ : nullptr; }
  // True when `name` is a virtual (dequantized-on-load) weight.
  bool is_dequantized(const std::string& name) const { return virtual_.count(name) != 0; }
  // The tensors as stored in the shards (packed ones included), sorted; and a view of one.
  std::vector<std::string> stored_names() const;
  at::Tensor get_stored(const std::string& name) const;
  // The mapped bytes of a stored tensor (no decoding, no copy).
  struct Span {
    const uint8_t* data = nullptr;
    size_t size = 0;
  };
  Span stored_span(const std::string& name) const;
  // The stored tensors `name` is read from: itself, or the packed / FP8 / MXFP4 tensors behind a
  // virtual weight (what a prefetch must page in).
  std::vector<std::string> stored_parts(const std::string& name) const;
  // The source float format (FP8 / MXFP4), nullptr for other checkpoints.
  const SourceFormat* source_format() const { return source_ ? &*source_ : nullptr; }

 private:
  void init_quantized_view();
  void init_source_view(const SourceFormat& f, const nlohmann::json& cfg);
  void init_expert_split(const nlohmann::json& cfg);
  const TensorInfo* stored_info(const std::string& name) const;
  // A stored tensor as ATen: U8 bytes for 1-byte dtypes (FP8 undecoded), view() otherwise.
  at::Tensor get_raw(const std::string& name) const;

  std::string dir_;
  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::map<std::string, size_t> where_;  // stored tensor -> index in files_
  std::optional<QuantizedLayout> quant_;
  std::map<std::string, TensorInfo> virtual_;  // "<L>.weight" -> float32 [N, K]
  std::map<std::string, std::string> marker_;  // "<L>.weight" -> its marker tensor name
  std::set<std::string> hidden_;               // packed tensor names
  std::optional<SourceFormat> source_;
  std::map<std::string, SourceTensor> source_tensors_;  // FP8 / MXFP4 virtual tensors
  at::ScalarType source_dtype_ = at::kBFloat16;
  std::map<std::string, ExpertSlice> split_;  // Llama 4 per-expert views, by virtual name
};

}  // namespace sq::io
