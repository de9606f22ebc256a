#include "coordinator/run/run_support.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <sstream>

#include "common/check.h"
#include "common/host_memory.h"
#include "common/log.h"
#include "io/safetensors/tensor.h"
#include "rank/device/device.h"
#include "solvers/cpu_threads.h"

namespace fs = std::filesystem;

namespace sq::coordinator {

at::Device run_device(const Options& o, int local_rank) {
  if (o.force_cpu || o.device == "cpu") return at::Device(at::kCPU);
  if (!o.device.empty() && o.device != "auto") {
    at::Device d(o.device);
    SQ_REQUIRE(!d.is_cuda() || rank::cuda_available(),
               "--device " << o.device << " asked for CUDA but no CUDA device is available");
    return d;
  }
  return rank::pick_device(false, local_rank);
}

void prepare_host_for(const at::Device& dev, int ranks_on_host) {
  sampled_host_peaks();  // starts the sampler of peak anonymous / file-backed RSS
  if (!dev.is_cpu()) return;
  const std::string what = keep_freed_host_memory();
  if (!what.empty()) log()->info("{}", what);
  std::string why;
  const int threads = solvers::default_cpu_threads(ranks_on_host, &why);
  log()->info("{} ({})", solvers::fix_cpu_threads(threads), why);
}

at::ScalarType compute_dtype(const at::Device& d, const io::ModelConfig& cfg,
                             const std::string& requested) {
  static const std::map<std::string, at::ScalarType> kNamed = {
      {"fp32", at::kFloat}, {"bf16", at::kBFloat16}, {"fp16", at::kHalf}};
  auto named = kNamed.find(requested);
  if (named != kNamed.end()) return named->second;
  if (d.is_cpu()) return at::kFloat;
  return cfg.dtype == "float16" ? at::kHalf : at::kBFloat16;
}

int64_t micro_batch_for(const Options& o, int64_t seq_len) {
  return rank::micro_batch_for(o.micro_batch, seq_len);
}

io::CalibOptions calib_options(const Options& o) {
  io::CalibOptions c;
  c.datasets = o.datasets;
  c.files = o.calib_files;
  c.splits = o.calib_split;
  c.n_samples = o.calib_size;
  c.seq_len = o.seq_len;
  c.seed = o.seed;
  c.mode = o.method == Method::kAwq ? io::CalibMode::Awq : io::CalibMode::Gptq;
  if (o.calib_sampling == "texts") c.mode = io::CalibMode::Awq;
  if (o.calib_sampling == "windows") c.mode = io::CalibMode::Gptq;
  c.cache_path = o.calib_cache;
  c.mix = o.calib_mix == "proportional" ? io::CalibMix::Proportional : io::CalibMix::Equal;
  c.dataset_dir = o.dataset_dir;
  return c;
}

rank::KeepFp keep_fp_from_plan(const Plan& plan) {
  auto kept = std::make_shared<std::set<std::string>>();
  for (const auto& b : plan.blocks)
    for (const auto& l : b.linears)
      if (!l.quantized) kept->insert(l.ref.name);
  return [kept](const std::string& name) { return kept->count(name) != 0; };
}

rank::ExportOptions export_options(const Options& o, const Plan& plan) {
  rank::ExportOptions x;
  x.format = o.format;
  x.scheme = o.stored_scheme();
  x.pack.symmetric = !o.zero_point;
  // The config's actorder "group" (compressed-tensors config, io/format/format_compressed.cpp).
  x.pack.g_idx = x.scheme.act_order && !o.static_groups;
  // The solvers' scales are fp16 values: exact in an fp32 or fp16 model; a bf16 model rounds
  // them once more, as a bf16 runtime does to the fp16 scales of the AWQ/GPTQ formats on load.
  x.pack.scale_dtype = io::to_scalar_type(plan.model_dtype);
  return x;
}

rank::AwqSettings awq_settings(const Options& o, int64_t micro_batch) {
  rank::AwqSettings s;
  s.scheme = o.scheme();
  s.scheme.act_order = false;  // AWQ GEMM has no g_idx (also for --awq-rounding gptq)
  s.duo_scaling = o.duo_scaling;
  s.clip = o.clip;
  s.n_grid = o.n_grid;
  s.clip_tokens = o.clip_tokens;
  s.clip_asym = o.clip_asym;
  s.gptq_rounding = o.awq_rounding == AwqRounding::kGptq;
  s.gptq.damp_percent = o.damp_percent;
  s.refine = {o.iter, o.search_step};
  s.propagate_fp = o.propagate == Propagate::kFp;
  s.salient_quota = o.dump_salient.empty() ? -1.0 : o.salient_quota;
  s.micro_batch = micro_batch;
  return s;
}

rank::GptqSettings gptq_settings(const Options& o, int64_t micro_batch) {
  rank::GptqSettings s;
  s.scheme = o.scheme();
  s.gptq.damp_percent = o.damp_percent;
  s.gptq.static_groups = o.static_groups;
  s.hessian_budget = o.hessian_budget_bytes ? o.hessian_budget_bytes : o.gpu_mem_limit_bytes / 4;
  s.propagate_fp = o.propagate == Propagate::kFp;
  s.salient_quota = o.dump_salient.empty() ? -1.0 : o.salient_quota;
  s.micro_batch = micro_batch;
  return s;
}

io::QuantSettings quant_settings(const Options& o, io::Format written) {
  io::QuantSettings q;
  q.format = written;
  q.scheme = o.stored_scheme();
  q.static_groups = o.static_groups;
  q.true_sequential = o.true_sequential;
  q.damp_percent = o.damp_percent;
  return q;
}

rank::StepSettings step_settings(const Options& o, const Plan& plan) {
  rank::StepSettings s;
  s.awq = o.method == Method::kAwq;
  // micro_batch is set per attempt (it follows the seq_len in use).
  if (s.awq)
    s.awq_settings = awq_settings(o, 0);
  else
    s.gptq_settings = gptq_settings(o, 0);
  s.keep_fp = keep_fp_from_plan(plan);
  s.export_opts = export_options(o, plan);
  s.micro_batch = o.micro_batch;
  s.gpu_mem_limit_bytes = o.gpu_mem_limit_bytes;
  for (const auto& b : plan.blocks) s.prefixes.push_back(b.prefix);
  return s;
}

FinishedCheckpoint finish_checkpoint(const io::OutputDir& out, const Options& o, const Plan& plan,
                                     io::Format written) {
  FinishedCheckpoint done;
  done.settings = quant_settings(o, written);
  done.settings.modules_to_not_convert = plan.float_modules;
  nlohmann::json cfg_json = io::read_json_file(o.model_path + "/config.json");
  out.write_json("config.json", io::quantized_model_config(cfg_json, done.settings));
  for (const auto& [fname, j] : io::format_side_files(done.settings)) out.write_json(fname, j);
  done.copied = out.copy_aux_files();
  return done;
}

double seconds_between(std::chrono::steady_clock::time_point a,
                       std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

RunSummary::RunSummary(const Options& o, const Plan& plan) {
  j_["shardquant_version"] = SQ_VERSION;
  j_["model_path"] = o.model_path;
  j_["architecture"] = plan.architecture;
  j_["settings"] = {{"method", to_string(o.method)},
                    {"bits", o.bits},
                    {"group_size", o.group_size},
                    {"zero_point", o.zero_point},
                    {"format", io::cli_name(o.format)},
                    {"desc_act", o.desc_act},
                    {"static_groups", o.static_groups},
                    {"damp_percent", o.damp_percent},
                    {"mse", o.mse},
                    {"propagate", to_string(o.propagate)},
                    {"duo_scaling", o.duo_scaling},
                    {"clip", o.clip},
                    {"n_grid", o.n_grid},
                    {"clip_tokens", o.clip_tokens},
                    {"clip_asym", o.clip_asym},
                    {"awq_rounding", to_string(o.awq_rounding)},
                    {"iter", o.iter},
                    {"search_step", o.search_step},
                    {"seq_len_requested", o.seq_len},
                    {"calib_size", o.calib_size},
                    {"seed", o.seed},
                    {"force_cpu", o.force_cpu}};
  j_["blocks"] = nlohmann::json::array();
  j_["timings_s"] = nlohmann::json::object();
}

void RunSummary::set_calibration(const nlohmann::json& provenance, int64_t samples,
                                 int64_t seq_len) {
  j_["calibration"] = provenance;
  j_["calibration"]["samples_used"] = samples;
  j_["calibration"]["seq_len_used"] = seq_len;
}

void RunSummary::set_value(const std::string& key, double value) {
  j_[key] = value;
}

void RunSummary::add_phase(const std::string& name, double seconds) {
  j_["timings_s"][name] = seconds;
}

void BlockLog::add(int64_t index, const rank::BlockQuantResult& r, double seconds) {
  nlohmann::json b = {{"index", index}, {"seconds", seconds}, {"linears", nlohmann::json::array()}};
  for (const auto& rep : r.reports) {
    b["linears"].push_back({{"name", rep.name},
                            {"error", rep.error},
                            {"seconds", rep.seconds},
                            {"damp_escalations", rep.stats.damp_escalations},
                            {"diagonal_floor", rep.stats.diagonal_floor},
                            {"rtn_fallback", rep.stats.rtn_fallback},
                            {"dead_columns", rep.stats.dead_columns},
                            {"note", rep.note}});
    if (!rep.salient.empty()) salient[rep.name] = rep.salient;
  }
  b["notes"] = r.notes;
  // Linears quantized without calibration tokens (MoE experts never routed to; RTN). Written only
  // when there are some, so the summaries of dense models keep their exact content.
  const std::vector<std::string> uncalibrated = rank::uncalibrated_linears(r);
  if (!uncalibrated.empty()) {
    b["uncalibrated_linears"] = uncalibrated.size();
    b["uncalibrated"] = uncalibrated;
  }
  // Host memory: anonymous (our allocations) and file-backed (mapped shards) apart.
  const HostRss rss = read_host_rss();
  const double gib = 1.0 / (1ull << 30);
  b["host_rss"] = {{"anon_gib", rss.anon * gib}, {"file_gib", rss.file * gib}};
  host_memory["peak_rss_gib"] = rss.peak * gib;
  host_memory["max_rss_anon_gib"] =
      std::max(host_memory.value("max_rss_anon_gib", 0.0), rss.anon * gib);
  host_memory["max_rss_file_gib"] =
      std::max(host_memory.value("max_rss_file_gib", 0.0), rss.file * gib);
  // Sampled every 10 ms since the run started (prepare_host_for), so a solve's transient peak
  // between two block ends is seen too.
  const HostRss sampled = sampled_host_peaks();
  host_memory["peak_rss_anon_gib"] = sampled.anon * gib;
  host_memory["peak_rss_file_gib"] = sampled.file * gib;
  b["phases_s"] = r.phase_seconds;
  blocks.push_back(std::move(b));
}

void RunSummary::add_blocks(const nlohmann::json& blocks, const nlohmann::json& salient,
                            const nlohmann::json& host_memory) {
  auto& all = j_["blocks"];
  for (const auto& b : blocks) {
    // Written only when there are some, so the summaries of dense models keep their exact content.
    if (b.contains("uncalibrated_linears"))
      j_["uncalibrated_linears"] =
          j_.value("uncalibrated_linears", int64_t{0}) + b["uncalibrated_linears"].get<int64_t>();
    // Solve phases summed over blocks ("where the time goes" inside "quantization only").
    for (auto it = b["phases_s"].begin(); it != b["phases_s"].end(); ++it) {
      auto& slot = j_["solve_phases_s"][it.key()];
      slot = (slot.is_number() ? slot.get<double>() : 0.0) + it.value().get<double>();
    }
    all.push_back(b);
  }
  std::stable_sort(all.begin(), all.end(), [](const auto& a, const auto& b) {
    return a.at("index").template get<int64_t>() < b.at("index").template get<int64_t>();
  });
  salient_.update(salient);
  for (auto it = host_memory.begin(); it != host_memory.end(); ++it) {
    auto& slot = j_["host_memory"][it.key()];
    slot = std::max(slot.is_number() ? slot.get<double>() : 0.0, it.value().get<double>());
  }
}

void write_salient_dump(const Options& o, const RunSummary& summary, const io::OutputDir& out) {
  if (o.dump_salient.empty()) return;
  const nlohmann::json j = {
      {"salient_quota", o.salient_quota},
      {"method", to_string(o.method)},
      {"statistic", o.method == Method::kAwq ? "mean |x| per input column"
                                             : "Hessian diagonal (sum of x^2) per input column"},
      {"linears", summary.salient()}};
  // weakly_canonical on both sides: a symlinked prefix must not hide that the path is inside.
  const fs::path target = fs::weakly_canonical(fs::absolute(o.dump_salient));
  const fs::path final_dir = fs::weakly_canonical(out.final_path());
  const fs::path rel = target.lexically_relative(final_dir);
  const bool inside = !rel.empty() && *rel.begin() != ".." && rel != ".";
  if (inside) {
    fs::create_directories((fs::path(out.partial_path()) / rel).parent_path());
    out.write_json(rel.string(), j);
  } else {
    fs::create_directories(target.parent_path());
    io::write_json_file(target.string(), j);
  }
  log()->info("salient columns of {} linears written to {}", summary.salient().size(),
              target.string());
}

void RunSummary::set_output(const std::vector<std::string>& shards,
                            const std::vector<std::string>& copied, const io::QuantSettings& qs) {
  j_["output"] = {{"shards", shards},
                  {"copied_files", copied},
                  {"quantization_config", io::quantization_config(qs)}};
}

void RunSummary::set_total(double seconds) {
  j_["timings_s"]["total"] = seconds;
}

std::string RunSummary::table() const {
  std::ostringstream os;
  os << "summary\n  phase                 seconds\n";
  for (auto it = j_["timings_s"].begin(); it != j_["timings_s"].end(); ++it) {
    char line[96];
    std::snprintf(line, sizeof line, "  %-20s %8.2f\n", it.key().c_str(), it.value().get<double>());
    os << line;
  }
  if (j_.contains("solve_phases_s"))
    for (auto it = j_["solve_phases_s"].begin(); it != j_["solve_phases_s"].end(); ++it) {
      char line[96];
      std::snprintf(line, sizeof line, "    %-24s %8.2f\n", it.key().c_str(),
                    it.value().get<double>());
      os << line;
    }
  // Error per layer role, averaged over blocks ("self_attn.q_proj" …).
  std::map<std::string, std::pair<double, int>> per_role;
  int fallbacks = 0, escalations = 0;
  for (const auto& b : j_["blocks"])
    for (const auto& l : b["linears"]) {
      std::string name = l["name"];
      auto pos = name.find('.', name.find_first_of("0123456789"));
      std::string role = pos == std::string::npos ? name : name.substr(pos + 1);
      per_role[role].first += l["error"].get<double>();
      per_role[role].second += 1;
      fallbacks += l["rtn_fallback"].get<bool>() ? 1 : 0;
      escalations += l["damp_escalations"].get<int>();
    }
  os << "  layer                          mean error  (over blocks)\n";
  for (const auto& [role, v] : per_role) {
    char line[160];
    std::snprintf(line, sizeof line, "  %-30s %12.5g  (%d)\n", role.c_str(), v.first / v.second,
                  v.second);
    os << line;
  }
  os << "  fallbacks to RTN: " << fallbacks << ", damping escalations: " << escalations << "\n";
  if (j_.contains("host_memory")) {
    char line[320];  // the line is ~150 characters with GiB figures of any size
    const auto& hm = j_["host_memory"];
    std::snprintf(line, sizeof line,
                  "  host memory: peak RSS %.3f GiB, sampled peaks %.3f GiB anonymous and %.3f "
                  "GiB file-backed; at block ends at most %.3f GiB anonymous, %.3f GiB "
                  "file-backed\n",
                  hm.value("peak_rss_gib", 0.0), hm.value("peak_rss_anon_gib", 0.0),
                  hm.value("peak_rss_file_gib", 0.0), hm.value("max_rss_anon_gib", 0.0),
                  hm.value("max_rss_file_gib", 0.0));
    os << line;
  }
  if (j_.contains("uncalibrated_linears"))
    os << "  linears no calibration token reached (quantized by RTN): "
       << j_["uncalibrated_linears"].get<int64_t>() << "\n";
  if (j_.contains("calibration"))
    os << "  calibration: " << j_["calibration"]["samples_used"] << " samples x seq_len "
       << j_["calibration"]["seq_len_used"] << " (requested " << j_["settings"]["seq_len_requested"]
       << ")";
  return os.str();
}

}  // namespace sq::coordinator
