// parse_options(): command line, EXTRA_ARGS and env variables → one validated Options.
//
// Each source is parsed into a "layer" (canonical flag → raw text + where it came from); layers
// are merged by precedence, then typed into Options by each flag's row (options_table.cpp) and
// validated by the rows' ranges and the rule tables. Boost.Program_options does the flag syntax; we
// pre-join "--flag VALUE" into
// "--flag=VALUE" for value flags so that negative numbers (--q-group-size -1) are values, not
// short options.
#include <boost/program_options.hpp>
#include <filesystem>
#include <set>

#include "common/check.h"
#include "coordinator/options/options.h"
#include "coordinator/options/options_table.h"

namespace sq::coordinator {
namespace {

namespace po = boost::program_options;
using table::as_bool;
using table::as_choice;
using table::Given;
using table::Kind;

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
    return as_choice(*m, table::find_flag("method")->choices) == "gptq" ? Method::kGptq
                                                                        : Method::kAwq;
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
  for (const auto& f : table::flags()) {
    if (!f.range) continue;
    const table::Range& r = *f.range;
    const double v = f.value(o);
    const bool ok = (r.lo_open ? v > r.lo : v >= r.lo) && v <= r.hi;
    SQ_REQUIRE(ok, (all.count(f.name) ? all.at(f.name).source : "--" + std::string(f.name))
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
  SQ_REQUIRE(fmt_ok, "--format " << io::cli_name(o.format) << " cannot hold " << m.dir_name
                                 << " results (expected " << io::cli_name(m.default_format)
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
  for (const auto& f : table::flags()) {
    auto it = all.find(f.name);
    if (it != all.end() && f.set) f.set(o, it->second);
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
