// Small parsers and the generated help for options.h.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <sstream>

#include "common/check.h"
#include "coordinator/options/options.h"
#include "coordinator/options/options_table.h"

extern char** environ;

namespace sq::coordinator {
namespace {

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

struct BoolWord {
  const char* word;
  bool value;
};
constexpr BoolWord kBoolWords[] = {{"1", true},   {"0", false},  {"true", true}, {"false", false},
                                   {"yes", true}, {"no", false}, {"on", true},   {"off", false},
                                   {"y", true},   {"n", false}};

struct SizeUnit {
  const char* suffix;
  double factor;
};
// Longest suffixes first so that "GiB" is not read as "B".
constexpr SizeUnit kSizeUnits[] = {{"tib", 1099511627776.0},
                                   {"gib", 1073741824.0},
                                   {"mib", 1048576.0},
                                   {"kib", 1024.0},
                                   {"tb", 1e12},
                                   {"gb", 1e9},
                                   {"mb", 1e6},
                                   {"kb", 1e3},
                                   {"t", 1e12},
                                   {"g", 1e9},
                                   {"m", 1e6},
                                   {"k", 1e3},
                                   {"b", 1.0}};

}  // namespace

bool Options::is_explicit(const std::string& canonical) const {
  return std::find(explicit_flags.begin(), explicit_flags.end(), canonical) != explicit_flags.end();
}

bool parse_bool(const std::string& text, const std::string& what) {
  const std::string t = lower(text);
  for (const auto& w : kBoolWords)
    if (t == w.word) return w.value;
  SQ_THROW(InputError,
           what << ": expected a boolean (1/0/true/false/yes/no), got '" << text << "'");
}

uint64_t parse_size(const std::string& text, const std::string& flag) {
  std::string t = lower(text);
  t.erase(std::remove_if(t.begin(), t.end(), [](char c) { return std::isspace(c); }), t.end());
  double factor = 1.0;
  for (const auto& u : kSizeUnits) {
    const std::string s = u.suffix;
    if (t.size() > s.size() && t.compare(t.size() - s.size(), s.size(), s) == 0) {
      factor = u.factor;
      t.resize(t.size() - s.size());
      break;
    }
  }
  size_t used = 0;
  double v = -1;
  try {
    v = std::stod(t, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  SQ_REQUIRE(used == t.size() && !t.empty() && std::isfinite(v) && v >= 0,
             flag << ": expected a size such as 5GB, 500MB or 2GiB, got '" << text << "'");
  return static_cast<uint64_t>(std::llround(v * factor));
}

std::vector<std::string> shell_split(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  bool in_word = false;
  char quote = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (quote == '\'') {
      if (c == '\'')
        quote = 0;
      else
        cur += c;
    } else if (quote == '"') {
      // Inside double quotes a backslash escapes only " \ $ ` (POSIX).
      if (c == '"')
        quote = 0;
      else if (c == '\\' && i + 1 < s.size() &&
               std::string("\"\\$`").find(s[i + 1]) != std::string::npos)
        cur += s[++i];
      else
        cur += c;
    } else if (c == '\'' || c == '"') {
      quote = c;
      in_word = true;
    } else if (c == '\\' && i + 1 < s.size()) {
      cur += s[++i];
      in_word = true;
    } else if (std::isspace(static_cast<unsigned char>(c))) {
      if (in_word) out.push_back(cur);
      cur.clear();
      in_word = false;
    } else {
      cur += c;
      in_word = true;
    }
  }
  SQ_REQUIRE(quote == 0, "EXTRA_ARGS: unterminated " << (quote == '"' ? "double" : "single")
                                                     << " quote in '" << s << "'");
  if (in_word) out.push_back(cur);
  return out;
}

std::map<std::string, std::string> environment_from_process() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string kv = *e;
    auto eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return env;
}

namespace {

std::string env_of(const std::string& flag) {
  for (const auto& e : table::envs())
    if (flag == e.flag) return e.env;
  return "";
}

std::string spellings(const table::FlagRow& r) {
  std::string s = "--" + std::string(r.name);
  if (table::kebab(r.name) != r.name) s += ", --" + table::kebab(r.name);
  if (r.value_name && *r.value_name) s += " " + std::string(r.value_name);
  return s;
}

}  // namespace

std::string help_text() {
  std::ostringstream os;
  os << "shardquant " << SQ_VERSION
     << " — AWQ/GPTQ quantizer for Hugging Face models\n\n"
        "Usage: shardquant [quantize] --model_path PATH [flags]\n"
        "       shardquant tokenize|eval|synth ...\n\n"
        "Every flag has a --snake_case and a --kebab-case spelling. Booleans accept --flag and\n"
        "--flag=true|false. Precedence: command line > EXTRA_ARGS > env variables > defaults.\n"
        "\nFlags:\n";
  for (const auto& r : table::flags()) {
    os << "  " << spellings(r) << "\n      " << r.help;
    if (!r.choices.empty()) os << " [" << r.choices << "]";
    if (r.def && *r.def) os << " (default: " << r.def << ")";
    const std::string env = env_of(r.name);
    if (!env.empty()) os << " [env " << env << "]";
    os << "\n";
  }
  os << "\nEnvironment: ";
  for (const auto& e : table::envs()) os << e.env << " ";
  os << "EXTRA_ARGS (more flags, split like a shell).\n"
        "Exit codes: 0 ok, 2 user input, 3 system/backend, 4 internal error.\n";
  return os.str();
}

std::string help_markdown() {
  std::ostringstream os;
  os << "| flag | value | default | env | description |\n|---|---|---|---|---|\n";
  for (const auto& r : table::flags()) {
    std::string names = "`--" + std::string(r.name) + "`";
    if (table::kebab(r.name) != r.name) names += " `--" + table::kebab(r.name) + "`";
    std::string value = r.value_name ? r.value_name : "";
    if (!r.choices.empty()) value = r.choices;
    // '|' separates Markdown table cells: show choices as a/b/c.
    std::replace(value.begin(), value.end(), '|', '/');
    std::string desc = r.help;
    std::string env = env_of(r.name);
    os << "| " << names << " | " << (value.empty() ? "" : "`" + value + "`") << " | " << r.def
       << " | " << env << " | " << desc << " |\n";
  }
  return os.str();
}

}  // namespace sq::coordinator

namespace sq::coordinator {

std::string weight_file_stem(const Options& o) {
  if (o.output_layout != "suffixed") return "model";
  return std::string("model-") + table::method_row(o.method).dir_name;
}

}  // namespace sq::coordinator
