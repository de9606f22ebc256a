// The single-process quantization run: plan → calibration → per-block solve → pack → write →
// configs → commit (DESIGN.md §1). The distributed run reuses the same per-block pieces.
#include "coordinator/quantize.h"

#include <chrono>
#include <cmath>
#include <memory>

#include "common/check.h"
#include "common/log.h"
#include "coordinator/run_support.h"
#include "io/calib.h"
#include "io/gptq_rewrite.h"
#include "io/output_dir.h"
#include "io/quant_config.h"
#include "io/safetensors_writer.h"
#include "io/tokenizer.h"
#include "rank/block_export.h"
#include "rank/block_quant.h"
#include "rank/model.h"
#include "rank/oom.h"
#include "rank/prefetch.h"

namespace sq::coordinator {

int run_quantize(const Options& o, const Plan& plan) {
  using clock = std::chrono::steady_clock;
  const auto t_start = clock::now();
  RunSummary summary(o, plan);

  const at::Device dev = run_device(o);
  prepare_host_for(dev);
  const at::ScalarType dtype = compute_dtype(dev, plan.config, o.compute_dtype);
  io::ModelWeights w(o.model_path);
  const io::ModelConfig& cfg = plan.config;
  io::OutputDir out(o.output_dir, o.model_path);
  if (o.log_file.empty()) add_log_file(out.file("quantize.log"));
  log()->info("quantizing {} ({}, {} blocks) with {} {} on {} ({}), output {}", o.model_path,
              plan.architecture, plan.blocks.size(), to_string(o.method), o.scheme().describe(),
              dev.str(), c10::toString(dtype), o.output_dir);

  // Calibration: the model's own tokenizer, then n × seq_len samples.
  auto t0 = clock::now();
  auto tok = io::Tokenizer::load(o.model_path);
  io::CalibSet calib = io::build_calibration(calib_options(o), *tok);
  for (const auto& wmsg : calib.warnings) log()->warn("calibration: {}", wmsg);
  const int64_t n = calib.tokens.size(0), T = calib.tokens.size(1);
  SQ_REQUIRE(n > 0, "calibration produced no samples");
  log()->info("calibration: {} samples x {} tokens{}", n, T,
              calib.from_cache ? " (from cache)" : "");
  // The same provenance the calibration cache keys on (tokenizer hash, sources, split, seed…)
  // goes into quantize.log and shardquant_summary.json of the output.
  log()->info("calibration provenance: {}", calib.provenance.dump());
  summary.set_calibration(calib.provenance, n, T);
  at::Tensor mask;
  if (!calib.mask.all().item<bool>()) mask = calib.mask.to(dev);

  const int64_t mb = micro_batch_for(o, T);
  rank::Model model(w, cfg, dev, dtype);
  at::Tensor x;
  {
    std::vector<at::Tensor> parts;
    for (int64_t b0 = 0; b0 < n; b0 += mb) {
      const int64_t b1 = std::min(n, b0 + mb);
      rank::BlockContext ctx = rank::make_context(b1 - b0, T, dev);
      parts.push_back(model.embed(calib.tokens.slice(0, b0, b1).to(dev), ctx));
    }
    x = at::cat(parts, 0);
  }
  summary.add_phase("calibration", seconds_between(t0, clock::now()));

  // Blocks, streamed: build, solve, pack, hand to the writer, drop.
  io::ShardedWriter writer(out.partial_path(), o.max_shard_size_bytes, {{"format", "pt"}},
                           weight_file_stem(o));
  for (const auto& name : plan.non_block) writer.add(name, w.get(name));
  const rank::KeepFp keep_fp = keep_fp_from_plan(plan);
  const rank::ExportOptions xo = export_options(o, plan);
  bool zero_zero = false;
  std::vector<std::string> v1_qzeros;
  double solve_s = 0, load_s = 0, quant_only_s = 0;  // quant_only_s: the solve alone
  double export_s = 0;                               // packing + handing tensors to the writer
  const int64_t L = static_cast<int64_t>(plan.blocks.size());
  // OOM back-off (rank/oom.h): a block that runs out of GPU memory (or over --gpu-mem-limit)
  // is rebuilt and retried on sequences of half the length; the shorter length stays.
  rank::CalibActivations cal{x, mask};
  x = at::Tensor();
  rank::BlockPrefetcher prefetcher(w);  // pages block i+1 in while block i is solved
  for (int64_t i = 0; i < L; ++i) {
    const auto tb = clock::now();
    if (i + 1 < L) prefetcher.prefetch(plan.blocks[i + 1].prefix);
    std::unique_ptr<rank::Block> bp;
    rank::BlockQuantResult res = rank::with_seq_len_backoff<rank::BlockQuantResult>(
        cal, i, dev,
        [&](const rank::CalibActivations& a) {
          const int64_t mbi = micro_batch_for(o, a.seq_len());
          rank::check_memory_limit(o.gpu_mem_limit_bytes, cfg,
                                   {a.samples(), a.seq_len(), mbi, o.method == Method::kAwq, dtype},
                                   i);
          const auto tl = clock::now();
          bp = std::make_unique<rank::Block>(w, cfg, i, dev, dtype);
          const auto tq = clock::now();
          load_s += seconds_between(tl, tq);
          rank::BlockQuantResult r =
              o.method == Method::kAwq ? rank::awq_quantize_block(*bp, a.x, a.mask, cfg, w,
                                                                  awq_settings(o, mbi), keep_fp)
                                       : rank::gptq_quantize_block(*bp, a.x, a.mask, cfg, w,
                                                                   gptq_settings(o, mbi), keep_fp);
          if (dev.is_cuda()) rank::synchronize_device(dev);
          quant_only_s += seconds_between(tq, clock::now());
          return r;
        },
        [&](int64_t from, int64_t to, const std::string& why) {
          log()->warn("block {}: out of memory at seq_len {}, retrying with seq_len {} ({})", i,
                      from, to, why);
          summary.set_calibration(calib.provenance, cal.samples() * 2, to);
        });
    rank::Block& block = *bp;
    for (const auto& note : res.notes) log()->debug("block {}: {}", i, note);
    rank::ExportOptions bxo = xo;
    if (zero_zero && bxo.format == io::PackFormat::kGptqV1) bxo.format = io::PackFormat::kGptqV2;
    const auto te = clock::now();
    for (auto& [name, t] : rank::export_block(block, res.quantized, w, bxo, &zero_zero, &v1_qzeros))
      writer.add(name, t);
    export_s += seconds_between(te, clock::now());
    cal.x = res.next_input;
    const double secs = seconds_between(tb, clock::now());
    solve_s += secs;
    summary.add_block(i, res, secs);
    const double eta = solve_s / (i + 1) * (L - i - 1);
    const size_t uncal = rank::uncalibrated_linears(res).size();  // MoE experts never routed to
    log()->info("block {}/{}: {} linears quantized in {} (mean error {:.4g}){}, ETA {}", i + 1, L,
                res.quantized.size(), human_seconds(secs), mean_error(res),
                uncal ? ", " + std::to_string(uncal) + " without calibration tokens (RTN)" : "",
                human_seconds(eta));
  }
  summary.add_phase("quantize blocks", solve_s);
  summary.add_phase("block load", load_s);
  summary.add_phase("quantization only", quant_only_s);
  summary.add_phase("export", export_s);
  if (dev.is_cuda())
    summary.set_value("peak_gpu_allocated_gib",
                      static_cast<double>(rank::device_peak_allocated(dev)) / (1ull << 30));
  if (cal.seq_len() != T)
    log()->warn("calibration seq_len finally used: {} ({} sequences; requested {} x {})",
                cal.seq_len(), cal.samples(), n, T);

  // Write: last shard, index, configs, aux files, summary; then the atomic rename.
  t0 = clock::now();
  std::vector<std::string> files = writer.finish();
  const auto [qs, copied] = finish_checkpoint(out, o, plan, files, zero_zero, v1_qzeros);
  summary.add_phase("write", seconds_between(t0, clock::now()));
  summary.set_output(files, copied, qs);
  summary.set_total(seconds_between(t_start, clock::now()));
  out.write_json("shardquant_summary.json", summary.json());
  write_salient_dump(o, summary, out);
  log()->info("{}", summary.table());
  flush_logs();
  out.commit();
  log()->info("done: {} ({} shard(s)) in {}", out.final_path(), files.size(),
              human_seconds(seconds_between(t_start, clock::now())));
  return 0;
}

}  // namespace sq::coordinator
