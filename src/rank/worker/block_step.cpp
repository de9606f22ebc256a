// One block step (block_step.h). The retry rebuilds the block because a failed AWQ attempt may
// already have rescaled its weights in place.
#include "rank/worker/block_step.h"

#include "common/interrupt.h"

#include <chrono>
#include <csignal>
#include <optional>

#include "common/check.h"
#include "common/log.h"
#include "rank/device/device.h"

namespace sq::rank {
namespace {

using clock = std::chrono::steady_clock;

double since(clock::time_point t) {
  return std::chrono::duration<double>(clock::now() - t).count();
}

}  // namespace

int64_t micro_batch_for(int64_t requested, int64_t seq_len) {
  if (requested > 0) return requested;
  return std::max<int64_t>(1, 16384 / std::max<int64_t>(1, seq_len));
}

void halve_to(CalibActivations& a, int64_t seq_len) {
  while (a.seq_len() > seq_len) halve_sequences(a);
}

double mean_error(const BlockQuantResult& r) {
  if (r.reports.empty()) return 0;
  double s = 0;
  for (const auto& x : r.reports) s += x.error;
  return s / r.reports.size();
}

BlockWorker::BlockWorker(StepSettings settings, const io::ModelWeights& w,
                         const io::ModelConfig& cfg, at::Device dev, at::ScalarType dtype,
                         int64_t blocks_here, const Reducer* reducer, BlockSink sink)
    : s_(std::move(settings)),
      w_(w),
      cfg_(cfg),
      dev_(dev),
      dtype_(dtype),
      blocks_here_(blocks_here),
      reducer_(reducer),
      sink_(std::move(sink)),
      prefetcher_(w) {}

void BlockWorker::check_memory(const CalibActivations& a, int64_t i) const {
  const MemoryEstimateInput in{a.samples(), a.seq_len(), micro_batch(a.seq_len()), s_.awq, dtype_};
  if (s_.gpu_mem_limit_bytes == 0 || reducer_ == nullptr || reducer_->world() <= 1) {
    check_memory_limit(s_.gpu_mem_limit_bytes, cfg_, in, i);
    return;
  }
  // Collective solves: every rank halves or none does.
  bool over = false;
  std::string why;
  try {
    check_memory_limit(s_.gpu_mem_limit_bytes, cfg_, in, i);
  } catch (const MemoryLimitExceeded& e) {
    over = true;
    why = e.what();
  }
  const int64_t ranks_over = reducer_->sum(static_cast<int64_t>(over));
  if (ranks_over > 0)
    throw MemoryLimitExceeded(over ? why
                                   : "block " + std::to_string(i) + ": " +
                                         std::to_string(ranks_over) +
                                         " other rank(s) over --gpu-mem-limit (out of memory)");
}

namespace {

// Where the block's solved linears wait for the export: compact always (the worker exports from
// codes, zeros, scales and g_idx only); in host memory when their uint8 codes alone would take
// more than a sixteenth of the device (an MoE block of hundreds of experts), so the solves of the
// block's last linears still find room.
ResultStore result_store(const Block& block) {
  if (!block.device().is_cuda()) return ResultStore::kCompact;
  uint64_t codes = 0;
  for (const auto& name : block.linear_names())
    codes += static_cast<uint64_t>(block.linear(name).weight.numel());
  return codes_wait_on_host(codes, device_total_memory(block.device())) ? ResultStore::kCompactHost
                                                                        : ResultStore::kCompact;
}

}  // namespace

BlockQuantResult BlockWorker::solve(Block& block, const CalibActivations& a) {
  const int64_t mb = micro_batch(a.seq_len());
  const ResultStore store = result_store(block);
  if (s_.awq) {
    AwqSettings st = s_.awq_settings;
    st.micro_batch = mb;
    st.results = store;
    return awq_quantize_block(block, a.x, a.mask, cfg_, w_, st, s_.keep_fp, reducer_);
  }
  GptqSettings st = s_.gptq_settings;
  st.micro_batch = mb;
  st.results = store;
  return gptq_quantize_block(block, a.x, a.mask, cfg_, w_, st, s_.keep_fp, reducer_);
}

StepResult BlockWorker::step(int64_t i, CalibActivations& a, int64_t next,
                             std::unique_ptr<Block> built) {
  const auto tb = clock::now();
  const int64_t L = static_cast<int64_t>(s_.prefixes.size());
  if (next >= 0 && next < L) prefetcher_.prefetch(s_.prefixes[next]);
  const bool collective = reducer_ != nullptr && reducer_->world() > 1;
  std::unique_ptr<Block> bp = std::move(built);
  // A signal abandons this block at the solvers' next abandon_point (common/interrupt.h), unless
  // other ranks solve it with this one.
  std::optional<AbandonScope> abandon;
  if (!collective) abandon.emplace();
  BlockQuantResult res;
  try {
    res = with_seq_len_backoff<BlockQuantResult>(
        a, i, dev_,
        [&](const CalibActivations& c) {
          check_memory(c, i);
          const auto tl = clock::now();
          if (!bp) bp = std::make_unique<Block>(w_, cfg_, i, dev_, dtype_);
          const auto tq = clock::now();
          times_.load += std::chrono::duration<double>(tq - tl).count();
          try {
            BlockQuantResult r = solve(*bp, c);
            if (dev_.is_cuda()) synchronize_device(dev_);
            times_.quant_only += since(tq);
            return r;
          } catch (const std::exception& e) {
            bp.reset();  // a retry starts from the checkpoint's weights
            if (collective && is_out_of_memory(e))
              SQ_THROW(
                  BackendError,
                  "block " << i << ": out of memory in a --parallel data solve (the ranks "
                           << "solve together, one cannot retry alone; --gpu-mem-limit lets "
                           << "them back off together): " << std::string(e.what()).substr(0, 400));
            throw;
          }
        },
        [&](int64_t from, int64_t to, const std::string& why) {
          log()->warn("block {}: out of memory at seq_len {}, retrying with seq_len {} ({})", i,
                      from, to, why);
        });
  } catch (const Interrupted& e) {
    const int sig = interrupt_signal();
    throw Interrupted(std::string(sig == SIGINT ? "SIGINT" : "SIGTERM") + ": block " +
                          std::to_string(i + 1) + " abandoned; interrupted after block " +
                          std::to_string(i) + " of " + std::to_string(L) + "; rerun with --resume",
                      sig);
  }
  abandon.reset();
  test_kill_point("solve", i);  // solved, nothing of the block written yet
  for (const auto& note : res.notes) log()->debug("block {}: {}", i, note);
  if (sink_) {
    const auto te = clock::now();
    std::vector<std::string> unpacked;
    NamedTensors tensors = export_block(*bp, res.quantized, w_, s_.export_opts, &unpacked);
    sink_(i, std::move(tensors), unpacked);
    times_.export_ += since(te);
  }
  bp.reset();
  const size_t n_quantized = res.quantized.size();
  res.quantized.clear();
  a.x = std::move(res.next_input);
  res.next_input = at::Tensor();
  const double secs = since(tb);
  times_.blocks += secs;
  ++done_;
  const double eta = times_.blocks / done_ * std::max<int64_t>(0, blocks_here_ - done_);
  const size_t uncal = uncalibrated_linears(res).size();  // MoE experts never routed to
  log()->info("block {}/{}: {} linears quantized in {} (mean error {:.4g}){}, ETA {}", i + 1, L,
              n_quantized, human_seconds(secs), mean_error(res),
              uncal ? ", " + std::to_string(uncal) + " without calibration tokens (RTN)" : "",
              human_seconds(eta));
  return {std::move(res), secs};
}

}  // namespace sq::rank
