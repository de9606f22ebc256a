// The linears a checkpoint leaves in floating point (plan.h float_modules) and the checks that
// keep such a checkpoint loadable. Runtimes decide per module whether to build a quantized
// layer from the config's ignore / modules_to_not_convert list, so that list must name every
// float linear and nothing that is packed; vLLM builds one layer from each fused set, so a set
// must be packed or kept as a whole.
#include <map>
#include <set>
#include <sstream>

#include "common/check.h"
#include "coordinator/plan/plan_internal.h"
#include "io/format/format_registry.h"
#include "rank/model/arch_table.h"

namespace sq::coordinator::detail {
namespace {

struct DtypeRow {
  const char* config;  // config.json spelling
  io::DType dtype;
};
constexpr DtypeRow kDtypes[] = {
    {"bfloat16", io::DType::BF16}, {"float16", io::DType::F16}, {"float32", io::DType::F32}};

io::DType model_dtype(const io::ModelConfig& cfg, const io::ModelWeights& w) {
  for (const auto& r : kDtypes)
    if (cfg.dtype == r.config) return r.dtype;
  for (const auto& n : w.names())
    for (const auto& r : kDtypes)
      if (w.info(n).dtype == r.dtype) return r.dtype;
  return io::DType::F16;
}

bool starts_with(const std::string& s, const std::string& p) {
  return s.compare(0, p.size(), p) == 0;
}

// "a, b, c" — at most four names, then how many more (an MoE block has hundreds of experts).
std::string some(const std::vector<std::string>& names) {
  std::ostringstream os;
  for (size_t i = 0; i < names.size() && i < 4; ++i) os << (i ? ", " : "") << names[i];
  if (names.size() > 4) os << " and " << names.size() - 4 << " more";
  return os.str();
}

void check_fused_sets(const Plan& plan, const io::ModelWeights& w) {
  for (const auto& blk : plan.blocks) {
    std::map<std::string, const PlannedLinear*> by_name;
    for (const auto& l : blk.linears) by_name[l.ref.name] = &l;
    for (const auto& set : rank::fused_linear_sets(plan.config, w, blk.index)) {
      std::vector<std::string> kept, packed;
      std::string entry;
      for (const auto& name : set) {
        const PlannedLinear& l = *by_name.at(name);
        if (l.quantized) {
          packed.push_back(name);
        } else {
          kept.push_back(name);
          if (entry.empty()) entry = l.keep_reason;
        }
      }
      SQ_REQUIRE(kept.empty() || packed.empty(),
                 "--keep-fp-layers entry '"
                     << entry << "' keeps " << some(kept) << " but not " << some(packed)
                     << ": runtimes load these linears as one layer (vLLM fuses q/k/v, gate/up and "
                        "the routed experts of an MoE block) and refuse a checkpoint that "
                        "quantizes only part of it; keep all of them or none");
    }
  }
}

void check_format(const Plan& plan, const Options& opts) {
  const rank::ArchSpec& spec = rank::arch_spec(plan.config.model_type);
  const char* why = io::format_row(opts.format).conv1d_error;
  SQ_REQUIRE(why == nullptr || !spec.conv1d,
             "--format " << io::cli_name(opts.format) << ": " << spec.model_type << " " << why);
}

}  // namespace

void plan_float_modules(Plan& plan, const Options& opts, const io::ModelWeights& w) {
  check_fused_sets(plan, w);
  check_format(plan, opts);
  const io::ModelConfig& cfg = plan.config;
  std::set<std::string> out;
  for (const auto& name : rank::never_quantized_linears(cfg, w)) out.insert(name);
  for (const auto& blk : plan.blocks) {
    for (const auto& l : blk.linears)
      if (!l.quantized) out.insert(l.ref.name);
    // A fully kept expert set is one unquantized layer to vLLM, found by its module name.
    const std::string experts = rank::experts_module(cfg, blk.index);
    if (experts.empty()) continue;
    bool any = false, all_kept = true;
    for (const auto& l : blk.linears)
      if (starts_with(l.ref.name, experts + ".")) {
        any = true;
        all_kept = all_kept && !l.quantized;
      }
    if (any && all_kept) out.insert(experts);
  }
  plan.float_modules.assign(out.begin(), out.end());
  plan.model_dtype = model_dtype(cfg, w);
}

}  // namespace sq::coordinator::detail
