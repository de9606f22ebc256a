// One decoder block on a device and dtype, built from the architecture table.
//
// CONTRACT (stable API for the worker loop and the AWQ/GPTQ pipeline):
//   Block(w, cfg, i, device, dtype)  loads only block i's tensors from the mmapped shards.
//   forward(x [B,T,H], ctx, tap)     the block's output [B,T,H]; `tap` (optional) sees the input
//                                    of every linear before it is applied.
//   forward_scope(scope, x, ctx, tap) AWQ inspect scopes: "attn" (x = attention input after its
//                                    norm → attention output before the residual), "mlp"
//                                    (x = MLP/MoE input → its output), or a linear's full
//                                    prefix (x = its input → its output).
//   linear(name) / norm(name)        mutable access by full prefix ("model.layers.0.mlp.up_proj")
//                                    or relative name ("mlp.up_proj"); weights are [out, in].
// Fused checkpoint linears stay one linear (phi3 qkv_proj, gate_up_proj, neox query_key_value).
// GPT-2 Conv1D weights are transposed once at load into [out, in] (Linear::transposed = true:
// transpose back when writing). Norms and softmax run in fp32 whatever the block dtype.
#pragma once

#include <ATen/ATen.h>

#include <array>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "io/model/model_config.h"
#include "io/model/model_weights.h"
#include "rank/model/arch_table.h"
#include "rank/model/layers.h"

namespace sq::rank {

// Per-batch inputs shared by all blocks. make_context() fills it for positions 0..T-1.
struct BlockContext {
  at::Tensor positions;     // [B,T] int64 (on the block's device or CPU)
  at::Tensor padding_mask;  // [B,T] bool, true = real token; undefined = no padding
  // Apply attn_logit_softcapping (gemma2) as transformers' eager attention does; its default
  // sdpa attention (which the fixtures record) does not.
  bool attn_softcap = false;
  // Set by make_context: positions are 0..T−1 in every row, so per-(B,T) tables (rotary) can be
  // cached and no device read is needed to learn T. 0 = positions of unknown shape.
  int64_t default_positions_len = 0;
};
BlockContext make_context(int64_t batch, int64_t seq_len, const at::Device& device);

// Receives the input of every linear. Dense linears: x is [B,T,in]. MoE experts: x is [n,in],
// only the tokens routed to that expert (n may be 0: then it is not called). The router is
// tapped with the whole MoE input [B,T,in] (it is never quantized).
struct Linear;
class ActivationTap {
 public:
  virtual ~ActivationTap() = default;
  virtual bool wants(const std::string& linear) const { return true; }
  virtual void on_input(const std::string& linear, const at::Tensor& x) = 0;
  // True once the tap has seen everything it needs from the current forward: the block then
  // abandons the rest of it by throwing ForwardStopped (run_block() catches it and returns an
  // undefined output). Taps that need the block output never return true.
  virtual bool done() const { return false; }
  // MoE blocks: the expert ids [N,k] chosen for the N tokens (rows of the flattened [B,T]) of
  // this forward and their routing weights [N,k] (fp32), before any expert runs.
  virtual void on_routing(const std::string& router, const at::Tensor& experts,
                          const at::Tensor& weights) {}
  // The weight this forward multiplies linear `l`'s input by: undefined = l.weight. The AWQ
  // search uses it to make a group's trial weights one linear at a time, when they are applied
  // (an MoE group's experts would not fit on the device all at once).
  virtual at::Tensor weight_for(const Linear& l) const { return at::Tensor(); }
};
// Thrown out of a forward whose tap is done(); never escapes run_block().
struct ForwardStopped {};

struct Linear {
  std::string name;         // full prefix
  at::Tensor weight;        // [out, in], block dtype/device
  at::Tensor bias;          // [out] or undefined
  bool transposed = false;  // stored [in, out] on disk (Conv1D)
};
struct Norm {
  std::string name;   // full prefix
  at::Tensor weight;  // may be undefined for affine-free norms
  at::Tensor bias;
  NormKind kind = NormKind::Rms;
  double eps = 1e-5;
};

class Block {
 public:
  Block(const io::ModelWeights& w, const io::ModelConfig& cfg, int64_t index,
        const at::Device& device = at::kCPU, at::ScalarType dtype = at::kFloat);

  at::Tensor forward(const at::Tensor& x, const BlockContext& ctx,
                     ActivationTap* tap = nullptr) const;
  at::Tensor forward_scope(const std::string& scope, const at::Tensor& x, const BlockContext& ctx,
                           ActivationTap* tap = nullptr) const;

  int64_t index() const { return index_; }
  const std::string& prefix() const { return prefix_; }
  const ArchSpec& spec() const { return *spec_; }
  at::Device device() const { return device_; }
  at::ScalarType dtype() const { return dtype_; }

  bool has_linear(const std::string& name) const;
  Linear& linear(const std::string& name);
  const Linear& linear(const std::string& name) const;
  std::vector<std::string> linear_names() const;  // full prefixes, sorted
  bool has_norm(const std::string& name) const;
  Norm& norm(const std::string& name);
  const Norm& norm(const std::string& name) const;
  std::vector<std::string> norm_names() const;
  // Other tensors (router correction bias …), full names.
  std::map<std::string, at::Tensor>& extras() { return extras_; }

  // MoE replay (block_moe.cpp; GPTQ's Hessian passes, block_gptq.cpp).
  //   router_name()       the router linear's full name; "" unless an MoE block with one.
  //   moe_linears()       the routed experts' gate, up and down linears and the shared
  //                       expert's (shared_gate/up/down), full names; empty unless an MoE block
  //                       with per-expert linears: the linears whose inputs forward() computes
  //                       from the MoE input, the routing and these linears alone.
  //   replay_moe_inputs   feeds `tap` exactly what forward() feeds it for every MoE linear that
  //                       tap->wants(), for one micro-batch whose MoE input (the [B,T,H] tensor
  //                       the router is tapped with) was x and whose routing (on_routing) was
  //                       experts/weights: the same code on the block's current weights, so the
  //                       same bits, in the same per-linear order, without the rest of the block.
  //                       Experts with no wanted linear are skipped, gate/up products are made
  //                       only for a wanted down linear, no output is made. The tap must never
  //                       become done() here (a HessianCapture without stop-early).
  std::string router_name() const;
  std::set<std::string> moe_linears() const;
  void replay_moe_inputs(const at::Tensor& x, const at::Tensor& experts, const at::Tensor& weights,
                         ActivationTap* tap) const;

 private:
  std::string full(const std::string& name) const;
  const Linear* find_linear_role(const std::string& role) const;
  const Norm* find_norm_role(const std::string& role) const;
  at::Tensor apply_linear(const Linear& l, const at::Tensor& x, ActivationTap* tap) const;
  at::Tensor apply_norm(const Norm* n, const at::Tensor& x) const;
  at::Tensor attention(const at::Tensor& x, const BlockContext& ctx, ActivationTap* tap) const;
  // qwen3_next linear_attention layers (Gated DeltaNet).
  at::Tensor attention_linear(const at::Tensor& x, const BlockContext& ctx,
                              ActivationTap* tap) const;
  at::Tensor attention_mla(const at::Tensor& x, const BlockContext& ctx, ActivationTap* tap) const;
  at::Tensor attend(at::Tensor q, at::Tensor k, const at::Tensor& v, const BlockContext& ctx,
                    double scaling) const;
  at::Tensor mlp(const at::Tensor& x, ActivationTap* tap) const;
  at::Tensor dense_mlp(const at::Tensor& x, const std::string& gate, const std::string& up,
                       const std::string& down, ActivationTap* tap) const;
  // A (gated) MLP's down-projection input: act(g x)·(u x), or act(u x) without g. The one code
  // for dense MLPs, shared and routed experts, and their replay.
  at::Tensor mlp_hidden(const Linear* g, const Linear& u, const at::Tensor& x,
                        ActivationTap* tap) const;
  at::Tensor moe(const at::Tensor& x, ActivationTap* tap) const;
  at::Tensor routed_experts(const at::Tensor& flat, const at::Tensor& experts,
                            const at::Tensor& weights_k, ActivationTap* tap) const;
  void load_tensors(const io::ModelWeights& w);
  // Rotary tables of width `dim` for ctx, cached for make_context positions (the AWQ search runs
  // the same shapes hundreds of times; building them reads the device and copies to it).
  layers::Rotary rotary_for(const BlockContext& ctx, int64_t dim) const;

  const ArchSpec* spec_;
  io::ModelConfig cfg_;
  int64_t index_;
  std::string prefix_;  // "model.layers.3"
  at::Device device_;
  at::ScalarType dtype_;
  Activation act_;
  ResidualStyle residual_;
  bool sliding_ = false;
  bool use_rope_ = true;  // false on NoPE layers (smollm3/llama4 no_rope_layers[i] == 0)
  std::string layer_type_;
  int64_t attention_chunk_ = 0;  // > 0 on chunked-attention layers (llama4 attention_chunk_size)
  bool moe_ = false;
  int64_t n_experts_ = 0;
  std::map<std::string, Linear> linears_;  // by full prefix
  std::map<std::string, Norm> norms_;      // by full prefix
  std::map<std::string, at::Tensor> extras_;
  mutable std::map<std::array<int64_t, 3>, layers::Rotary> rotary_cache_;  // (B, T, dim)
};

// Activation kind named by config.json's hidden_act (gelu_pytorch_tanh, gelu_new, silu …).
Activation activation_from_config(const std::string& hidden_act, Activation fallback);

}  // namespace sq::rank
