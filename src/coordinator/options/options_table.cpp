// The option tables. Adding a flag is its field in Options (options.h) and a row here: the
// builders below take the field, so the row's kind, parser and (for enums) choices follow from
// the field's type; a flag whose text is not simply its field's value says so with parsed_by().
#include "coordinator/options/options_table.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <type_traits>

#include "common/check.h"

namespace sq::coordinator::table {
namespace {

using K = Kind;
using Setter = std::function<void(Options&, const Given&)>;

// Value names of the enum fields: their flag's choices, their parser and to_string().
template <typename E>
using Names = std::vector<std::pair<const char*, E>>;
const Names<Method> kMethodNames = {{"awq", Method::kAwq}, {"gptq", Method::kGptq}};
const Names<Propagate> kPropagateNames = {{"quant", Propagate::kQuant}, {"fp", Propagate::kFp}};
const Names<ParallelMode> kParallelNames = {{"auto", ParallelMode::kAuto},
                                            {"blocks", ParallelMode::kBlocks},
                                            {"data", ParallelMode::kData}};
const Names<std::optional<TransportKind>> kTransportNames = {{"auto", std::nullopt},
                                                             {"nccl", TransportKind::kNccl},
                                                             {"mpi", TransportKind::kMpi},
                                                             {"local", TransportKind::kLocal}};
const Names<io::Format> kFormatNames = io::cli_formats();  // the registry's selectable rows
const Names<AwqRounding> kRoundingNames = {{"rtn", AwqRounding::kRtn},
                                           {"gptq", AwqRounding::kGptq}};

template <typename E>
const char* name_of(const Names<E>& names, E v) {
  for (const auto& [n, e] : names)
    if (e == v) return n;
  SQ_CHECK(false, "enum value " << static_cast<int>(v) << " has no name");
}

template <typename E>
std::string joined(const Names<E>& names) {
  std::string s;
  for (const auto& [n, e] : names) s += (s.empty() ? "" : "|") + std::string(n);
  return s;
}

// --- row builders -----------------------------------------------------------------------------
template <typename T>
constexpr Kind kind_of() {
  if constexpr (std::is_same_v<T, bool>) return K::kBool;
  if constexpr (std::is_integral_v<T>) return K::kInt;
  if constexpr (std::is_floating_point_v<T>) return K::kDouble;
  if constexpr (std::is_same_v<T, std::vector<std::string>>) return K::kList;
  return K::kString;
}

// A flag whose value is its field's, parsed by the field's type.
template <typename T>
FlagRow field(const char* name, T Options::*f, const char* value, const char* def,
              const char* help) {
  FlagRow r{name, kind_of<T>(), value, def, help, "", nullptr, std::nullopt, nullptr};
  r.set = [f](Options& o, const Given& g) {
    if constexpr (std::is_same_v<T, bool>)
      o.*f = as_bool(g);
    else if constexpr (std::is_integral_v<T>)
      o.*f = static_cast<T>(as_int(g));
    else if constexpr (std::is_floating_point_v<T>)
      o.*f = as_double(g);
    else if constexpr (std::is_same_v<T, std::vector<std::string>>)
      o.*f = as_list(g);
    else
      o.*f = g.value;
  };
  if constexpr (std::is_arithmetic_v<T>)
    r.value = [f](const Options& o) { return static_cast<double>(o.*f); };
  return r;
}

// A boolean flag that sets its field to the opposite (--no-clip, --sym).
FlagRow negated(const char* name, bool Options::*f, const char* def, const char* help) {
  FlagRow r = field(name, f, "", def, help);
  r.set = [f](Options& o, const Given& g) { o.*f = !as_bool(g); };
  return r;
}

// A byte size: "5GB", "500MB", "2GiB" or bytes.
FlagRow size(const char* name, uint64_t Options::*f, const char* value, const char* def,
             const char* help) {
  FlagRow r = field(name, f, value, def, help);
  r.kind = K::kSize;
  r.set = [f](Options& o, const Given& g) { o.*f = parse_size(g.value, g.source); };
  return r;
}

// One of the enum's value names.
template <typename E>
FlagRow choice(const char* name, E Options::*f, const char* value, const char* def,
               const char* help, const Names<E>& names) {
  FlagRow r{name, K::kChoice, value, def, help, joined(names), nullptr, std::nullopt, nullptr};
  r.set = [f, names, all = r.choices](Options& o, const Given& g) {
    const std::string v = as_choice(g, all);
    for (const auto& [n, e] : names)
      if (v == n) o.*f = e;
  };
  return r;
}

// One of a list of words, kept as text.
FlagRow choice(const char* name, std::string Options::*f, const char* value, const char* def,
               const char* help, const std::vector<const char*>& words) {
  Names<const char*> names;
  for (const char* w : words) names.push_back({w, w});
  FlagRow r = field(name, f, value, def, help);
  r.kind = K::kChoice;
  r.choices = joined(names);
  r.set = [f, all = r.choices](Options& o, const Given& g) { o.*f = as_choice(g, all); };
  return r;
}

// A flag with no field of its own: read by resolve_method() (awq, gptq, method) or an action.
FlagRow unbound(const char* name, Kind kind, const char* value, const char* def, const char* help,
                std::string choices = "") {
  return {name, kind, value, def, help, std::move(choices), nullptr, std::nullopt, nullptr};
}

FlagRow parsed_by(FlagRow r, Setter set) {
  r.set = std::move(set);
  return r;
}

// --- the flags ------------------------------------------------------------------------------
const std::vector<FlagRow>& flag_rows() {
  static const std::vector<FlagRow> rows = {
      field("model_path", &Options::model_path, "PATH", "",
            "model directory (config.json + *.safetensors); required"),
      parsed_by(field("output_dir", &Options::output_dir, "PATH", "<model_path>/AWQ-<bits>bit",
                      "output directory (GPTQ-<bits>bit for GPTQ, -MAX suffix with "
                      "--max_quality)"),
                [](Options& o, const Given& g) {
                  o.output_dir = g.value;
                  o.output_dir_defaulted = false;
                }),
      field("dry_run", &Options::dry_run, "", "",
            "validate the model and print the plan, then exit"),
      field("resume", &Options::resume, "", "off",
            "continue an interrupted run from the checkpoint in <output_dir>.partial (refused "
            "when the model, result-changing options, calibration or rank count differ; without "
            "a checkpoint the run starts afresh)"),
      field("checkpoint_every", &Options::checkpoint_every_s, "SEC", "60",
            "resume checkpoints hold the chain's activations at most once per SEC seconds, "
            "skipped while the previous write is busy (a record follows every block anyway; a "
            "resume forwards the blocks since the last activations again, about SEC seconds of "
            "forwards at most; 0: after every block, waiting for the disk)")
          .in(0, 7 * 86400),
      unbound("awq", K::kBool, "", "on", "AWQ (activation-aware) quantization; excludes --gptq"),
      unbound("gptq", K::kBool, "", "", "GPTQ quantization; excludes --awq"),
      unbound("method", K::kChoice, "M", "awq", "quantization method (same as --awq / --gptq)",
              joined(kMethodNames)),
      field("bits", &Options::bits, "N", "4 (AWQ), 8 (GPTQ)",
            "weight bit width: AWQ 4; GPTQ 2, 3, 4 or 8"),
      field("q_group_size", &Options::group_size, "N", "128",
            "quantization group size (-1 = one group per row); must divide every in_features"),
      field("zero_point", &Options::zero_point, "", "on (AWQ), off (GPTQ)",
            "asymmetric quantization; excludes --sym"),
      negated("sym", &Options::zero_point, "off (AWQ), on (GPTQ)",
              "symmetric quantization; excludes --zero-point"),
      field("desc_act", &Options::desc_act, "", "off",
            "act order: process columns by descending activation"),
      field("static_groups", &Options::static_groups, "", "off",
            "GPTQ: group parameters from the unpermuted weights"),
      field("damp_percent", &Options::damp_percent, "X", "0.01",
            "GPTQ (and AWQ with --awq-rounding gptq): Hessian damping, fraction of mean diag in "
            "(0,1]")
          .in(0, 1, true),
      field("mse", &Options::mse, "X", "0 (off)",
            "GPTQ: search each group's range for the smallest sum of abs(error)^X (GPTQModel's "
            "mse; 2.4 is usual; 0 = plain min/max)")
          .in(0, 100),
      field("true_sequential", &Options::true_sequential, "", "on",
            "GPTQ: quantize a block's linears in sequence"),
      choice("propagate", &Options::propagate, "P", "quant (GPTQ), fp (AWQ)",
             "next block's inputs from the quantized or the full-precision block", kPropagateNames),
      negated("no_duo_scaling", &Options::duo_scaling, "off", "AWQ: scales from activations only"),
      negated("no_clip", &Options::clip, "off", "AWQ: skip the clipping search"),
      field("n_grid", &Options::n_grid, "N", "20", "AWQ: points of the scale grid").in(1, 1000),
      field("clip_asym", &Options::clip_asym, "", "off",
            "AWQ: search the clip's lower and upper bounds separately (every pair of the clip "
            "factors: 10x the trials; per group never a larger error than the symmetric search)"),
      choice("awq_rounding", &Options::awq_rounding, "R", "rtn",
             "AWQ: how the scaled and clipped weights are rounded: rtn (AutoAWQ, llm-awq) or gptq "
             "(GPTQ's error-compensating solve on the scaled inputs; same AWQ checkpoint, no act "
             "order)",
             kRoundingNames),
      field("clip_tokens", &Options::clip_tokens, "N", "512",
            "AWQ: calibration tokens the clip search measures (every n/N-th; 0 = all of them)")
          .in(0, 1e12),
      field("iter", &Options::iter, "N", "1",
            "AWQ: rounds of the scale search; rounds after the grid refine around the best alpha "
            "(never worse than the grid; stop once the spacing is below 1e-6)")
          .in(1, 1000),
      field("search_step", &Options::search_step, "N", "1",
            "AWQ: alpha points tried on each side of the best in every --iter round; each round's "
            "spacing is the last one's / (N+1)")
          .in(1, 1000),
      field("keep_fp_layers", &Options::keep_fp_layers, "LIST", "",
            "keep in floating point: block indices (0,1,-1; negative from the end) or linear-name "
            "substrings (mlp.down_proj)"),
      field("dump_salient", &Options::dump_salient, "PATH", "",
            "write each quantized linear's salient input columns as JSON (AWQ: largest mean "
            "abs(x), GPTQ: largest Hessian diagonal); a path inside the output dir appears with "
            "it"),
      field("salient_quota", &Options::salient_quota, "X", "0.004",
            "fraction of each linear's input columns --dump-salient lists, in [0,1] (at least one "
            "when > 0)")
          .in(0, 1),
      field("max_quality", &Options::max_quality, "", "off",
            "high-quality presets (CPU, keep blocks 0,1,-1, desc-act, zero point, iter 40, "
            "search-step 2, splits train,valid, salient dump); output dir gets -MAX"),
      choice("format", &Options::format, "F", "awq (AWQ), gptq (GPTQ)", "output format",
             kFormatNames),
      field("seq_len", &Options::seq_len, "N", "2048", "calibration sequence length (tokens)")
          .in(1, 1 << 20),
      field("calib_size", &Options::calib_size, "N", "128", "calibration samples").in(1, 1e8),
      field("calib_split", &Options::calib_split, "LIST", "train",
            "corpus splits to calibrate on (train,valid)"),
      field("dataset", &Options::datasets, "LIST", "built-in corpus",
            "calibration datasets by name"),
      field("dataset_dir", &Options::dataset_dir, "PATH", "", "directory holding the datasets"),
      field("calib_file", &Options::calib_files, "LIST", "", "plain-text calibration files"),
      choice("calib_sampling", &Options::calib_sampling, "S", "auto",
             "how samples are cut from the text: texts (AutoAWQ: whole texts concatenated into "
             "blocks) or windows (random contiguous windows, GPTQ's way); auto = texts for AWQ, "
             "windows for GPTQ",
             {"auto", "texts", "windows"}),
      choice("calib_mix", &Options::calib_mix, "M", "equal",
             "how several calibration sources share the samples: equal shares, or proportional "
             "to their text size (the sources read as one corpus)",
             {"equal", "proportional"}),
      field("calib_cache", &Options::calib_cache, "FILE.h5", "",
            "cache of calibration activations (HDF5)"),
      parsed_by(field("seed", &Options::seed, "N", "42", "seed of the calibration sampling"),
                [](Options& o, const Given& g) {
                  const int64_t s = as_int(g);
                  SQ_REQUIRE(s >= 0, g.source << ": expected a non-negative seed, got " << s);
                  o.seed = static_cast<uint64_t>(s);
                }),
      parsed_by(
          field("micro_batch", &Options::micro_batch, "N", "auto",
                "calibration samples per forward micro-batch (0 or auto: 16384 tokens' "
                "worth)"),
          [](Options& o, const Given& g) { o.micro_batch = g.value == "auto" ? 0 : as_int(g); })
          .in(0, 1e8),
      field("force_cpu", &Options::force_cpu, "", "off", "run everything on the CPU"),
      field("device", &Options::device, "DEV", "auto", "cpu, cuda or cuda:N"),
      choice("compute_dtype", &Options::compute_dtype, "T", "auto",
             "dtype of the calibration forwards and searches (auto: fp32 on CPU, the "
             "checkpoint's half type on GPU)",
             {"auto", "fp32", "bf16", "fp16"}),
      choice("parallel", &Options::parallel, "MODE", "auto", "parallel mode across ranks",
             kParallelNames),
      choice("transport", &Options::transport, "T", "auto", "collective transport",
             kTransportNames),
      field("comm_timeout", &Options::comm_timeout_s, "SEC", "600",
            "timeout of every collective wait")
          .in(1, 7 * 86400),
      size("gpu_mem_limit", &Options::gpu_mem_limit_bytes, "SIZE", "none",
           "cap on GPU memory per rank (e.g. 20GB)"),
      size("hessian_budget", &Options::hessian_budget_bytes, "SIZE", "auto",
           "GPTQ: Hessian sums held at once; a step whose sets need more (an MoE block's "
           "experts) runs in several passes, same results (auto: a quarter of --gpu-mem-limit, "
           "else of the device's memory)"),
      size("max_shard_size", &Options::max_shard_size_bytes, "SIZE", "5GB", "largest output shard"),
      choice("output_layout", &Options::output_layout, "L", "default",
             "default: <model>/AWQ-4bit/ with model-0000i-of-0000N.safetensors; suffixed: "
             "<model>/<name>-AWQ/ (or -GPTQ) with model-AWQ-0000i-of-0000N.safetensors and "
             "model-AWQ.safetensors.index.json (the layout of the AWQ/GPTQ container tool)",
             {"default", "suffixed"}),
      field("log_file", &Options::log_file, "PATH", "<output_dir>/quantize.log",
            "log file (also for --dry-run)"),
      parsed_by(unbound("verbose", K::kBool, "", "off", "debug logging; excludes --quiet"),
                [](Options& o, const Given& g) {
                  if (as_bool(g)) o.verbosity = Verbosity::kVerbose;
                }),
      parsed_by(
          unbound("quiet", K::kBool, "", "off", "warnings and errors only; excludes --verbose"),
          [](Options& o, const Given& g) {
            if (as_bool(g)) o.verbosity = Verbosity::kQuiet;
          }),
      unbound("version", K::kAction, "", "", "print the version and exit"),
      unbound("help", K::kAction, "", "", "print this help and exit"),
  };
  return rows;
}

const std::vector<EnvRow> kEnvs = {
    {"MODEL_PATH", "model_path"},
    {"SEQ_LEN", "seq_len"},
    {"FORCE_CPU", "force_cpu"},
    {"MAX_QUALITY", "max_quality"},
    {"OUTPUT_DIR", "output_dir"},
    {"METHOD", "method"},
    {"BITS", "bits"},
    {"RESUME", "resume"},
    {"CHECKPOINT_EVERY", "checkpoint_every"},
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
     io::Format::kAwqGemm,
     {io::Format::kAwqGemm, io::Format::kCompressedPack},
     {"no_duo_scaling", "no_clip", "clip_asym", "awq_rounding", "n_grid", "clip_tokens", "iter",
      "search_step"}},
    {Method::kGptq,
     "gptq",
     "GPTQ",
     {2, 3, 4, 8},
     8,
     false,
     Propagate::kQuant,
     io::Format::kGptqV1,
     {io::Format::kGptqV1, io::Format::kCompressedPack},
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

// The format's registry row decides which schemes it holds (compressed-tensors: no 3-bit).
bool format_cannot_hold_scheme(const Options& o) {
  return !io::scheme_error(o.format, o.stored_scheme()).empty();
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
    {"the format holds the scheme", format_cannot_hold_scheme,
     [](const Options& o) {
       return "--bits " + std::to_string(o.bits) + " --format " + io::cli_name(o.format) + ": " +
              io::scheme_error(o.format, o.stored_scheme());
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
  return flag_rows();
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
  for (const auto& r : flag_rows())
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

FlagRow FlagRow::in(double lo, double hi, bool lo_open) const {
  FlagRow r = *this;
  r.range = Range{lo, hi, lo_open};
  return r;
}

int64_t as_int(const Given& g) {
  size_t used = 0;
  long long v = 0;
  try {
    v = std::stoll(g.value, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  SQ_REQUIRE(used == g.value.size() && used > 0,
             g.source << ": expected an integer, got '" << g.value << "'");
  return v;
}
double as_double(const Given& g) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(g.value, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  SQ_REQUIRE(used == g.value.size() && used > 0 && std::isfinite(v),
             g.source << ": expected a number, got '" << g.value << "'");
  return v;
}
bool as_bool(const Given& g) {
  return parse_bool(g.value, g.source);
}
std::vector<std::string> as_list(const Given& g) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : g.value + ",") {
    if (c == ',') {
      auto b = cur.find_first_not_of(" \t"), e = cur.find_last_not_of(" \t");
      if (b != std::string::npos) out.push_back(cur.substr(b, e - b + 1));
      cur.clear();
    } else {
      cur += c;
    }
  }
  return out;
}
std::string as_choice(const Given& g, const std::string& all) {
  size_t b = 0;
  while (b <= all.size()) {
    size_t e = all.find('|', b);
    if (e == std::string::npos) e = all.size();
    if (all.compare(b, e - b, g.value) == 0 && e - b == g.value.size()) return g.value;
    b = e + 1;
  }
  SQ_THROW(InputError, g.source << ": expected one of " << all << ", got '" << g.value << "'");
}

}  // namespace sq::coordinator::table

namespace sq::coordinator {

const char* to_string(Method m) {
  return table::name_of(table::kMethodNames, m);
}
const char* to_string(AwqRounding r) {
  return table::name_of(table::kRoundingNames, r);
}
const char* to_string(Propagate p) {
  return table::name_of(table::kPropagateNames, p);
}
const char* to_string(ParallelMode p) {
  return table::name_of(table::kParallelNames, p);
}

}  // namespace sq::coordinator
