// Llama 4's fused routed-expert tensors presented one linear per expert (issue 23), so that the
// planner, the blocks and the writer treat them like any other MoE's experts and the output holds
// the per-expert layout vLLM loads quantized (its llama4.py maps "experts.{e}.gate_proj/up_proj/
// down_proj" onto FusedMoE when no fused tensor is present).
//
// CONTRACT
//   splits_fused_experts(config.json): true when model_type is "llama4_text", or "llama4" (the
//   multimodal checkpoint, whose text model has the same layout).
//   plan_expert_split(stored, context): for every stored "<C>.experts.gate_up_proj" and its
//   sibling "<C>.experts.down_proj" (transformers' Llama4TextExperts: gate_up [E, H, 2I] with
//   [gate | up] along the last dim, down [E, I, H], no biases), the virtual linear weights, each
//   [out, in] in the stored dtype, for e < E:
//       "<C>.experts.{e}.gate_proj.weight" [I, H] = gate_up[e][:, 0:I]ᵀ
//       "<C>.experts.{e}.up_proj.weight"   [I, H] = gate_up[e][:, I:2I]ᵀ
//       "<C>.experts.{e}.down_proj.weight" [H, I] = down[e]ᵀ
//   and both fused tensors in `hidden`. InputError (naming `context`, the tensor, what was
//   expected and what was found): a fused tensor without its sibling, one that is not 3-D, an odd
//   last dim of gate_up, expert counts or H / I that disagree, a per-expert name already stored,
//   or a fused tensor that is not stored as F32, BF16 or F16 (an FP8 or integer layout is not
//   split: its scales would have to be sliced with it).
//   expert_slice(fused, s): the [out, in] view of s in the fused tensor (no copy).
#pragma once

#include <ATen/ATen.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io/safetensors/safetensors.h"

namespace sq::io {

bool splits_fused_experts(const nlohmann::json& config);

struct ExpertSlice {
  std::string fused;  // stored tensor it is read from
  int64_t expert = 0;
  int64_t offset = 0, width = 0;  // columns of fused[expert] ([in, out] layout) it takes
  TensorInfo info;                // virtual: name, stored dtype, [out, in]
};

struct ExpertSplitPlan {
  std::map<std::string, ExpertSlice> tensors;  // by virtual name
  std::vector<std::string> hidden;             // the fused tensors
};

ExpertSplitPlan plan_expert_split(const std::map<std::string, const TensorInfo*>& stored,
                                  const std::string& context);

at::Tensor expert_slice(const at::Tensor& fused, const ExpertSlice& s);

}  // namespace sq::io
