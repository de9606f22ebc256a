// make_plan(): reads config.json and the safetensors headers only, so a dry run of a 70B model
// takes a second and touches no tensor data.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iomanip>
#include <sstream>

#include "common/check.h"
#include "common/host_memory.h"
#include "coordinator/plan/plan_internal.h"
#include "io/model/model_config.h"
#include "io/model/model_weights.h"
#include "io/model/weight_checks.h"
#include "rank/device/device.h"
#include "rank/model/arch_table.h"

namespace fs = std::filesystem;

namespace sq::coordinator {
namespace {

bool starts_with(const std::string& s, const std::string& p) {
  return s.compare(0, p.size(), p) == 0;
}

// "-1" → -1; anything that is not a whole integer → nullopt (a name substring).
std::optional<int64_t> as_block_index(const std::string& s) {
  size_t used = 0;
  try {
    int64_t v = std::stoll(s, &used);
    if (used == s.size()) return v;
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

// Marks linears kept by --keep-fp-layers; every entry must match something.
void apply_keep(Plan& plan, const Options& opts) {
  const auto n = static_cast<int64_t>(plan.blocks.size());
  for (const auto& entry : opts.keep_fp_layers) {
    bool matched = false;
    if (auto idx = as_block_index(entry)) {
      const int64_t b = *idx < 0 ? n + *idx : *idx;
      SQ_REQUIRE(b >= 0 && b < n, "--keep-fp-layers entry " << entry << ": the model has " << n
                                                            << " blocks (valid: " << -n << ".."
                                                            << n - 1 << ")");
      for (auto& l : plan.blocks[b].linears)
        if (l.quantized) {
          l.quantized = false;
          l.keep_reason = entry;
        }
      matched = true;
    } else {
      for (auto& blk : plan.blocks)
        for (auto& l : blk.linears)
          if (l.ref.name.find(entry) != std::string::npos) {
            matched = true;
            if (l.quantized) {
              l.quantized = false;
              l.keep_reason = entry;
            }
          }
    }
    SQ_REQUIRE(matched, "--keep-fp-layers entry '" << entry
                                                   << "' matches no linear of the model (expected "
                                                      "a block index or part of a linear name)");
  }
}

int dtype_bytes(const io::ModelConfig& cfg, const io::ModelWeights& w) {
  struct Row {
    const char* name;
    int bytes;
  };
  static const Row rows[] = {{"bfloat16", 2}, {"float16", 2}, {"float32", 4}};
  for (const auto& r : rows)
    if (cfg.dtype == r.name) return r.bytes;
  const auto names = w.names();
  return names.empty() ? 2 : static_cast<int>(io::dtype_size(w.info(names.front()).dtype));
}

}  // namespace

void check_output_dir(const std::string& output_dir, const std::string& model_dir,
                      const std::vector<std::string>& input_files) {
  SQ_REQUIRE(!output_dir.empty(), "--output_dir is empty");
  const fs::path out = fs::weakly_canonical(fs::absolute(output_dir));
  const fs::path model = fs::weakly_canonical(fs::absolute(model_dir));
  SQ_REQUIRE(out != model, "--output_dir " << output_dir << " is the model directory itself ("
                                           << model.string() << "); expected a new directory, e.g. "
                                           << (fs::path(model_dir) / "AWQ-4bit").string());
  for (const auto& f : input_files)
    SQ_REQUIRE(out != fs::weakly_canonical(fs::absolute(f)),
               "--output_dir " << output_dir << " is one of the model's files (" << f << ")");
  for (const auto& e : fs::directory_iterator(model))
    SQ_REQUIRE(out != fs::weakly_canonical(e.path()),
               "--output_dir " << output_dir << " is one of the model's files ("
                               << e.path().string() << ")");
  const std::string o = out.string() + "/", m = model.string() + "/";
  SQ_REQUIRE(!starts_with(m, o), "--output_dir " << output_dir << " contains the model directory "
                                                 << model.string()
                                                 << "; expected a directory outside or below it");
  fs::path probe_dir = out;
  while (!fs::exists(probe_dir) && probe_dir.has_parent_path() &&
         probe_dir != probe_dir.parent_path())
    probe_dir = probe_dir.parent_path();
  SQ_REQUIRE(fs::is_directory(probe_dir),
             "--output_dir " << output_dir << ": " << probe_dir.string()
                             << " exists and is not a directory (expected a directory)");
  const std::string probe =
      (probe_dir / (".shardquant-probe-" + std::to_string(::getpid()))).string();
  const int fd = ::open(probe.c_str(), O_CREAT | O_EXCL | O_WRONLY, 0600);
  SQ_REQUIRE(fd >= 0, "--output_dir " << output_dir << " is not writable: cannot create a file in "
                                      << probe_dir.string() << " (" << std::strerror(errno) << ")");
  ::close(fd);
  ::unlink(probe.c_str());
}

Plan make_plan(const Options& opts) {
  Plan plan;
  plan.model_dir = opts.model_path;
  plan.output_dir = opts.output_dir;
  SQ_REQUIRE(fs::exists(opts.model_path),
             "--model_path " << opts.model_path << ": directory not found");
  SQ_REQUIRE(
      fs::is_directory(opts.model_path),
      "--model_path " << opts.model_path << ": not a directory (expected a model directory)");
  plan.config = rank::load_model_config(opts.model_path);
  const auto& cfg = plan.config;
  plan.architecture = cfg.architectures.empty() ? cfg.model_type : cfg.architectures.front();
  const io::ModelWeights w(opts.model_path);
  plan.input_files = w.files();
  plan.input_bytes = w.total_bytes();
  SQ_REQUIRE(cfg.num_hidden_layers > 0,
             cfg.path << ": num_hidden_layers is " << cfg.num_hidden_layers << " (expected > 0)");
  detail::check_shapes(cfg, w);

  const auto names = w.names();
  for (const auto& n : names) plan.total_params += w.info(n).numel();
  for (int64_t b = 0; b < cfg.num_hidden_layers; ++b) {
    PlannedBlock blk;
    blk.index = b;
    blk.prefix = rank::block_prefix(cfg, b);
    for (const auto& ref : rank::block_linears(cfg, w, b)) blk.linears.push_back({ref, true, ""});
    SQ_REQUIRE(!blk.linears.empty(), w.dir() << ": config.json has num_hidden_layers "
                                             << cfg.num_hidden_layers
                                             << " but no linear weights "
                                                "exist under "
                                             << blk.prefix << ".");
    for (const auto& n : names)
      if (starts_with(n, blk.prefix + ".")) blk.params += w.info(n).numel();
    plan.blocks.push_back(std::move(blk));
  }
  const std::string extra = rank::block_prefix(cfg, cfg.num_hidden_layers) + ".";
  for (const auto& n : names)
    SQ_REQUIRE(!starts_with(n, extra),
               w.file_of(n) << ": tensor " << n << " belongs to block " << cfg.num_hidden_layers
                            << " but config.json has num_hidden_layers " << cfg.num_hidden_layers);
  plan.non_block = rank::non_block_tensors(cfg, w);
  {
    std::vector<std::string> linear_weights;
    for (const auto& blk : plan.blocks)
      for (const auto& l : blk.linears) linear_weights.push_back(l.ref.name + ".weight");
    const std::string odd = io::check_weight_dtypes(w, cfg.dtype, linear_weights);
    if (!odd.empty()) plan.warnings.push_back(odd);
  }
  apply_keep(plan, opts);
  detail::plan_float_modules(plan, opts, w);

  const auto scheme = opts.scheme();
  for (const auto& blk : plan.blocks)
    for (const auto& l : blk.linears) {
      if (!l.quantized) {
        ++plan.kept_linears;
        continue;
      }
      const int64_t g = scheme.group_for(l.ref.in_features);
      SQ_REQUIRE(l.ref.in_features % g == 0,
                 w.file_of(l.ref.name + ".weight")
                     << ": tensor " << l.ref.name << ".weight has in_features " << l.ref.in_features
                     << ", not divisible by --q-group-size " << opts.group_size
                     << " (expected a divisor of it, or -1, or --keep-fp-layers " << l.ref.name
                     << ")");
      ++plan.quantized_linears;
      plan.quantized_params += l.ref.in_features * l.ref.out_features;
    }
  plan.kept_params = plan.total_params - plan.quantized_params;
  plan.kept_tensors = static_cast<int64_t>(names.size()) - plan.quantized_linears;

  check_output_dir(opts.output_dir, opts.model_path, plan.input_files);

  plan.on_cpu = opts.force_cpu || opts.device == "cpu" || !rank::cuda_available();
  if (!plan.on_cpu) plan.gpu_memory = rank::device_total_memory(at::Device(at::kCUDA, 0));
  plan.compute_dtype_bytes = opts.compute_dtype == "fp32"   ? 4
                             : opts.compute_dtype != "auto" ? 2
                             : plan.on_cpu                  ? 4
                                                            : dtype_bytes(cfg, w);
  detail::estimate_memory(plan, opts);
  // Fail before any work rather than be killed (or hit bad_alloc) halfway: the estimate is the
  // plan's own formula (plan.h), so a run that fits it can still need a little more.
  if (const HostHeadroom room = host_memory_headroom();
      room.bytes != 0 && plan.memory.host_peak > room.bytes) {
    std::ostringstream msg;
    msg << "host memory: the plan's estimated peak is " << plan.memory.host_peak << " bytes ("
        << std::fixed << std::setprecision(2) << plan.memory.host_peak / double(1ull << 30)
        << " GiB) but only " << room.bytes << " bytes are left under the " << room.what
        << "; raise the limit or lower --calib-size / --seq-len";
    if (opts.dry_run)
      plan.warnings.push_back(msg.str());
    else
      SQ_THROW(BackendError, msg.str());
  }

  // The GPU: the part of the estimate that no back-off can shrink (a block's weights, the working
  // copy and the codes held until export; halving seq_len only shrinks activations and captures)
  // against --gpu-mem-limit, else the device's memory. Larger: stop now, with both numbers.
  if (!plan.on_cpu) {
    const uint64_t fixed = plan.memory.block_weights + plan.memory.working;
    uint64_t limit = opts.gpu_mem_limit_bytes;
    std::string what = "--gpu-mem-limit";
    if (limit == 0) {
      limit = plan.gpu_memory;
      what = "the GPU's memory";
    }
    if (limit != 0 && fixed > limit) {
      std::ostringstream msg;
      msg << "GPU memory: a block needs at least " << fixed << " bytes (" << human_bytes(fixed)
          << ": its weights and working copies; the whole estimate is " << plan.memory.device_peak
          << " bytes) but " << what << " is " << limit << " bytes (" << human_bytes(limit)
          << "); raise --gpu-mem-limit, use a larger GPU or --device cpu";
      if (opts.dry_run)
        plan.warnings.push_back(msg.str());
      else
        SQ_THROW(BackendError, msg.str());
    }
  }

  if (cfg.max_position_embeddings > 0 && opts.seq_len > cfg.max_position_embeddings)
    plan.warnings.push_back("--seq_len " + std::to_string(opts.seq_len) +
                            " exceeds the model's max_position_embeddings " +
                            std::to_string(cfg.max_position_embeddings));
  if (fs::exists(opts.output_dir) && !fs::is_empty(opts.output_dir))
    plan.warnings.push_back("output directory " + opts.output_dir +
                            " exists and is not empty; it will be replaced");
  return plan;
}

}  // namespace sq::coordinator
