// The single-process quantization run: plan → calibration → per-block solve → pack → write →
// configs → commit (DESIGN.md §1). The distributed run reuses the same per-block pieces.
#include "coordinator/quantize.h"

#include <chrono>
#include <cmath>
#include <set>

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

namespace sq::coordinator {

int run_quantize(const Options& o, const Plan& plan) {
  using clock = std::chrono::steady_clock;
  const auto t_start = clock::now();
  RunSummary summary(o, plan);

  const at::Device dev = run_device(o);
  const at::ScalarType dtype = compute_dtype(dev, plan.config);
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
  summary.set_calibration(calib.provenance, n, T);
  at::Tensor mask;
  if (!calib.mask.all().item<bool>()) mask = calib.mask.to(dev);

  const int64_t mb = micro_batch_for(T);
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
  io::ShardedWriter writer(out.partial_path(), o.max_shard_size_bytes);
  for (const auto& name : plan.non_block) writer.add(name, w.get(name));
  const rank::KeepFp keep_fp = keep_fp_from_plan(plan);
  const rank::ExportOptions xo = export_options(o);
  bool zero_zero = false;
  std::vector<std::string> v1_qzeros;
  std::set<std::string> not_converted;
  double solve_s = 0;
  const int64_t L = static_cast<int64_t>(plan.blocks.size());
  for (int64_t i = 0; i < L; ++i) {
    const auto tb = clock::now();
    rank::Block block(w, cfg, i, dev, dtype);
    rank::BlockQuantResult res =
        o.method == Method::kAwq
            ? rank::awq_quantize_block(block, x, mask, cfg, w, awq_settings(o, mb), keep_fp)
            : rank::gptq_quantize_block(block, x, mask, cfg, w, gptq_settings(o, mb), keep_fp);
    for (const auto& note : res.notes) log()->debug("block {}: {}", i, note);
    for (const auto& name : block.linear_names())
      if (!res.quantized.count(name)) not_converted.insert(name.substr(block.prefix().size() + 1));
    rank::ExportOptions bxo = xo;
    if (zero_zero && bxo.format == io::PackFormat::kGptqV1) bxo.format = io::PackFormat::kGptqV2;
    for (auto& [name, t] : rank::export_block(block, res.quantized, w, bxo, &zero_zero, &v1_qzeros))
      writer.add(name, t);
    x = res.next_input;
    const double secs = seconds_between(tb, clock::now());
    solve_s += secs;
    summary.add_block(i, res, secs);
    const double eta = solve_s / (i + 1) * (L - i - 1);
    log()->info("block {}/{}: {} linears quantized in {} (mean error {:.4g}), ETA {}", i + 1, L,
                res.quantized.size(), human_seconds(secs), mean_error(res), human_seconds(eta));
  }
  summary.add_phase("quantize blocks", solve_s);

  // Write: last shard, index, configs, aux files, summary; then the atomic rename.
  t0 = clock::now();
  std::vector<std::string> files = writer.finish();
  if (zero_zero && !v1_qzeros.empty()) {
    for (const auto& f : files) io::rewrite_qzeros_v1_to_v2(out.file(f), v1_qzeros, o.bits);
    log()->info("an asymmetric zero point of 0 occurred: checkpoint written as gptq_v2");
  }
  io::QuantSettings qs = quant_settings(o, zero_zero);
  qs.modules_to_not_convert.assign(not_converted.begin(), not_converted.end());
  nlohmann::json cfg_json = io::read_json_file(o.model_path + "/config.json");
  out.write_json("config.json", io::quantized_model_config(cfg_json, qs));
  for (const auto& [fname, j] : io::format_side_files(qs)) out.write_json(fname, j);
  auto copied = out.copy_aux_files();
  summary.add_phase("write", seconds_between(t0, clock::now()));
  summary.set_output(files, copied, qs);
  summary.set_total(seconds_between(t_start, clock::now()));
  out.write_json("shardquant_summary.json", summary.json());
  log()->info("{}", summary.table());
  flush_logs();
  out.commit();
  log()->info("done: {} ({} shard(s)) in {}", out.final_path(), files.size(),
              human_seconds(seconds_between(t_start, clock::now())));
  return 0;
}

}  // namespace sq::coordinator
