// Per-expert views of Llama 4's fused expert tensors (contract in expert_split.h). Only names and
// shapes are planned here; the bytes stay in the mmapped shard until a block reads one expert.
#include "io/model/expert_split.h"

#include "common/check.h"

namespace sq::io {
namespace {

const std::string kGateUp = ".experts.gate_up_proj";
const std::string kDown = ".experts.down_proj";

std::string shape_text(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

bool ends_with(const std::string& s, const std::string& suf) {
  return s.size() > suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

}  // namespace

bool splits_fused_experts(const nlohmann::json& config) {
  const auto t = config.value("model_type", nlohmann::json());
  return t.is_string() &&
         (t.get<std::string>() == "llama4_text" || t.get<std::string>() == "llama4");
}

ExpertSplitPlan plan_expert_split(const std::map<std::string, const TensorInfo*>& stored,
                                  const std::string& context) {
  ExpertSplitPlan plan;
  for (const auto& [name, ti] : stored) {
    const bool gate_up = ends_with(name, kGateUp), down = ends_with(name, kDown);
    if (!gate_up && !down) continue;
    const std::string container =
        name.substr(0, name.size() - (gate_up ? kGateUp : kDown).size()) + ".experts";
    const std::string sibling = container + (gate_up ? ".down_proj" : ".gate_up_proj");
    SQ_REQUIRE(stored.count(sibling), context << ": fused expert tensor " << name
                                              << " without its sibling " << sibling
                                              << " (Llama 4 stores both)");
    if (!gate_up) continue;  // planned with its gate_up
    const TensorInfo& gu = *ti;
    const TensorInfo& dn = *stored.at(sibling);
    SQ_REQUIRE(gu.shape.size() == 3 && gu.shape[2] % 2 == 0,
               context << ": tensor " << name
                       << ": expected [experts, hidden, 2·intermediate], got "
                       << shape_text(gu.shape));
    // A slice of an FP8 or integer fused tensor would be raw codes without their scales: only
    // floating layouts are split (an InputError like the other malformed layouts).
    for (const TensorInfo* t : {&gu, &dn}) {
      const DType d = t->dtype;
      SQ_REQUIRE(d == DType::F32 || d == DType::BF16 || d == DType::F16,
                 context << ": tensor " << (t == &gu ? name : sibling) << ": stored as "
                         << dtype_name(d)
                         << ", expected F32, BF16 or F16 (fused Llama 4 experts are read per "
                            "expert only from a floating layout)");
    }
    const int64_t E = gu.shape[0], H = gu.shape[1], I = gu.shape[2] / 2;
    SQ_REQUIRE(dn.shape == std::vector<int64_t>({E, I, H}),
               context << ": tensor " << sibling << ": expected " << shape_text({E, I, H})
                       << " (from " << name << " " << shape_text(gu.shape) << "), got "
                       << shape_text(dn.shape));
    plan.hidden.push_back(name);
    plan.hidden.push_back(sibling);
    struct Part {
      const char* leaf;
      const TensorInfo* from;
      const std::string* fused;
      int64_t offset, width, in;
    };
    const Part parts[] = {{"gate_proj", &gu, &name, 0, I, H},
                          {"up_proj", &gu, &name, I, I, H},
                          {"down_proj", &dn, &sibling, 0, H, I}};
    for (int64_t e = 0; e < E; ++e)
      for (const Part& p : parts) {
        ExpertSlice s;
        s.fused = *p.fused;
        s.expert = e;
        s.offset = p.offset;
        s.width = p.width;
        s.info.name = container + "." + std::to_string(e) + "." + p.leaf + ".weight";
        SQ_REQUIRE(!stored.count(s.info.name),
                   context << ": tensor " << s.info.name << " is stored beside the fused "
                           << s.fused << " (expected one layout of the experts, found both)");
        s.info.dtype = p.from->dtype;
        s.info.shape = {p.width, p.in};
        s.info.begin = 0;
        s.info.end = static_cast<uint64_t>(s.info.numel()) * dtype_size(s.info.dtype);
        plan.tensors[s.info.name] = s;
      }
  }
  return plan;
}

at::Tensor expert_slice(const at::Tensor& fused, const ExpertSlice& s) {
  return fused.select(0, s.expert).narrow(1, s.offset, s.width).t();
}

}  // namespace sq::io
