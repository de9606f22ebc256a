// The option tables. Adding a flag is a row here plus its field in Options (options.h) and one
// line in apply_value() (options_parse.cpp). When a later issue builds a flag's behaviour, set
// its `coming` to nullptr: until then the real run refuses the flag instead of ignoring it.
#include "coordinator/options_table.h"

#include <algorithm>
#include <sstream>

namespace sq::coordinator::table {
namespace {

using K = Kind;

const std::vector<FlagRow> kFlags = {
    // name, kind, value, default, help, choices, coming
    {"model_path", K::kString, "PATH", "",
     "model directory (config.json + *.safetensors); required", "", nullptr},
    {"output_dir", K::kString, "PATH", "<model_path>/AWQ-<bits>bit",
     "output directory (GPTQ-<bits>bit for GPTQ, -MAX suffix with --max_quality)", "", nullptr},
    {"dry_run", K::kBool, "", "", "validate the model and print the plan, then exit", "", nullptr},
    {"awq", K::kBool, "", "on", "AWQ (activation-aware) quantization; excludes --gptq", "",
     nullptr},
    {"gptq", K::kBool, "", "", "GPTQ quantization; excludes --awq", "", nullptr},
    {"method", K::kChoice, "M", "awq", "quantization method (same as --awq / --gptq)", "awq|gptq",
     nullptr},
    {"bits", K::kInt, "N", "4 (AWQ), 8 (GPTQ)", "weight bit width: AWQ 4; GPTQ 2, 3, 4 or 8", "",
     nullptr},
    {"q_group_size", K::kInt, "N", "128",
     "quantization group size (-1 = one group per row); must divide every in_features", "",
     nullptr},
    {"zero_point", K::kBool, "", "on (AWQ), off (GPTQ)", "asymmetric quantization; excludes --sym",
     "", nullptr},
    {"sym", K::kBool, "", "off (AWQ), on (GPTQ)", "symmetric quantization; excludes --zero-point",
     "", nullptr},
    {"desc_act", K::kBool, "", "off", "act order: process columns by descending activation", "",
     nullptr},
    {"static_groups", K::kBool, "", "off", "GPTQ: group parameters from the unpermuted weights", "",
     nullptr},
    {"damp_percent", K::kDouble, "X", "0.01",
     "GPTQ (and AWQ with --awq-rounding gptq): Hessian damping, fraction of mean diag in (0,1]", "",
     nullptr},
    {"mse", K::kDouble, "X", "0 (off)",
     "GPTQ: search each group's range for the smallest sum of abs(error)^X (GPTQModel's mse; "
     "2.4 is usual; 0 = plain min/max)",
     "", nullptr},
    {"true_sequential", K::kBool, "", "on", "GPTQ: quantize a block's linears in sequence", "",
     nullptr},
    {"propagate", K::kChoice, "P", "quant (GPTQ), fp (AWQ)",
     "next block's inputs from the quantized or the full-precision block", "quant|fp", nullptr},
    {"no_duo_scaling", K::kBool, "", "off", "AWQ: scales from activations only", "", nullptr},
    {"no_clip", K::kBool, "", "off", "AWQ: skip the clipping search", "", nullptr},
    {"n_grid", K::kInt, "N", "20", "AWQ: points of the scale grid", "", nullptr},
    {"clip_asym", K::kBool, "", "off",
     "AWQ: search the clip's lower and upper bounds separately (every pair of the clip factors: "
     "10x the trials; per group never a larger error than the symmetric search)",
     "", nullptr},
    {"awq_rounding", K::kChoice, "R", "rtn",
     "AWQ: how the scaled and clipped weights are rounded: rtn (AutoAWQ, llm-awq) or gptq "
     "(GPTQ's error-compensating solve on the scaled inputs; same AWQ checkpoint, no act order)",
     "rtn|gptq", nullptr},
    {"clip_tokens", K::kInt, "N", "512",
     "AWQ: calibration tokens the clip search measures (every n/N-th; 0 = all of them)", "",
     nullptr},
    {"iter", K::kInt, "N", "1",
     "AWQ: rounds of the scale search; rounds after the grid refine around the best alpha "
     "(never worse than the grid; stop once the spacing is below 1e-6)",
     "", nullptr},
    {"search_step", K::kInt, "N", "1",
     "AWQ: alpha points tried on each side of the best in every --iter round; each round's "
     "spacing is the last one's / (N+1)",
     "", nullptr},
    {"keep_fp_layers", K::kList, "LIST", "",
     "keep in floating point: block indices (0,1,-1; negative from the end) or linear-name "
     "substrings (mlp.down_proj)",
     "", nullptr},
    {"dump_salient", K::kString, "PATH", "",
     "write each quantized linear's salient input columns as JSON (AWQ: largest mean abs(x), "
     "GPTQ: largest Hessian diagonal); a path inside the output dir appears with it",
     "", nullptr},
    {"salient_quota", K::kDouble, "X", "0.004",
     "fraction of each linear's input columns --dump-salient lists, in [0,1] (at least one "
     "when > 0)",
     "", nullptr},
    {"max_quality", K::kBool, "", "off",
     "high-quality presets (CPU, keep blocks 0,1,-1, desc-act, zero point, iter 40, "
     "search-step 2, splits train,valid, salient dump); output dir gets -MAX",
     "", nullptr},
    {"format", K::kChoice, "F", "awq (AWQ), gptq (GPTQ)", "output format",
     "awq|gptq|compressed-tensors", nullptr},
    {"seq_len", K::kInt, "N", "2048", "calibration sequence length (tokens)", "", nullptr},
    {"calib_size", K::kInt, "N", "128", "calibration samples", "", nullptr},
    {"calib_split", K::kList, "LIST", "train", "corpus splits to calibrate on (train,valid)", "",
     nullptr},
    {"dataset", K::kList, "LIST", "built-in corpus", "calibration datasets by name", "", nullptr},
    {"dataset_dir", K::kString, "PATH", "", "directory holding the datasets", "", nullptr},
    {"calib_file", K::kList, "LIST", "", "plain-text calibration files", "", nullptr},
    {"calib_sampling", K::kChoice, "S", "auto",
     "how samples are cut from the text: texts (AutoAWQ: whole texts concatenated into "
     "blocks) or windows (random contiguous windows, GPTQ's way); auto = texts for AWQ, windows "
     "for GPTQ",
     "auto|texts|windows", nullptr},
    {"calib_mix", K::kChoice, "M", "equal",
     "how several calibration sources share the samples: equal shares, or proportional to "
     "their text size (the sources read as one corpus)",
     "equal|proportional", nullptr},
    {"calib_cache", K::kString, "FILE.h5", "", "cache of calibration activations (HDF5)", "",
     nullptr},
    {"seed", K::kInt, "N", "42", "seed of the calibration sampling", "", nullptr},
    {"micro_batch", K::kInt, "N", "auto",
     "calibration samples per forward micro-batch (0 or auto: 16384 tokens' worth)", "", nullptr},
    {"force_cpu", K::kBool, "", "off", "run everything on the CPU", "", nullptr},
    {"device", K::kString, "DEV", "auto", "cpu, cuda or cuda:N", "", nullptr},
    {"compute_dtype", K::kChoice, "T", "auto",
     "dtype of the calibration forwards and searches (auto: fp32 on CPU, the checkpoint's "
     "half type on GPU)",
     "auto|fp32|bf16|fp16", nullptr},
    {"parallel", K::kChoice, "MODE", "auto", "parallel mode across ranks", "auto|blocks|data",
     nullptr},
    {"transport", K::kChoice, "T", "auto", "collective transport", "nccl|mpi|local", nullptr},
    {"comm_timeout", K::kInt, "SEC", "600", "timeout of every collective wait", "", nullptr},
    {"gpu_mem_limit", K::kSize, "SIZE", "none", "cap on GPU memory per rank (e.g. 20GB)", "",
     nullptr},
    {"max_shard_size", K::kSize, "SIZE", "5GB", "largest output shard", "", nullptr},
    {"output_layout", K::kChoice, "L", "default",
     "default: <model>/AWQ-4bit/ with model-0000i-of-0000N.safetensors; suffixed: "
     "<model>/<name>-AWQ/ (or -GPTQ) with model-AWQ-0000i-of-0000N.safetensors and "
     "model-AWQ.safetensors.index.json (the layout of the AWQ/GPTQ container tool)",
     "default|suffixed", nullptr},
    {"log_file", K::kString, "PATH", "<output_dir>/quantize.log", "log file (also for --dry-run)",
     "", nullptr},
    {"verbose", K::kBool, "", "off", "debug logging; excludes --quiet", "", nullptr},
    {"quiet", K::kBool, "", "off", "warnings and errors only; excludes --verbose", "", nullptr},
    {"version", K::kAction, "", "", "print the version and exit", "", nullptr},
    {"help", K::kAction, "", "", "print this help and exit", "", nullptr},
};

const std::vector<EnvRow> kEnvs = {
    {"MODEL_PATH", "model_path"},
    {"SEQ_LEN", "seq_len"},
    {"FORCE_CPU", "force_cpu"},
    {"MAX_QUALITY", "max_quality"},
    {"OUTPUT_DIR", "output_dir"},
    {"METHOD", "method"},
    {"BITS", "bits"},
};

// The high-quality mode users know from the AWQ container. --seq_len and --calib-size are not
// raised: the memory they need is the user's call.
const std::vector<PresetRow> kPresets = {
    {"force_cpu", "true"},
    {"keep_fp_layers", "0,1,-1"},
    {"desc_act", "true"},
    {"zero_point", "true"},
    {"iter", "40"},
    {"search_step", "2"},
    {"calib_split", "train,valid"},
    {"salient_quota", "0.004"},
};

const std::vector<MethodRow> kMethods = {
    {Method::kAwq,
     "awq",
     "AWQ",
     {4},
     4,
     true,
     Propagate::kFp,
     OutputFormat::kAwq,
     {OutputFormat::kAwq, OutputFormat::kCompressedTensors},
     {"no_duo_scaling", "no_clip", "clip_asym", "awq_rounding", "n_grid", "clip_tokens", "iter",
      "search_step"}},
    {Method::kGptq,
     "gptq",
     "GPTQ",
     {2, 3, 4, 8},
     8,
     false,
     Propagate::kQuant,
     OutputFormat::kGptq,
     {OutputFormat::kGptq, OutputFormat::kCompressedTensors},
     {"static_groups", "mse"}},
};

const std::vector<ExclusionRow> kExclusions = {
    {{"awq", "gptq", "method"}},
    {{"zero_point", "sym"}},
    {{"verbose", "quiet"}},
};

bool cuda_with_force_cpu(const Options& o) {
  return o.force_cpu && o.device.rfind("cuda", 0) == 0;
}
// An explicit --salient-quota does nothing without a dump to write.
bool salient_quota_without_dump(const Options& o) {
  return o.is_explicit("salient_quota") && o.dump_salient.empty();
}

// --damp-percent is GPTQ's: under AWQ only the GPTQ rounding reads it.
bool damp_without_gptq_solve(const Options& o) {
  return o.is_explicit("damp_percent") && o.method == Method::kAwq &&
         o.awq_rounding != AwqRounding::kGptq;
}

bool calib_cache_not_hdf5(const Options& o) {
  auto ends = [&](const std::string& suf) {
    return o.calib_cache.size() >= suf.size() &&
           o.calib_cache.compare(o.calib_cache.size() - suf.size(), suf.size(), suf) == 0;
  };
  return !o.calib_cache.empty() && !ends(".h5") && !ends(".hdf5");
}

// compressed-tensors 0.17+ packs 3-bit values across word boundaries, earlier versions ten per
// word: no layout loads in every version (and vLLM's W*A16 path takes 4 and 8 bits only).
bool three_bit_compressed_tensors(const Options& o) {
  return o.format == OutputFormat::kCompressedTensors && o.bits == 3;
}

const std::vector<RuleRow> kRules = {
    {"device vs force_cpu", cuda_with_force_cpu,
     [](const Options& o) {
       return "--device " + o.device + " conflicts with --force_cpu (expected cpu or no --device)";
     }},
    {"calibration cache is HDF5", calib_cache_not_hdf5,
     [](const Options& o) {
       return "--calib-cache '" + o.calib_cache + "': expected a .h5 or .hdf5 file name";
     }},
    {"damp percent needs a GPTQ solve", damp_without_gptq_solve,
     [](const Options&) {
       return std::string(
           "--damp-percent applies to GPTQ and to AWQ with --awq-rounding gptq (method is AWQ, "
           "rounding rtn)");
     }},
    {"compressed-tensors has no portable 3-bit layout", three_bit_compressed_tensors,
     [](const Options&) {
       return std::string(
           "--bits 3 --format compressed-tensors: compressed-tensors 0.17 and later pack 3-bit "
           "values across int32 words, earlier versions ten to a word, so no 3-bit checkpoint "
           "loads in every version; use --format gptq");
     }},
    {"salient quota needs a dump", salient_quota_without_dump,
     [](const Options&) {
       return std::string(
           "--salient-quota only sets how many columns --dump-salient PATH lists; "
           "add --dump-salient");
     }},
};

}  // namespace

const std::vector<FlagRow>& flags() {
  return kFlags;
}
const std::vector<EnvRow>& envs() {
  return kEnvs;
}
const std::vector<PresetRow>& max_quality_presets() {
  return kPresets;
}
const std::vector<MethodRow>& methods() {
  return kMethods;
}
const std::vector<ExclusionRow>& exclusions() {
  return kExclusions;
}
const std::vector<RuleRow>& rules() {
  return kRules;
}

const FlagRow* find_flag(const std::string& canonical) {
  for (const auto& r : kFlags)
    if (canonical == r.name) return &r;
  return nullptr;
}

const MethodRow& method_row(Method m) {
  for (const auto& r : kMethods)
    if (r.method == m) return r;
  return kMethods.front();
}

std::string kebab(const std::string& canonical) {
  std::string k = canonical;
  std::replace(k.begin(), k.end(), '_', '-');
  return k;
}

}  // namespace sq::coordinator::table
