// Model-level tensors and the streamed whole-model forward. Embedding scaling and logit
// post-processing are per-checkpoint traits read from config.json keys (one table of each).
#include "rank/model/model.h"

#include <cmath>

#include "common/check.h"
#include "rank/model/layers.h"
#include "solvers/cpu_tiles.h"

namespace sq::rank {
namespace {

at::Tensor maybe(const io::ModelWeights& w, const std::string& name, at::ScalarType dt,
                 const at::Device& dev) {
  if (name.empty() || !w.has(name)) return {};
  return w.get_as(name, dt).to(dev);
}

// Logit post-processing keys, applied in order: cohere logit_scale (×), granite logits_scaling
// (÷), gemma2 final_logit_softcapping (tanh cap).
enum class LogitOp { Multiply, Divide, SoftCap };
struct LogitRow {
  const char* key;
  LogitOp op;
};
constexpr LogitRow kLogitOps[] = {{"logit_scale", LogitOp::Multiply},
                                  {"logits_scaling", LogitOp::Divide},
                                  {"final_logit_softcapping", LogitOp::SoftCap}};

}  // namespace

Model::Model(const io::ModelWeights& w, const io::ModelConfig& cfg, const at::Device& device,
             at::ScalarType dtype)
    : w_(w), cfg_(cfg), spec_(&arch_spec(cfg.model_type)), device_(device), dtype_(dtype) {
  SQ_REQUIRE(w.has(spec_->embed), w.dir() << ": missing embedding tensor " << spec_->embed);
  embed_w_ = maybe(w, spec_->embed, dtype, device);
  pos_w_ = maybe(w, spec_->pos_embed, dtype, device);
  norm_w_ = maybe(w, spec_->final_norm + ".weight", dtype, device);
  norm_b_ = maybe(w, spec_->final_norm + ".bias", dtype, device);
  SQ_REQUIRE(spec_->final_norm.empty() || norm_w_.defined(),
             w.dir() << ": missing final norm " << spec_->final_norm << ".weight");
  if (w.has(spec_->lm_head)) {
    head_w_ = maybe(w, spec_->lm_head, dtype, device);
    std::string b = spec_->lm_head.substr(0, spec_->lm_head.size() - 7) + ".bias";
    head_b_ = maybe(w, b, dtype, device);
  } else {
    // Tied embeddings (or a checkpoint that dropped the duplicate lm_head).
    SQ_REQUIRE(cfg.tie_word_embeddings || cfg.model_type == "gpt2",
               w.dir() << ": missing " << spec_->lm_head << " and tie_word_embeddings is false");
    head_w_ = embed_w_;
  }
}

at::Tensor Model::embed(const at::Tensor& input_ids, const BlockContext& ctx) const {
  at::Tensor ids = input_ids.to(device_).to(at::kLong);
  at::Tensor h = at::embedding(embed_w_, ids);
  if (pos_w_.defined())
    h = h + at::embedding(pos_w_, ctx.positions.to(device_) + spec_->pos_offset);
  // Gemma (gemma, gemma2, gemma3_text, gemma3): × √hidden, rounded to the model dtype first as
  // transformers does. Not every (1+w)-norm family scales (qwen3_next does not).
  if (spec_->model_type.rfind("gemma", 0) == 0)
    h = h * at::scalar_tensor(std::sqrt(static_cast<double>(cfg_.hidden_size)),
                              at::TensorOptions().dtype(dtype_).device(device_));
  if (cfg_.has("embedding_multiplier")) h = h * cfg_.get_double("embedding_multiplier", 1.0);
  return h;
}

at::Tensor Model::final_norm(const at::Tensor& hidden) const {
  if (!norm_w_.defined()) return hidden;
  return layers::norm(hidden, norm_w_, norm_b_, spec_->norm, cfg_.norm_eps);
}

at::Tensor Model::lm_head(const at::Tensor& normed) const {
  at::Tensor logits =
      solvers::tiles::linear(normed, head_w_, head_b_.defined() ? head_b_ : at::Tensor());
  for (const auto& row : kLogitOps) {
    const double v = cfg_.get_double(row.key, 0.0);
    if (v == 0.0) continue;
    switch (row.op) {
      case LogitOp::Multiply:
        logits = logits * v;
        break;
      case LogitOp::Divide:
        logits = logits / v;
        break;
      case LogitOp::SoftCap:
        logits = at::tanh(logits / v) * v;
        break;
    }
  }
  return logits;
}

std::unique_ptr<Block> Model::block(int64_t i) const {
  return std::make_unique<Block>(w_, cfg_, i, device_, dtype_);
}

at::Tensor Model::forward(const at::Tensor& input_ids) const {
  BlockContext ctx = make_context(input_ids.size(0), input_ids.size(1), device_);
  at::Tensor h = embed(input_ids, ctx);
  for (int64_t i = 0; i < num_blocks(); ++i) h = block(i)->forward(h, ctx);
  return lm_head(final_norm(h));
}

}  // namespace sq::rank
