// Quantizing one decoder block in place: AWQ (AutoAWQ semantics, REFERENCE.md §1) and GPTQ
// (true-sequential, REFERENCE.md §2). The per-rank worker calls these block after block.
//
// CONTRACT
//   Inputs: a Block on its device (weights are modified in place: AWQ scales + clips norms and
//   linears; both leave every quantized linear holding its fake-quantized weight), the block's
//   calibration input x [n, T, H] on the block's device, and `mask` [n, T] bool (real tokens;
//   undefined = no padding).
//   Output: the canonical QuantizedLinear of every quantized linear (solvers/quant_grid.h), a
//   report line per linear, and the next block's input [n, T, H]:
//     propagate fp    — the block's full-precision output computed before any change (AWQ's
//                       default, AutoAWQ/llm-awq semantics);
//     propagate quant — the quantized block's output (GPTQ's default; for AWQ one more forward
//                       after the block is scaled, clipped and quantized).
//   Linears for which keep_fp(name) is true are neither scaled nor quantized (AWQ skips a
//   scaling group that contains one). Forward passes run in micro-batches of `micro_batch`
//   samples so activation memory stays bounded.
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "io/model/model_config.h"
#include "io/model/model_weights.h"
#include "rank/model/block.h"
#include "rank/transport/reduce.h"
#include "solvers/awq.h"
#include "solvers/gptq.h"
#include "solvers/quant_grid.h"

namespace sq::rank {

using KeepFp = std::function<bool(const std::string& linear)>;

// Where each solved linear's canonical tensors wait for the export (the BlockWorker picks;
// tests that compare solver outputs keep kFull):
//   kFull        — as the solver returned them (codes int32, dequant set), on the device;
//   kCompact     — dequant dropped once the block's linear holds it, codes as uint8 (bits ≤ 8:
//                  the same values), still on the device;
//   kCompactHost — kCompact, then moved to host memory (a block whose codes would crowd the
//                  device: DeepSeek-V3's MoE blocks hold 11 G quantized weights).
// export_block() packs any of them to the same bytes.
enum class ResultStore { kFull, kCompact, kCompactHost };
void store_result(solvers::QuantizedLinear& q, ResultStore where);

// A scaling group's trial weights above this many bytes are made member by member.
constexpr uint64_t kAwqTrialBytes = uint64_t{2} << 30;

// How the routed experts' one-linear groups (up_e → down_e) are searched: kAuto batches them
// on a GPU (solvers/awq_batched.h; the per-expert path there uses the same Gram loss) unless
// --iter refinement or --parallel data needs the per-expert path, and searches them one by one
// on the CPU (direct forwards, the reference); the others force one way (tests).
enum class ExpertSearch { kAuto, kPerExpert, kBatched };

struct AwqSettings {
  solvers::QuantScheme scheme;
  bool duo_scaling = true;
  bool clip = true;
  int n_grid = 20;
  int64_t clip_tokens = 512;  // clip search tokens (stride sampled); 0 = every token
  bool clip_asym = false;     // lower and upper clip bounds searched apart (--clip-asym)
  // --awq-rounding gptq: each linear's scaled, clipped weight is rounded by the GPTQ solve
  // (solvers/gptq.h) against the Hessian of its scaled captured inputs instead of by RTN; linears
  // that share an input share the Hessian. act_order is never set (AWQ GEMM has no g_idx).
  bool gptq_rounding = false;
  solvers::GptqOptions gptq;
  solvers::AwqRefine refine;  // --iter / --search-step rounds of the scale search
  double salient_quota = -1;  // ≥ 0: report each linear's salient columns (--dump-salient)
  bool propagate_fp = true;   // false: the next block sees this block's quantized output
  int64_t micro_batch = 8;
  // Bytes of a scaling group's trial weights (all members, block dtype) made at once per grid
  // point; a larger group makes each member's trial weight when the forward applies it (same
  // losses, bit for bit). 0 = kAwqTrialBytes.
  uint64_t trial_budget = 0;
  ExpertSearch expert_search = ExpertSearch::kAuto;
  ResultStore results = ResultStore::kFull;
};

enum class MoePasses { kReplay, kForward };

struct GptqSettings {
  solvers::QuantScheme scheme{8, 128, false};
  solvers::GptqOptions gptq;
  bool propagate_fp = false;
  int64_t micro_batch = 8;
  double salient_quota = -1;  // ≥ 0: report each linear's salient columns (--dump-salient)
  // Bytes of Hessian sums (float64, in² per shared-input set) one forward may fill; a step
  // whose sets need more (an MoE block's experts) captures and solves its sets in passes of at
  // most this much (at least one set each), in set order. 0 = a quarter of the device's memory.
  // Passes change no result: a set's sums do not depend on which other sets share its pass.
  // With a Reducer every rank uses the smallest budget of all ranks (same passes everywhere).
  uint64_t hessian_budget = 0;
  // Steps whose linears are all the MoE's own (Block::moe_linears: the experts' and the shared
  // expert's gate/up, then down): kReplay records the MoE input and the routing in the first
  // such step's first forward and feeds the Hessians of every later pass of the MoE steps from
  // them (MoeRecorder: only the wanted experts run, no attention); kForward runs the block
  // forward for every pass (the reference). Same sums bit for bit, so the same results; the
  // record costs one more copy of the block input's size (in host memory on a GPU when that is
  // over a quarter of the Hessian budget).
  MoePasses moe_passes = MoePasses::kReplay;
  ResultStore results = ResultStore::kFull;
};

struct LinearReport {
  std::string name;
  double error = 0;  // solver's error (see SolveStats::error)
  double seconds = 0;
  solvers::SolveStats stats;
  std::string note;              // e.g. the chosen AWQ α
  std::vector<int64_t> salient;  // --dump-salient: solvers::salient_columns of its input
};

struct BlockQuantResult {
  // Seconds per phase of this block (device-synchronised at phase ends), e.g. "awq search".
  std::map<std::string, double> phase_seconds;
  std::map<std::string, solvers::QuantizedLinear> quantized;  // by full linear prefix
  std::vector<LinearReport> reports;
  std::vector<std::string> notes;  // skipped groups etc.
  at::Tensor next_input;           // [n, T, H]
};

// Every quantizable linear is quantized, whether or not calibration tokens reached it. A linear
// that no token reached (an MoE expert the router never picked for any calibration token, on any
// rank) is rounded by RTN and its report carries exactly this note, which the log and the run
// summary count per block (uncalibrated_linears). AWQ: such an expert still takes the scales of
// the group it shares with the other experts (the post-attention norm → every expert's gate/up),
// its own up → down group is left unscaled. GPTQ: RTN, not a Hessian pooled from other experts
// — see block_gptq.cpp. A linear reached by even one token goes through the normal solve.
inline constexpr char kNoTokensNote[] = "no calibration tokens reached it: RTN";

// Names of the reported linears of `r` quantized without calibration tokens, in report order.
inline std::vector<std::string> uncalibrated_linears(const BlockQuantResult& r) {
  std::vector<std::string> out;
  for (const auto& l : r.reports)
    if (l.note == kNoTokensNote) out.push_back(l.name);
  return out;
}

// Runs the block over x in micro-batches; `tap` (optional) sees every linear input.
// Capture taps with per-batch state get begin-batch calls through `on_batch`. When the tap
// stops a forward early (ActivationTap::done()), the result is an undefined tensor.
at::Tensor run_block(const Block& block, const at::Tensor& x, const at::Tensor& mask,
                     int64_t micro_batch, ActivationTap* tap = nullptr,
                     const std::function<void(const at::Tensor& batch_mask)>& on_batch = {});

// The quantizable linears of the block (arch block_linears order), minus kept ones.
std::vector<std::string> quantizable_linears(const Block& block, const io::ModelConfig& cfg,
                                             const io::ModelWeights& w, const KeepFp& keep_fp);

// `reducer` (--parallel data): x holds this rank's samples only; the x statistics, the grid
// losses and the clip errors are summed over the ranks with their counts, so every rank picks the
// same scales and clips and gets the same QuantizedLinear (up to reduction-order rounding vs one
// process); next_input is the FP output of this rank's samples. nullptr (or one rank) = one
// process, unchanged results.
BlockQuantResult awq_quantize_block(Block& block, const at::Tensor& x, const at::Tensor& mask,
                                    const io::ModelConfig& cfg, const io::ModelWeights& w,
                                    const AwqSettings& settings, const KeepFp& keep_fp,
                                    const Reducer* reducer = nullptr);

// `reducer` (--parallel data): x holds this rank's samples only; every Hessian sum and token
// count is summed over the ranks before solving, so every rank solves the same problem and gets
// the same QuantizedLinear. nullptr = one process (unchanged results).
BlockQuantResult gptq_quantize_block(Block& block, const at::Tensor& x, const at::Tensor& mask,
                                     const io::ModelConfig& cfg, const io::ModelWeights& w,
                                     const GptqSettings& settings, const KeepFp& keep_fp,
                                     const Reducer* reducer = nullptr);

}  // namespace sq::rank
