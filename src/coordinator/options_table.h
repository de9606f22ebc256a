// The tables behind options.h (internal to the coordinator): one row per flag, per env variable,
// per --max_quality preset, per method, per exclusion group and per validation rule. Help text,
// both spellings, env mapping and validation are all generated from these rows.
#pragma once

#include <string>
#include <vector>

#include "coordinator/options.h"

namespace sq::coordinator::table {

enum class Kind { kBool, kInt, kDouble, kString, kList, kSize, kChoice, kAction };

struct FlagRow {
  const char* name;  // canonical snake_case; the kebab spelling is generated
  Kind kind;
  const char* value_name;  // "N", "PATH", … (empty for booleans)
  const char* def;         // default as shown in --help ("" = none)
  const char* help;
  const char* choices;  // kChoice: "a|b|c"
  const char* coming;   // what later work gives it behaviour; nullptr = built
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
  OutputFormat default_format;
  std::vector<OutputFormat> formats;    // allowed
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

}  // namespace sq::coordinator::table
