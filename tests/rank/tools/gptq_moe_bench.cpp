// GPTQ on one MoE block whose expert Hessians exceed the budget (several passes per step), timed
// with the passes after each step's first replayed from its recorded MoE input and routing
// (MoePasses::kReplay) and rerun as block forwards (kForward, the reference), and whether both
// gave the same codes, scales, zeros and next input (they must: same Hessian sums).
//   sq_gptq_moe_bench MODEL_DIR [samples=8] [seq=128] [budget_mib=0 (auto)] [block=first MoE]
//                     [micro_batch=8]
// Input: seeded normal activations. Device: CUDA 0 (bf16 block) when present, else CPU (fp32).
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "io/model/model_config.h"
#include "io/model/model_weights.h"
#include "rank/model/arch_table.h"
#include "rank/model/block.h"
#include "rank/quant/block_quant.h"
#include "rank/worker/oom.h"

using namespace sq;

namespace {

bool same(const rank::BlockQuantResult& a, const rank::BlockQuantResult& b) {
  if (a.quantized.size() != b.quantized.size()) return false;
  for (const auto& [name, qa] : a.quantized) {
    auto it = b.quantized.find(name);
    if (it == b.quantized.end()) return false;
    const auto& qb = it->second;
    if (!at::equal(qa.codes, qb.codes) || !at::equal(qa.scales, qb.scales) ||
        !at::equal(qa.zeros, qb.zeros))
      return false;
  }
  return at::equal(a.next_input, b.next_input);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: sq_gptq_moe_bench MODEL_DIR [samples] [seq] [budget_mib] [block] "
                 "[micro_batch]\n");
    return 2;
  }
  const int64_t n = argc > 2 ? std::atoll(argv[2]) : 8, T = argc > 3 ? std::atoll(argv[3]) : 128;
  const uint64_t budget = argc > 4 ? std::strtoull(argv[4], nullptr, 10) << 20 : 0;
  int64_t bi = argc > 5 ? std::atoll(argv[5]) : -1;
  const int64_t mb = argc > 6 ? std::atoll(argv[6]) : 8;
  const at::Device dev = at::hasCUDA() ? at::Device(at::kCUDA, 0) : at::Device(at::kCPU);
  const at::ScalarType dt = dev.is_cuda() ? at::kBFloat16 : at::kFloat;
  auto cfg = io::load_model_config(argv[1]);
  io::ModelWeights w(argv[1]);
  for (int64_t i = 0; bi < 0 && i < cfg.num_hidden_layers; ++i)
    if (rank::block_is_moe(cfg, i)) bi = i;
  if (bi < 0) {
    std::fprintf(stderr, "%s: no MoE block\n", argv[1]);
    return 2;
  }
  at::manual_seed(0);
  const at::Tensor x =
      at::randn({n, T, cfg.hidden_size}, at::TensorOptions().device(dev).dtype(dt));
  const rank::KeepFp keep_none = [](const std::string&) { return false; };
  std::printf("block %ld, %ld x %ld tokens, budget %s, micro-batch %ld, %s\n", long(bi), long(n),
              long(T), budget ? (std::to_string(budget >> 20) + " MiB").c_str() : "auto", long(mb),
              dev.is_cuda() ? "cuda bf16" : "cpu fp32");
  rank::BlockQuantResult r[2];
  for (int k = 0; k < 2; ++k) {
    rank::GptqSettings st;
    st.scheme.bits = 4;
    st.scheme.group_size = 128;
    st.micro_batch = mb;
    st.hessian_budget = budget;
    // As the worker does for a block of hundreds of experts on a GPU: results in host memory.
    st.results = dev.is_cuda() ? rank::ResultStore::kCompactHost : rank::ResultStore::kCompact;
    st.moe_passes = k ? rank::MoePasses::kReplay : rank::MoePasses::kForward;
    rank::Block b(w, cfg, bi, dev, dt);
    rank::synchronize_device(dev);
    const auto t0 = std::chrono::steady_clock::now();
    r[k] = rank::gptq_quantize_block(b, x, at::Tensor(), cfg, w, st, keep_none);
    rank::synchronize_device(dev);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("%s: %.2f s\n", k ? "replay " : "forward", s);
    for (const auto& [phase, sec] : r[k].phase_seconds)
      std::printf("  %-28s %8.2f s\n", phase.c_str(), sec);
  }
  for (const auto& note : r[1].notes)
    if (note.find(" passes ") != std::string::npos) std::printf("%s\n", note.c_str());
  const bool ok = same(r[0], r[1]);
  std::printf("identical codes/scales/zeros/next input: %s\n", ok ? "yes" : "NO");
  return ok ? 0 : 1;
}
