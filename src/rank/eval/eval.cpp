// Perplexity over non-overlapping windows. Both memory modes run the same arithmetic in the same
// order per window, so they print the same number; low_memory only changes how long each block
// lives.
#include "rank/eval/eval.h"

#include <chrono>

#include "common/check.h"

namespace sq::rank {
namespace {

// Σ −log p(target) over the window's predicted tokens, fp32 log-softmax, summed in fp64.
double window_nll(const Model& m, const at::Tensor& hidden, const at::Tensor& ids) {
  at::Tensor logits = m.lm_head(m.final_norm(hidden));  // [b,L,V]
  const int64_t L = ids.size(1);
  at::Tensor lp = at::log_softmax(logits.narrow(1, 0, L - 1).to(at::kFloat), -1);
  at::Tensor tgt = ids.narrow(1, 1, L - 1).to(lp.device()).unsqueeze(-1);
  return -lp.gather(-1, tgt).to(at::kDouble).sum().item<double>();
}

}  // namespace

EvalResult evaluate_perplexity(const Model& model, const std::vector<int32_t>& ids,
                               const EvalOptions& opts, const BlockProvider& provider) {
  const auto t0 = std::chrono::steady_clock::now();
  SQ_REQUIRE(opts.seq_len >= 2, "eval: seq_len must be at least 2, got " << opts.seq_len);
  int64_t windows = static_cast<int64_t>(ids.size()) / opts.seq_len;
  if (opts.max_windows > 0) windows = std::min(windows, opts.max_windows);
  SQ_REQUIRE(windows > 0, "eval: the text has " << ids.size()
                                                << " tokens, fewer than one window of "
                                                << opts.seq_len);
  at::Tensor all =
      at::from_blob(const_cast<int32_t*>(ids.data()), {static_cast<int64_t>(ids.size())}, at::kInt)
          .narrow(0, 0, windows * opts.seq_len)
          .to(at::kLong)
          .view({windows, opts.seq_len});
  auto get_block = [&](int64_t i) { return provider ? provider(i) : model.block(i); };
  const int64_t batch = std::max<int64_t>(1, opts.batch);
  double nll = 0;
  if (opts.low_memory) {
    std::vector<at::Tensor> hidden;
    std::vector<BlockContext> ctxs;
    for (int64_t s = 0; s < windows; s += batch) {
      at::Tensor b = all.narrow(0, s, std::min(batch, windows - s));
      ctxs.push_back(make_context(b.size(0), b.size(1), model.device()));
      hidden.push_back(model.embed(b, ctxs.back()));
    }
    for (int64_t i = 0; i < model.num_blocks(); ++i) {
      auto blk = get_block(i);
      for (size_t j = 0; j < hidden.size(); ++j) hidden[j] = blk->forward(hidden[j], ctxs[j]);
    }
    for (size_t j = 0; j < hidden.size(); ++j)
      nll += window_nll(model, hidden[j], all.narrow(0, j * batch, hidden[j].size(0)));
  } else {
    std::vector<std::unique_ptr<Block>> blocks;
    for (int64_t i = 0; i < model.num_blocks(); ++i) blocks.push_back(get_block(i));
    for (int64_t s = 0; s < windows; s += batch) {
      at::Tensor b = all.narrow(0, s, std::min(batch, windows - s));
      BlockContext ctx = make_context(b.size(0), b.size(1), model.device());
      at::Tensor h = model.embed(b, ctx);
      for (auto& blk : blocks) h = blk->forward(h, ctx);
      nll += window_nll(model, h, b);
    }
  }
  EvalResult r;
  r.windows = windows;
  r.tokens = windows * (opts.seq_len - 1);
  r.mean_nll = nll / static_cast<double>(r.tokens);
  r.ppl = std::exp(r.mean_nll);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace sq::rank
