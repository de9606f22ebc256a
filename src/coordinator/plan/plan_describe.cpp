// The memory estimate (formula in plan.h) and the printed plan. The printed plan keeps one
// "key: value" line per fact so that scripts and tests can read it.
#include <algorithm>
#include <iomanip>
#include <sstream>

#include "coordinator/plan/plan_internal.h"
#include "rank/device/device.h"

namespace sq::coordinator {

std::string human_bytes(uint64_t bytes) {
  static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024.0 && u < 4) {
    v /= 1024.0;
    ++u;
  }
  std::ostringstream os;
  os << std::fixed << std::setprecision(u == 0 ? 0 : 2) << v << " " << units[u];
  return os.str();
}

namespace detail {

void estimate_memory(Plan& plan, const Options& opts) {
  const uint64_t dt = static_cast<uint64_t>(plan.compute_dtype_bytes);
  const uint64_t tokens = static_cast<uint64_t>(opts.calib_size) * opts.seq_len;
  const uint64_t hidden = static_cast<uint64_t>(plan.config.hidden_size);
  // GPTQ's Hessians and their solve run in float64 on the CPU, float32 on a GPU (solvers/gptq.h).
  const uint64_t hb = plan.on_cpu ? 8 : 4;
  auto& m = plan.memory;
  uint64_t max_in = 0, max_linear = 0, max_hessians = 0, max_codes = 0, max_params = 0;
  for (const auto& blk : plan.blocks) {
    m.block_weights = std::max<uint64_t>(m.block_weights, blk.params * dt);
    max_params = std::max<uint64_t>(max_params, blk.params);
    uint64_t hessians = 0, block_max_in = 0, codes = 0, weights = 0;
    for (const auto& l : blk.linears) {
      const uint64_t in = l.ref.in_features, out = l.ref.out_features;
      weights += in * out;
      if (!l.quantized) continue;
      max_in = std::max(max_in, in);
      max_linear = std::max(max_linear, in * out);
      hessians += in * in * 8;  // float64 running sums (solvers/gptq.h)
      block_max_in = std::max(block_max_in, in);
      codes += in * out;  // uint8 codes of every solved linear (rank::ResultStore) until export
    }
    // + the solve of the widest set: finalized H, the solver's copy, its damped copy, the
    // Cholesky factor, the inverse and its factor (6 in² of the solve type) and the float32
    // inverse factor the column loop reads.
    hessians += block_max_in * block_max_in * (6 * hb + 4);
    max_hessians = std::max(max_hessians, hessians);
    max_codes = std::max(max_codes, codes);
    // The worker's rule (rank/worker/block_step.cpp result_store) weighs every linear of the block,
    // kept ones included; the plan's list lacks only the never-quantized routers and
    // shared-expert gates (well under 1 % of an MoE block). On CPU the codes are in `device`.
    if (!plan.on_cpu && rank::codes_wait_on_host(weights, plan.gpu_memory))
      m.host_codes = std::max(m.host_codes, codes);
  }
  m.activations = 2 * tokens * hidden * dt;
  m.working = 4 * max_linear + max_codes;
  m.statistics = opts.method == Method::kAwq ? tokens * (max_in + hidden) * dt
                                             : max_hessians + tokens * max_in * dt;
  const uint64_t device = m.block_weights + m.activations + m.working + m.statistics;
  uint64_t non_block = 0;
  // Non-block tensors (embeddings, final norm, lm_head) are the parameters outside blocks.
  int64_t in_blocks = 0;
  for (const auto& blk : plan.blocks) in_blocks += blk.params;
  non_block = static_cast<uint64_t>(plan.total_params - in_blocks) * dt;
  const uint64_t out_buffer = m.block_weights * opts.bits / 16;
  // Mapped shard pages resident at once: the block being loaded and the one prefetched (pages
  // of loaded blocks are released: io/model/release_pages.h), in the checkpoint's stored bytes.
  const double stored_per_param =
      plan.total_params > 0 ? double(plan.input_bytes) / double(plan.total_params) : 2.0;
  const auto mapped = static_cast<uint64_t>(2.0 * double(max_params) * stored_per_param);
  m.device_peak = plan.on_cpu ? 0 : device;
  m.host_peak = kHostRuntimeBytes + non_block + m.block_weights +
                (plan.on_cpu ? device : m.activations) + out_buffer + mapped + m.host_codes;
}

}  // namespace detail

std::string describe_plan(const Plan& p, const Options& o) {
  std::ostringstream os;
  const auto& c = p.config;
  const auto pct = [&](int64_t part) {
    std::ostringstream s;
    s << std::fixed << std::setprecision(1)
      << (p.total_params ? 100.0 * part / p.total_params : 0.0) << "%";
    return s.str();
  };
  os << "shardquant plan" << (o.dry_run ? " (dry run: nothing is written)" : "") << "\n"
     << "model: " << p.model_dir << "\n"
     << "architecture: " << p.architecture << " (model_type " << c.model_type << ")\n"
     << "shape: hidden " << c.hidden_size << ", intermediate " << c.intermediate_size << ", heads "
     << c.num_attention_heads << ", kv heads " << c.num_key_value_heads << ", head_dim "
     << c.head_dim << ", vocab " << c.vocab_size << ", dtype "
     << (c.dtype.empty() ? "unknown" : c.dtype) << "\n"
     << "input files: " << p.input_files.size() << " (" << human_bytes(p.input_bytes) << ")\n"
     << "blocks: " << p.blocks.size() << "\n"
     << "parameters: " << p.total_params << "\n"
     << "quantized parameters: " << p.quantized_params << " (" << pct(p.quantized_params) << ")\n"
     << "kept parameters: " << p.kept_params << " (" << pct(p.kept_params) << ")\n"
     << "quantized linears: " << p.quantized_linears << "\n"
     << "kept linears: " << p.kept_linears << "\n"
     << "kept tensors: " << p.kept_tensors << "\n"
     << "float linear modules: " << p.float_modules.size()
     << " (the format's ignore / modules_to_not_convert list)\n"
     << "method: " << (o.method == Method::kAwq ? "AWQ" : "GPTQ") << " " << o.scheme().describe()
     << ", format " << io::cli_name(o.format) << "\n"
     << "calibration: " << o.calib_size << " x " << o.seq_len << " tokens, seed " << o.seed << "\n"
     << "device: " << (p.on_cpu ? "cpu" : "cuda") << "\n"
     << "output dir: " << p.output_dir << "\n"
     << "peak host memory: " << p.memory.host_peak << " bytes (~" << human_bytes(p.memory.host_peak)
     << ")\n"
     << "peak gpu memory: " << p.memory.device_peak << " bytes (~"
     << human_bytes(p.memory.device_peak) << ")" << (p.on_cpu ? " (CPU run)" : "") << "\n"
     << "memory terms: block weights " << human_bytes(p.memory.block_weights) << ", activations "
     << human_bytes(p.memory.activations) << ", working " << human_bytes(p.memory.working)
     << ", statistics " << human_bytes(p.memory.statistics) << "\n";
  os << "non-block tensors (kept):";
  for (const auto& n : p.non_block) os << " " << n;
  os << "\n";
  for (const auto& b : p.blocks) {
    os << "block " << b.index << " " << b.prefix << ": " << b.params << " params;";
    // Routed experts of one shape print once with their count ("experts.*.up_proj[768x2048]×128"):
    // a 256-expert block stays one readable line.
    std::vector<std::pair<std::string, int64_t>> items;
    for (const auto& l : b.linears) {
      std::string leaf = l.ref.name.substr(l.ref.name.rfind('.') + 1);
      const auto ex = l.ref.name.find(".experts.");
      if (ex != std::string::npos) {
        const size_t d0 = ex + 9, d1 = l.ref.name.find('.', d0);
        if (d1 != std::string::npos && d1 > d0 &&
            l.ref.name.find_first_not_of("0123456789", d0) == d1)
          leaf = "experts.*." + l.ref.name.substr(d1 + 1);
      }
      const std::string item = leaf + "[" + std::to_string(l.ref.out_features) + "x" +
                               std::to_string(l.ref.in_features) + "]" +
                               (l.quantized ? "" : "(fp)");
      auto it = std::find_if(items.begin(), items.end(), [&](const auto& x) {
        return x.first == item && item.rfind("experts.*.", 0) == 0;
      });
      if (it == items.end())
        items.emplace_back(item, 1);
      else
        ++it->second;
    }
    for (const auto& [item, n] : items) os << " " << item << (n > 1 ? "×" + std::to_string(n) : "");
    os << "\n";
  }
  return os.str();
}

}  // namespace sq::coordinator
