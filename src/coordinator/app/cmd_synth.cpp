// `shardquant synth --shape NAME|<config.json> --out DIR [--layers N] [--fp8] [--seed N]
//  [--tokenizer DIR] [--max-shard-size SIZE] [--dtype bf16|fp16|fp32] [--threads N]`
// writes a random-weight model of real shapes (rank/synth/synth.h) that `shardquant --model_path`
// can quantize. Flags are a table; values may follow as the next word or after '='.
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>

#include "common/check.h"
#include "common/log.h"
#include "coordinator/app/commands.h"
#include "io/output/safetensors_writer.h"
#include "rank/synth/synth.h"

namespace sq::coordinator {
namespace {

struct SynthFlag {
  const char* name;
  const char* value;  // "" = a switch without a value
  const char* help;
};
const SynthFlag kSynthFlags[] = {
    {"shape", "NAME|FILE", "a named shape (below) or a config.json path (required)"},
    {"out", "DIR", "output model directory, must not exist or be empty (required)"},
    {"layers", "N", "write a slice: the first N blocks only (default: all)"},
    {"fp8", "",
     "store block linears as block-scaled FP8 (E4M3 + weight_scale_inv per 128x128, as "
     "DeepSeek-V3); deepseek-v3 is FP8 already"},
    {"seed", "N", "weight seed (default 0)"},
    {"tokenizer", "DIR",
     "directory with tokenizer.json (default $SQ_SHARED_DIR/models/house-llama-13m, else "
     "../shared/models/house-llama-13m)"},
    {"max-shard-size", "SIZE", "largest shard (default 5GB)"},
    {"dtype", "T", "bf16 (default), fp16 or fp32"},
    {"threads", "N", "generator threads (default: all cores)"},
};

const std::map<std::string, at::ScalarType> kDtypes = {
    {"bf16", at::kBFloat16}, {"fp16", at::kHalf}, {"fp32", at::kFloat}};

std::string usage() {
  std::string s = "usage: shardquant synth --shape NAME|FILE --out DIR [options]\n";
  for (const auto& f : kSynthFlags)
    s +=
        "  --" + std::string(f.name) + (*f.value ? " " : "") + f.value + "\n      " + f.help + "\n";
  s += "Named shapes:\n";
  for (const auto& p : rank::synth_presets())
    s += "  " + std::string(p.name) + "  " + p.what + "\n";
  std::string types;
  for (const auto& t : rank::synth_model_types()) types += (types.empty() ? "" : ", ") + t;
  return s + "A --shape config.json may have model_type " + types + ".\n";
}

std::string default_tokenizer_dir() {
  namespace fs = std::filesystem;
  std::vector<std::string> candidates;
  if (const char* e = std::getenv("SQ_SHARED_DIR"))
    candidates.push_back(std::string(e) + "/models/house-llama-13m");
  candidates.push_back("../shared/models/house-llama-13m");
  for (const auto& c : candidates)
    if (fs::is_regular_file(c + "/tokenizer.json")) return c;
  return "";
}

int64_t parse_int(const std::string& flag, const std::string& v) {
  try {
    size_t pos = 0;
    const long long x = std::stoll(v, &pos);
    if (pos == v.size() && x >= 0) return x;
  } catch (const std::exception&) {
  }
  SQ_THROW(InputError,
           "synth --" << flag << ": expected a non-negative integer, got '" << v << "'");
}

}  // namespace

int cmd_synth(const std::vector<std::string>& args) {
  std::map<std::string, std::string> v;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string a = args[i];
    if (a == "--help" || a == "-h") {
      std::cout << usage();
      return 0;
    }
    SQ_REQUIRE(a.rfind("--", 0) == 0, "synth: unexpected argument '" << a << "'\n" << usage());
    a = a.substr(2);
    std::string value;
    const auto eq = a.find('=');
    const bool has_eq = eq != std::string::npos;
    if (has_eq) {
      value = a.substr(eq + 1);
      a = a.substr(0, eq);
    }
    for (auto& c : a)
      if (c == '_') c = '-';
    const SynthFlag* flag = nullptr;
    for (const auto& f : kSynthFlags)
      if (a == f.name) flag = &f;
    SQ_REQUIRE(flag, "synth: unknown flag --" << a << "\n" << usage());
    if (!*flag->value) {
      SQ_REQUIRE(!has_eq, "synth: --" << a << " takes no value");
      value = "1";
    } else if (!has_eq) {
      SQ_REQUIRE(i + 1 < args.size(), "synth: --" << a << " needs a value");
      value = args[++i];
    }
    v[a] = value;
  }
  SQ_REQUIRE(v.count("shape") && v.count("out"), "synth: --shape and --out are required\n"
                                                     << usage());
  rank::SynthOptions o;
  o.out_dir = v["out"];
  o.tokenizer_dir = v.count("tokenizer") ? v["tokenizer"] : default_tokenizer_dir();
  if (v.count("seed")) o.seed = static_cast<uint64_t>(parse_int("seed", v["seed"]));
  if (v.count("layers")) {
    o.layers = parse_int("layers", v["layers"]);
    SQ_REQUIRE(o.layers > 0, "synth --layers: expected a positive number of blocks, got 0");
  }
  o.fp8 = v.count("fp8") > 0;
  if (v.count("threads")) o.threads = static_cast<int>(parse_int("threads", v["threads"]));
  if (v.count("max-shard-size")) o.max_shard_bytes = io::parse_size(v["max-shard-size"]);
  if (v.count("dtype")) {
    auto it = kDtypes.find(v["dtype"]);
    SQ_REQUIRE(it != kDtypes.end(),
               "synth --dtype: expected bf16, fp16 or fp32, got '" << v["dtype"] << "'");
    o.dtype = it->second;
  }
  const nlohmann::json config = rank::synth_config(v["shape"]);
  log()->info("synth: writing {} ({} of {} layers, hidden {}{}) to {}, seed {}, tokenizer from {}",
              v["shape"], o.layers > 0 ? o.layers : config.value("num_hidden_layers", int64_t{0}),
              config.value("num_hidden_layers", 0), config.value("hidden_size", 0),
              o.fp8 || config.contains("quantization_config") ? ", FP8" : "", o.out_dir, o.seed,
              o.tokenizer_dir);
  const rank::SynthReport r = rank::write_synth_model(config, o);
  log()->info(
      "synth: {} tensors, {} parameters, {:.2f} GB in {} shard(s); generate {:.1f}s, "
      "write {:.1f}s",
      r.tensors, r.parameters, r.bytes / 1e9, r.files.size(), r.generate_s, r.write_s);
  return 0;
}

}  // namespace sq::coordinator
