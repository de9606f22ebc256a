// The tables behind options.h (internal to the coordinator): one row per flag, per env variable,
// per --max_quality preset, per method, per exclusion group and per validation rule. Help text,
// both spellings, env mapping and validation are all generated from these rows.
//
// A flag's row holds everything about it: spelling, help, default text, choices, the field of
// Options it fills and how its text is parsed into that field (`set`), and its range. Rows are
// made by builders that take the field (options_table.cpp): the kind and the parser follow from
// the field's type, the choices of an enum field from its value names.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "coordinator/options/options.h"

namespace sq::coordinator::table {

enum class Kind { kBool, kInt, kDouble, kString, kList, kSize, kChoice, kAction };

// A flag's raw text and where it came from ("--seq-len", "EXTRA_ARGS --seq_len", "env SEQ_LEN",
// "--max_quality (preset --iter)"): errors name the source.
struct Given {
  std::string value;
  std::string source;
};

// Closed range [lo, hi] (or (lo, hi] when lo_open) that the resolved value must lie in.
struct Range {
  double lo, hi;
  bool lo_open = false;
};

struct FlagRow {
  const char* name;  // canonical snake_case; the kebab spelling is generated
  Kind kind;
  const char* value_name;  // "N", "PATH", … (empty for booleans)
  const char* def;         // default as shown in --help ("" = none)
  const char* help;
  std::string choices;  // kChoice: "a|b|c"
  // Parses the text into the flag's field (InputError naming the source); empty for actions and
  // for awq/gptq/method, which resolve_method() reads before any setter runs.
  std::function<void(Options&, const Given&)> set;
  std::optional<Range> range;                   // checked on the resolved Options
  std::function<double(const Options&)> value;  // the field, for the range check

  FlagRow in(double lo, double hi, bool lo_open = false) const;  // this row with a range
};

struct EnvRow {
  const char* env;   // MODEL_PATH
  const char* flag;  // canonical flag it sets
};

struct PresetRow {  // --max_quality: applied where nothing above set the flag
  const char* flag;
  const char* value;
};

struct MethodRow {
  Method method;
  const char* name;       // "awq"
  const char* dir_name;   // "AWQ"
  std::vector<int> bits;  // allowed
  int default_bits;
  bool default_zero_point;
  Propagate default_propagate;
  io::Format default_format;
  std::vector<io::Format> formats;      // allowed
  std::vector<const char*> only_flags;  // flags that make sense with this method only
};

// Flags of which at most one may be active (a boolean set true, or any other flag given).
// Across sources (command line > EXTRA_ARGS > env), the highest source that sets any member
// decides the whole group.
struct ExclusionRow {
  std::vector<const char*> flags;
};

struct RuleRow {  // a cross-field check on the resolved Options
  const char* what;
  bool (*violated)(const Options&);
  std::string (*message)(const Options&);
};

const std::vector<FlagRow>& flags();
const std::vector<EnvRow>& envs();
const std::vector<PresetRow>& max_quality_presets();
const std::vector<MethodRow>& methods();
const std::vector<ExclusionRow>& exclusions();
const std::vector<RuleRow>& rules();

const FlagRow* find_flag(const std::string& canonical);
const MethodRow& method_row(Method m);
std::string kebab(const std::string& canonical);

// The value parsers the rows use (InputError naming g.source).
int64_t as_int(const Given& g);
double as_double(const Given& g);
bool as_bool(const Given& g);
std::vector<std::string> as_list(const Given& g);  // comma-separated, entries trimmed
std::string as_choice(const Given& g, const std::string& choices);  // one of "a|b|c"

}  // namespace sq::coordinator::table
