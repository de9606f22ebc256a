// parse_options(): command line, EXTRA_ARGS and env variables → one validated Options.
//
// Each source is parsed into a "layer" (canonical flag → raw text + where it came from); layers
// are merged by precedence, then typed into Options by the setter table and validated by the
// rule tables. Boost.Program_options does the flag syntax; we pre-join "--flag VALUE" into
// "--flag=VALUE" for value flags so that negative numbers (--q-group-size -1) are values, not
// short options.
#include <boost/program_options.hpp>
#include <cmath>
#include <filesystem>
#include <functional>
#include <limits>
#include <set>

#include "common/check.h"
#include "coordinator/options.h"
#include "coordinator/options_table.h"

namespace sq::coordinator {
namespace {

namespace po = boost::program_options;
using table::Kind;

struct Given {
  std::string value;
  std::string source;  // "--seq-len", "EXTRA_ARGS --seq_len", "env SEQ_LEN", "--max_quality"
};
using Layer = std::map<std::string, Given>;

struct Actions {
  bool help = false, version = false, markdown = false;
};

po::options_description make_description() {
  po::options_description d;
  for (const auto& r : table::flags()) {
    std::set<std::string> names{r.name, table::kebab(r.name)};
    for (const auto& n : names) {
      if (r.kind == Kind::kAction) {
        const std::string spec = n == "help" ? "help,h" : n;
        d.add_options()(spec.c_str(), "");
      } else if (r.kind == Kind::kBool) {
        d.add_options()(n.c_str(), po::value<std::string>()->implicit_value("true"), "");
      } else {
        d.add_options()(n.c_str(), po::value<std::string>(), "");
      }
    }
  }
  d.add_options()("help-markdown", "");
  return d;
}

bool takes_value(const std::string& flag_name) {
  for (const auto& r : table::flags())
    if (flag_name == r.name || flag_name == table::kebab(r.name))
      return r.kind != Kind::kBool && r.kind != Kind::kAction;
  return false;
}

// "--flag VALUE" → "--flag=VALUE" for flags that take a value.
std::vector<std::string> join_values(const std::vector<std::string>& args) {
  std::vector<std::string> out;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.rfind("--", 0) == 0 && a.find('=') == std::string::npos && takes_value(a.substr(2)) &&
        i + 1 < args.size()) {
      out.push_back(a + "=" + args[++i]);
    } else {
      out.push_back(a);
    }
  }
  return out;
}

Layer parse_layer(const std::vector<std::string>& args, const std::string& origin,
                  Actions* actions) {
  static const po::options_description desc = make_description();
  const std::string where = origin.empty() ? "" : origin + ": ";
  po::variables_map vm;
  try {
    const int style = po::command_line_style::unix_style & ~po::command_line_style::allow_guessing;
    po::store(po::command_line_parser(join_values(args)).options(desc).style(style).run(), vm);
  } catch (const po::unknown_option& e) {
    SQ_THROW(InputError,
             where << "unknown flag '" << e.get_option_name() << "' (see shardquant --help)");
  } catch (const po::too_many_positional_options_error&) {
    std::string extra;
    for (const auto& a : args)
      if (a.rfind("-", 0) != 0) extra = a;
    SQ_THROW(InputError, where << "unexpected argument '" << extra
                               << "' (flags start with --; the model is --model_path PATH)");
  } catch (const po::multiple_occurrences& e) {
    SQ_THROW(InputError, where << "flag '" << e.get_option_name() << "' given more than once");
  } catch (const po::error& e) {
    SQ_THROW(InputError, where << e.what() << " (see shardquant --help)");
  }
  // Value flags were joined with their values, so any bare word left is stray (a boolean's
  // value must be attached: --force_cpu=false).
  for (const auto& a : join_values(args))
    SQ_REQUIRE(a.rfind("-", 0) == 0, where << "unexpected argument '" << a
                                           << "' (flags start with --; booleans take "
                                              "--flag=false; the model is --model_path PATH)");
  Layer layer;
  for (const auto& r : table::flags()) {
    const std::string snake = r.name, keb = table::kebab(r.name);
    const bool has_s = vm.count(snake) != 0, has_k = keb != snake && vm.count(keb) != 0;
    if (!has_s && !has_k) continue;
    SQ_REQUIRE(!(has_s && has_k),
               where << "--" << snake << " and --" << keb << " are the same flag, given twice");
    const std::string used = has_s ? snake : keb;
    if (r.kind == Kind::kAction) {
      if (actions) (snake == "help" ? actions->help : actions->version) = true;
      continue;
    }
    layer[snake] = {vm[used].as<std::string>(), (origin.empty() ? "" : origin + " ") + "--" + used};
  }
  if (actions && vm.count("help-markdown")) actions->markdown = true;
  return layer;
}

Layer env_layer(const std::map<std::string, std::string>& env) {
  Layer layer;
  for (const auto& e : table::envs()) {
    auto it = env.find(e.env);
    // Container templates define every variable, often empty: empty means unset.
    if (it != env.end() && !it->second.empty())
      layer[e.flag] = {it->second, "env " + std::string(e.env)};
  }
  return layer;
}

const table::ExclusionRow* group_of(const std::string& flag) {
  for (const auto& g : table::exclusions())
    for (const char* f : g.flags)
      if (flag == f) return &g;
  return nullptr;
}

// Higher layers first. A flag comes from the first layer that has it; an exclusion group comes
// wholly from the first layer that sets any of its members.
Layer merge(const std::vector<Layer>& layers) {
  Layer out;
  std::map<const table::ExclusionRow*, size_t> claimed;
  for (size_t i = 0; i < layers.size(); ++i) {
    for (const auto& [k, v] : layers[i]) {
      if (out.count(k)) continue;
      const auto* g = group_of(k);
      if (g) {
        auto c = claimed.find(g);
        if (c != claimed.end() && c->second != i) continue;
        claimed[g] = i;
      }
      out[k] = v;
    }
  }
  return out;
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
std::string as_choice(const Given& g, const char* choices) {
  const std::string all = choices;
  size_t b = 0;
  while (b <= all.size()) {
    size_t e = all.find('|', b);
    if (e == std::string::npos) e = all.size();
    if (all.compare(b, e - b, g.value) == 0 && e - b == g.value.size()) return g.value;
    b = e + 1;
  }
  SQ_THROW(InputError, g.source << ": expected one of " << all << ", got '" << g.value << "'");
}

template <typename E>
E enum_from(const std::string& v, std::initializer_list<std::pair<const char*, E>> rows) {
  for (const auto& [name, e] : rows)
    if (v == name) return e;
  return rows.begin()->second;
}

using Setter = std::function<void(Options&, const Given&)>;
struct SetterRow {
  const char* flag;
  Setter set;
};

// How each flag lands in Options. Method-related flags (awq, gptq, method, sym) are resolved
// before this table runs.
const std::vector<SetterRow>& setters() {
  static const std::vector<SetterRow> rows = {
      {"model_path", [](Options& o, const Given& g) { o.model_path = g.value; }},
      {"output_dir",
       [](Options& o, const Given& g) {
         o.output_dir = g.value;
         o.output_dir_defaulted = false;
       }},
      {"dry_run", [](Options& o, const Given& g) { o.dry_run = as_bool(g); }},
      {"bits", [](Options& o, const Given& g) { o.bits = static_cast<int>(as_int(g)); }},
      {"q_group_size", [](Options& o, const Given& g) { o.group_size = as_int(g); }},
      {"zero_point", [](Options& o, const Given& g) { o.zero_point = as_bool(g); }},
      {"sym", [](Options& o, const Given& g) { o.zero_point = !as_bool(g); }},
      {"desc_act", [](Options& o, const Given& g) { o.desc_act = as_bool(g); }},
      {"static_groups", [](Options& o, const Given& g) { o.static_groups = as_bool(g); }},
      {"damp_percent", [](Options& o, const Given& g) { o.damp_percent = as_double(g); }},
      {"mse", [](Options& o, const Given& g) { o.mse = as_double(g); }},
      {"true_sequential", [](Options& o, const Given& g) { o.true_sequential = as_bool(g); }},
      {"propagate",
       [](Options& o, const Given& g) {
         o.propagate = enum_from<Propagate>(as_choice(g, "quant|fp"),
                                            {{"quant", Propagate::kQuant}, {"fp", Propagate::kFp}});
       }},
      {"no_duo_scaling", [](Options& o, const Given& g) { o.duo_scaling = !as_bool(g); }},
      {"no_clip", [](Options& o, const Given& g) { o.clip = !as_bool(g); }},
      {"n_grid", [](Options& o, const Given& g) { o.n_grid = static_cast<int>(as_int(g)); }},
      {"clip_tokens", [](Options& o, const Given& g) { o.clip_tokens = as_int(g); }},
      {"clip_asym", [](Options& o, const Given& g) { o.clip_asym = as_bool(g); }},
      {"awq_rounding",
       [](Options& o, const Given& g) {
         o.awq_rounding = enum_from<AwqRounding>(
             as_choice(g, "rtn|gptq"), {{"rtn", AwqRounding::kRtn}, {"gptq", AwqRounding::kGptq}});
       }},
      {"iter", [](Options& o, const Given& g) { o.iter = static_cast<int>(as_int(g)); }},
      {"search_step",
       [](Options& o, const Given& g) { o.search_step = static_cast<int>(as_int(g)); }},
      {"keep_fp_layers", [](Options& o, const Given& g) { o.keep_fp_layers = as_list(g); }},
      {"dump_salient", [](Options& o, const Given& g) { o.dump_salient = g.value; }},
      {"salient_quota", [](Options& o, const Given& g) { o.salient_quota = as_double(g); }},
      {"max_quality", [](Options& o, const Given& g) { o.max_quality = as_bool(g); }},
      {"format",
       [](Options& o, const Given& g) {
         o.format =
             enum_from<OutputFormat>(as_choice(g, "awq|gptq|compressed-tensors"),
                                     {{"awq", OutputFormat::kAwq},
                                      {"gptq", OutputFormat::kGptq},
                                      {"compressed-tensors", OutputFormat::kCompressedTensors}});
       }},
      {"seq_len", [](Options& o, const Given& g) { o.seq_len = as_int(g); }},
      {"micro_batch",
       [](Options& o, const Given& g) { o.micro_batch = g.value == "auto" ? 0 : as_int(g); }},
      {"calib_size", [](Options& o, const Given& g) { o.calib_size = as_int(g); }},
      {"calib_split", [](Options& o, const Given& g) { o.calib_split = as_list(g); }},
      {"dataset", [](Options& o, const Given& g) { o.datasets = as_list(g); }},
      {"dataset_dir", [](Options& o, const Given& g) { o.dataset_dir = g.value; }},
      {"calib_file", [](Options& o, const Given& g) { o.calib_files = as_list(g); }},
      {"calib_cache", [](Options& o, const Given& g) { o.calib_cache = g.value; }},
      {"calib_sampling",
       [](Options& o, const Given& g) { o.calib_sampling = as_choice(g, "auto|texts|windows"); }},
      {"calib_mix",
       [](Options& o, const Given& g) { o.calib_mix = as_choice(g, "equal|proportional"); }},
      {"seed",
       [](Options& o, const Given& g) {
         const int64_t s = as_int(g);
         SQ_REQUIRE(s >= 0, g.source << ": expected a non-negative seed, got " << s);
         o.seed = static_cast<uint64_t>(s);
       }},
      {"force_cpu", [](Options& o, const Given& g) { o.force_cpu = as_bool(g); }},
      {"device", [](Options& o, const Given& g) { o.device = g.value; }},
      {"compute_dtype",
       [](Options& o, const Given& g) { o.compute_dtype = as_choice(g, "auto|fp32|bf16|fp16"); }},
      {"parallel",
       [](Options& o, const Given& g) {
         o.parallel = enum_from<ParallelMode>(as_choice(g, "auto|blocks|data"),
                                              {{"auto", ParallelMode::kAuto},
                                               {"blocks", ParallelMode::kBlocks},
                                               {"data", ParallelMode::kData}});
       }},
      {"transport",
       [](Options& o, const Given& g) {
         o.transport = enum_from<TransportKind>(as_choice(g, "nccl|mpi|local"),
                                                {{"nccl", TransportKind::kNccl},
                                                 {"mpi", TransportKind::kMpi},
                                                 {"local", TransportKind::kLocal}});
       }},
      {"comm_timeout",
       [](Options& o, const Given& g) { o.comm_timeout_s = static_cast<int>(as_int(g)); }},
      {"gpu_mem_limit",
       [](Options& o, const Given& g) { o.gpu_mem_limit_bytes = parse_size(g.value, g.source); }},
      {"output_layout",
       [](Options& o, const Given& g) { o.output_layout = as_choice(g, "default|suffixed"); }},
      {"max_shard_size",
       [](Options& o, const Given& g) { o.max_shard_size_bytes = parse_size(g.value, g.source); }},
      {"log_file", [](Options& o, const Given& g) { o.log_file = g.value; }},
      {"verbose",
       [](Options& o, const Given& g) {
         if (as_bool(g)) o.verbosity = Verbosity::kVerbose;
       }},
      {"quiet",
       [](Options& o, const Given& g) {
         if (as_bool(g)) o.verbosity = Verbosity::kQuiet;
       }},
  };
  return rows;
}

struct RangeRow {
  const char* flag;
  double lo, hi;
  bool lo_open;
  double (*get)(const Options&);
};
const RangeRow kRanges[] = {
    {"seq_len", 1, 1 << 20, false, [](const Options& o) { return double(o.seq_len); }},
    {"calib_size", 1, 1e8, false, [](const Options& o) { return double(o.calib_size); }},
    {"micro_batch", 0, 1e8, false, [](const Options& o) { return double(o.micro_batch); }},
    {"n_grid", 1, 1000, false, [](const Options& o) { return double(o.n_grid); }},
    {"clip_tokens", 0, 1e12, false, [](const Options& o) { return double(o.clip_tokens); }},
    {"iter", 1, 1000, false, [](const Options& o) { return double(o.iter); }},
    {"search_step", 1, 1000, false, [](const Options& o) { return double(o.search_step); }},
    {"damp_percent", 0, 1, true, [](const Options& o) { return o.damp_percent; }},
    {"mse", 0, 100, false, [](const Options& o) { return o.mse; }},
    {"salient_quota", 0, 1, false, [](const Options& o) { return o.salient_quota; }},
    {"comm_timeout", 1, 7 * 86400, false,
     [](const Options& o) { return double(o.comm_timeout_s); }},
};

bool active(const Given& g, const table::FlagRow& r) {
  return r.kind == Kind::kBool ? as_bool(g) : true;
}

void check_exclusions(const Layer& all) {
  for (const auto& grp : table::exclusions()) {
    std::vector<std::string> on;
    for (const char* f : grp.flags) {
      auto it = all.find(f);
      if (it != all.end() && active(it->second, *table::find_flag(f)))
        on.push_back(it->second.source);
    }
    if (on.size() > 1) {
      std::string list;
      for (const auto& s : on) list += (list.empty() ? "" : " and ") + s;
      SQ_THROW(InputError, list << " are mutually exclusive (give one)");
    }
  }
}

Method resolve_method(const Layer& all) {
  auto get = [&](const char* f) { return all.count(f) ? &all.at(f) : nullptr; };
  if (const auto* m = get("method"))
    return as_choice(*m, "awq|gptq") == "gptq" ? Method::kGptq : Method::kAwq;
  if (const auto* g = get("gptq"); g && as_bool(*g)) return Method::kGptq;
  if (const auto* a = get("awq"); a && !as_bool(*a)) return Method::kGptq;  // --awq=false
  return Method::kAwq;
}

void validate(const Options& o, const Layer& all) {
  SQ_REQUIRE(!o.model_path.empty(), "--model_path is required (or set MODEL_PATH); see --help");
  const auto& m = table::method_row(o.method);
  const std::string bits_src = all.count("bits") ? all.at("bits").source : "--bits";
  bool bits_ok = false;
  std::string allowed;
  for (int b : m.bits) {
    bits_ok |= b == o.bits;
    allowed += (allowed.empty() ? "" : ", ") + std::to_string(b);
  }
  SQ_REQUIRE(bits_ok, bits_src << " " << o.bits << " is not supported by " << m.dir_name
                               << " (expected one of: " << allowed << ")");
  SQ_REQUIRE(o.group_size == -1 || o.group_size > 0,
             "--q-group-size " << o.group_size << ": expected -1 or a positive integer");
  for (const auto& r : kRanges) {
    const double v = r.get(o);
    const bool ok = (r.lo_open ? v > r.lo : v >= r.lo) && v <= r.hi;
    SQ_REQUIRE(ok, (all.count(r.flag) ? all.at(r.flag).source : "--" + std::string(r.flag))
                       << " " << v << ": expected a value in " << (r.lo_open ? "(" : "[") << r.lo
                       << ", " << r.hi << "]");
  }
  for (const auto& other : table::methods()) {
    if (other.method == o.method) continue;
    // --max_quality's presets are one bundle for both methods: the other method's are unused.
    for (const char* f : other.only_flags)
      SQ_REQUIRE(!all.count(f) || all.at(f).source.rfind("--max_quality", 0) == 0,
                 all.at(f).source << " applies to " << other.dir_name << " only (method is "
                                  << m.dir_name << ")");
  }
  bool fmt_ok = false;
  for (auto f : m.formats) fmt_ok |= f == o.format;
  SQ_REQUIRE(fmt_ok, "--format " << to_string(o.format) << " cannot hold " << m.dir_name
                                 << " results (expected " << to_string(m.default_format)
                                 << " or compressed-tensors)");
  for (const auto& r : table::rules()) SQ_REQUIRE(!r.violated(o), r.message(o));
}

}  // namespace

ParseResult parse_options(const std::vector<std::string>& args,
                          const std::map<std::string, std::string>& env) {
  ParseResult result;
  Actions actions;
  Layer cmd = parse_layer(args, "", &actions);
  if (actions.help) return {ParseOutcome::kHelp, {}};
  if (actions.markdown) return {ParseOutcome::kHelpMarkdown, {}};
  if (actions.version) return {ParseOutcome::kVersion, {}};

  Layer extra;
  if (auto it = env.find("EXTRA_ARGS"); it != env.end() && !it->second.empty())
    extra = parse_layer(shell_split(it->second), "EXTRA_ARGS", nullptr);
  Layer all = merge({cmd, extra, env_layer(env)});

  Options& o = result.options;
  for (const auto& [k, v] : all) o.explicit_flags.push_back(k);
  check_exclusions(all);

  const bool max_quality = all.count("max_quality") && as_bool(all.at("max_quality"));
  if (max_quality) {
    Layer presets;
    for (const auto& p : table::max_quality_presets())
      presets[p.flag] = {p.value, "--max_quality (preset --" + table::kebab(p.flag) + ")"};
    all = merge({all, presets});
    check_exclusions(all);
  }

  o.method = resolve_method(all);
  const auto& m = table::method_row(o.method);
  o.bits = m.default_bits;
  o.zero_point = m.default_zero_point;
  o.propagate = m.default_propagate;
  o.format = m.default_format;
  for (const auto& s : setters()) {
    auto it = all.find(s.flag);
    if (it != all.end()) s.set(o, it->second);
  }

  while (o.model_path.size() > 1 && o.model_path.back() == '/') o.model_path.pop_back();
  if (o.output_dir_defaulted && !o.model_path.empty()) {
    const std::string mx = o.max_quality ? "-MAX" : "";
    if (o.output_layout == "suffixed") {  // <model>/<model name>-AWQ[-MAX]
      namespace fs = std::filesystem;
      fs::path p = fs::absolute(o.model_path).lexically_normal();
      if (p.filename().empty()) p = p.parent_path();  // "dir/" normalises to a trailing ""
      o.output_dir = o.model_path + "/" + p.filename().string() + "-" + m.dir_name + mx;
    } else {
      o.output_dir = o.model_path + "/" + m.dir_name + "-" + std::to_string(o.bits) + "bit" + mx;
    }
  }
  if (o.max_quality && o.dump_salient.empty() && !o.output_dir.empty())
    o.dump_salient = o.output_dir + "/outlier.json";
  validate(o, all);
  return result;
}

}  // namespace sq::coordinator
