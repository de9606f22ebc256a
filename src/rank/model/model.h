// The model-level pieces around the blocks: token (+ learned position) embeddings with their
// family scaling (gemma √hidden, granite embedding_multiplier), the final norm, and the lm_head
// (tied or not) with logit soft-capping (gemma2), cohere logit_scale and granite logits_scaling.
//
// CONTRACT: Model never holds blocks; block(i) builds one on demand from the mmapped shards, so
// a caller can stream blocks one at a time. forward() is the convenience whole-model pass
// (blocks built, run and dropped one by one).
#pragma once

#include <ATen/ATen.h>

#include <memory>
#include <string>

#include "io/model/model_config.h"
#include "io/model/model_weights.h"
#include "rank/model/block.h"

namespace sq::rank {

class Model {
 public:
  // Shares `w`; both must outlive the Model.
  Model(const io::ModelWeights& w, const io::ModelConfig& cfg, const at::Device& device = at::kCPU,
        at::ScalarType dtype = at::kFloat);

  // input_ids [B,T] int64 → hidden [B,T,H] entering block 0.
  at::Tensor embed(const at::Tensor& input_ids, const BlockContext& ctx) const;
  // hidden [B,T,H] leaving the last block → final-normed hidden.
  at::Tensor final_norm(const at::Tensor& hidden) const;
  // final-normed hidden → logits [B,T,V] (dtype of the model; soft-capping and scaling applied).
  at::Tensor lm_head(const at::Tensor& normed) const;
  std::unique_ptr<Block> block(int64_t i) const;
  at::Tensor forward(const at::Tensor& input_ids) const;

  int64_t num_blocks() const { return cfg_.num_hidden_layers; }
  const io::ModelConfig& config() const { return cfg_; }
  const io::ModelWeights& weights() const { return w_; }
  const ArchSpec& spec() const { return *spec_; }
  at::Device device() const { return device_; }
  at::ScalarType dtype() const { return dtype_; }

 private:
  const io::ModelWeights& w_;
  io::ModelConfig cfg_;
  const ArchSpec* spec_;
  at::Device device_;
  at::ScalarType dtype_;
  at::Tensor embed_w_, pos_w_, norm_w_, norm_b_, head_w_, head_b_;
};

}  // namespace sq::rank
