// The weights of a model directory: one `model.safetensors`, or shards listed in
// `model.safetensors.index.json`. Every file is mmapped once; tensors are zero-copy views.
//
// Errors (InputError): directory missing, no *.safetensors, index listing a missing shard, a
// tensor listed in the index but absent from its shard, a tensor present in two shards,
// a shard holding a tensor the index assigns elsewhere.
#pragma once

#include <ATen/ATen.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/safetensors.h"

namespace sq::io {

class ModelWeights {
 public:
  explicit ModelWeights(const std::string& model_dir);

  const std::string& dir() const { return dir_; }
  bool has(const std::string& name) const { return where_.count(name) != 0; }
  // Sorted tensor names.
  std::vector<std::string> names() const;
  const TensorInfo& info(const std::string& name) const;
  // The shard path that holds `name`.
  const std::string& file_of(const std::string& name) const;
  // Zero-copy read-only CPU view in the stored dtype (see io/tensor.h).
  at::Tensor get(const std::string& name) const;
  // get() converted to `dtype` (a copy when the dtype differs; clone otherwise so it is writable).
  at::Tensor get_as(const std::string& name, at::ScalarType dtype) const;
  // Shard file paths in order.
  std::vector<std::string> files() const;
  uint64_t total_bytes() const;

 private:
  std::string dir_;
  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::map<std::string, size_t> where_;  // tensor -> index in files_
};

}  // namespace sq::io
