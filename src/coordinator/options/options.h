// The command line of `shardquant [quantize]`: one typed Options value, parsed from flags
// (Boost.Program_options), environment variables and EXTRA_ARGS, then validated.
//
// CONTRACT (stable field names; the pipeline consumes Options as-is):
//   * Every flag exists in --snake_case and --kebab-case (generated from one table in
//     options_table.cpp). Booleans take `--flag`, `--flag=true|false|1|0|yes|no`.
//   * Precedence: command line > EXTRA_ARGS > the single env variables (MODEL_PATH, SEQ_LEN,
//     FORCE_CPU, MAX_QUALITY, OUTPUT_DIR, METHOD, BITS, RESUME) > --max_quality presets > defaults.
//   * parse_options() returns fully resolved values: method defaults (bits, zero point,
//     propagation, format) and the output directory are filled in; validation rules (bits per
//     method, group size, ranges, mutual exclusions, method-only flags) have been applied.
//     Checks that need the model (group size divides in_features, output dir writable, …) are
//     the planner's (plan.h).
//   * Errors are sq::InputError (exit 2) naming the flag, the expected and the actual value.
//   * Adding a flag is its field here and its row in options_table.cpp (spelling, help, choices,
//     parser, range); nothing else.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/log.h"
#include "io/format/format.h"
#include "rank/transport/transport_kind.h"
#include "solvers/scheme.h"

namespace sq::coordinator {

enum class Method { kAwq, kGptq };
enum class Propagate { kQuant, kFp };  // GPTQ block-input source (DESIGN.md §2)
enum class ParallelMode { kAuto, kBlocks, kData };
using rank::TransportKind;               // --transport (rank/transport/transport_kind.h)
enum class AwqRounding { kRtn, kGptq };  // how AWQ rounds its scaled weights (--awq-rounding)

const char* to_string(Method m);        // "awq", "gptq"
const char* to_string(Propagate p);     // "quant", "fp"
const char* to_string(ParallelMode p);  // "auto", "blocks", "data"
const char* to_string(AwqRounding r);   // "rtn", "gptq"

struct Options {
  // --- what and where ---------------------------------------------------------------------
  std::string model_path;  // --model_path (required)
  std::string output_dir;  // resolved: --output_dir or <model_path>/<METHOD>-<bits>bit[-MAX]
  bool output_dir_defaulted = true;
  bool dry_run = false;  // --dry-run: plan, validate, print, exit
  bool resume = false;   // --resume / RESUME: continue from <output_dir>.partial's checkpoint
  int checkpoint_every_s = 60;  // --checkpoint-every: seconds between resume checkpoints (0: every block)
  std::string log_file;  // --log-file; "" = <output_dir>/quantize.log for a real run

  // --- method and scheme --------------------------------------------------------------------
  Method method = Method::kAwq;          // --awq (default) / --gptq / METHOD
  int bits = 4;                          // --bits: AWQ {4} (default 4), GPTQ {2,3,4,8} (default 8)
  int64_t group_size = 128;              // --q-group-size: -1 (per row) or positive
  bool zero_point = true;                // AWQ default true; GPTQ default false (= --sym)
  bool desc_act = false;                 // --desc-act (GPTQ act order)
  bool static_groups = false;            // --static-groups (GPTQ)
  double damp_percent = 0.01;            // --damp-percent (GPTQ)
  double mse = 0.0;                      // --mse (GPTQ): range-search norm, 0 = off
  bool true_sequential = true;           // --true-sequential (GPTQ)
  Propagate propagate = Propagate::kFp;  // --propagate; default quant for GPTQ, fp for AWQ
  bool duo_scaling = true;               // --no-duo-scaling (AWQ)
  bool clip = true;                      // --no-clip (AWQ)
  bool clip_asym = false;                // --clip-asym (AWQ): lower/upper clip bounds apart
  int64_t clip_tokens = 512;             // --clip-tokens (AWQ): 0 = every token
  AwqRounding awq_rounding = AwqRounding::kRtn;  // --awq-rounding (AWQ)
  int n_grid = 20;                               // --n-grid (AWQ α grid points)
  int iter = 1;                                  // --iter (scale-search iterations)
  int search_step = 1;                           // --search-step (search step multiplier)
  // --keep-fp-layers: integers are block indices (negative = from the end), other entries are
  // substrings of linear names ("mlp.down_proj"). Matching linears stay in floating point.
  std::vector<std::string> keep_fp_layers;
  std::string dump_salient;      // --dump-salient PATH ("" = off)
  double salient_quota = 0.004;  // --salient-quota, fraction of columns in [0, 1]
  bool max_quality = false;      // --max_quality (presets, see options_table.cpp; -MAX dir)
  // --format (io/format/format.h: the registry key, spelled as io::cli_name); default awq for AWQ,
  // gptq (v1, widened to v2 by the writer when needed) for GPTQ
  io::Format format = io::Format::kAwqGemm;

  // --- calibration --------------------------------------------------------------------------
  int64_t seq_len = 2048;                         // --seq_len
  int64_t calib_size = 128;                       // --calib-size (samples)
  std::vector<std::string> calib_split{"train"};  // --calib-split LIST
  std::vector<std::string> datasets;              // --dataset LIST ("" = built-in corpus)
  std::string dataset_dir;                        // --dataset-dir
  std::vector<std::string> calib_files;           // --calib-file LIST
  std::string calib_cache;                        // --calib-cache FILE.h5
  std::string calib_mix = "equal";                // --calib-mix equal|proportional
  std::string calib_sampling = "auto";            // --calib-sampling auto|texts|windows
  uint64_t seed = 42;                             // --seed
  int64_t micro_batch = 0;                        // --micro-batch (samples; 0 = auto)

  // --- execution ----------------------------------------------------------------------------
  bool force_cpu = false;                         // --force_cpu / FORCE_CPU
  std::string device;                             // --device ("" = auto; "cpu", "cuda", "cuda:N")
  std::string compute_dtype = "auto";             // --compute-dtype auto|fp32|bf16|fp16
  ParallelMode parallel = ParallelMode::kAuto;    // --parallel
  std::optional<TransportKind> transport;         // --transport (none = auto)
  int comm_timeout_s = 600;                       // --comm-timeout (seconds)
  uint64_t gpu_mem_limit_bytes = 0;               // --gpu-mem-limit (e.g. 20GB; 0 = no limit)
  uint64_t hessian_budget_bytes = 0;              // --hessian-budget (0 = auto)
  uint64_t max_shard_size_bytes = 5000000000ull;  // --max-shard-size (5GB)
  // --output-layout: "default" (AWQ-4bit/, model-*.safetensors) or "suffixed"
  // (<name>-AWQ/, model-AWQ-*.safetensors); weight_file_stem() gives the file names' stem.
  std::string output_layout = "default";
  Verbosity verbosity = Verbosity::kNormal;  // --verbose / --quiet

  // Canonical (snake_case) names of every flag the user set on the command line, in EXTRA_ARGS
  // or through an env variable — not presets or defaults.
  std::vector<std::string> explicit_flags;

  solvers::QuantScheme scheme() const { return {bits, group_size, zero_point, desc_act, mse}; }
  // The scheme as the checkpoint stores it: act order for GPTQ only (AWQ has none).
  solvers::QuantScheme stored_scheme() const {
    return {bits, group_size, zero_point, desc_act && method == Method::kGptq, mse};
  }
  bool is_explicit(const std::string& canonical) const;
};

// What parse_options() decided beyond the options themselves.
enum class ParseOutcome { kRun, kHelp, kHelpMarkdown, kVersion };

struct ParseResult {
  ParseOutcome outcome = ParseOutcome::kRun;
  Options options;  // valid only for kRun
};

// `args` excludes the program name. `env` maps variable names to values (tests pass their own;
// the program passes the process environment via environment_from_process()).
ParseResult parse_options(const std::vector<std::string>& args,
                          const std::map<std::string, std::string>& env);
std::map<std::string, std::string> environment_from_process();

// --help text and the README flag table, both generated from the option table.
std::string help_text();
// Stem of the weight files: "model" (default layout) or "model-AWQ" / "model-GPTQ" (suffixed).
std::string weight_file_stem(const Options& o);
std::string help_markdown();

// Splits a string the way a POSIX shell splits words: whitespace separates, '...' and "..."
// quote, backslash escapes (outside single quotes). Unterminated quotes are an InputError.
std::vector<std::string> shell_split(const std::string& s);

// "5GB", "500MB", "2GiB", "1024" (bytes) → bytes. InputError naming `flag` otherwise.
uint64_t parse_size(const std::string& text, const std::string& flag);
// 1/0/true/false/yes/no/on/off (case-insensitive). InputError naming `what` otherwise.
bool parse_bool(const std::string& text, const std::string& what);

}  // namespace sq::coordinator
