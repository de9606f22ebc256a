// Where a block's GPU time goes: times (device-synchronised, averaged) one block's full
// forward, the AWQ inspect scopes, the bare GEMMs of the same shapes and the AWQ trial weight,
// and prints the achieved TFLOP/s against the GEMM floor.
//   sq_forward_bench MODEL_DIR [batch=32] [seq=512] [iters=5] [block=0]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>

#if __has_include(<torch/version.h>)
#include <torch/version.h>
#endif

#include "io/model/model_config.h"
#include "io/model/model_weights.h"
#include "rank/device/device.h"
#include "rank/model/block.h"
#include "solvers/awq.h"

using namespace sq;

namespace {

// The first call of each row is timed apart: in a fresh process it carries the one-time GPU
// start-up (cuBLAS handles, kernel module loading, allocator growth) that the first block of a
// real run pays (bench/NOTES.md, "block 0 vs steady").
double g_first_ms = 0;

double time_ms(const at::Device& dev, int iters, const std::function<void()>& fn) {
  rank::synchronize_device(dev);
  const auto t0 = std::chrono::steady_clock::now();
  fn();  // warm-up (cuBLAS handles, allocator)
  rank::synchronize_device(dev);
  g_first_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  const auto t = std::chrono::steady_clock::now();
  for (int i = 0; i < iters; ++i) fn();
  rank::synchronize_device(dev);
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count() /
         iters;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: sq_forward_bench MODEL_DIR [batch] [seq] [iters] [block]\n");
    return 2;
  }
  const int64_t B = argc > 2 ? std::atoll(argv[2]) : 32, T = argc > 3 ? std::atoll(argv[3]) : 512;
  const int iters = argc > 4 ? std::atoi(argv[4]) : 5;
  const int64_t bi = argc > 5 ? std::atoll(argv[5]) : 0;
  const at::Device dev = at::hasCUDA() ? at::Device(at::kCUDA, 0) : at::Device(at::kCPU);
  const at::ScalarType dt = dev.is_cuda() ? at::kBFloat16 : at::kFloat;
  auto cfg = io::load_model_config(argv[1]);
  io::ModelWeights w(argv[1]);
  rank::Block blk(w, cfg, bi, dev, dt);
  const int64_t H = cfg.hidden_size, I = cfg.intermediate_size;
  const double tokens = double(B) * T;
  at::Tensor x = at::randn({B, T, H}, at::TensorOptions().device(dev).dtype(dt));
  at::Tensor xi = at::randn({B, T, I}, at::TensorOptions().device(dev).dtype(dt));
  auto ctx = rank::make_context(B, T, dev);
  const std::string p = blk.prefix() + ".";
  auto& gate = blk.linear(p + "mlp.gate_proj");
  auto& down = blk.linear(p + "mlp.down_proj");
  const solvers::QuantScheme scheme{4, 128, true};
  auto& wq = blk.linear(p + "self_attn.q_proj");
  auto& wk = blk.linear(p + "self_attn.k_proj");
  auto& wv = blk.linear(p + "self_attn.v_proj");
  auto& wo = blk.linear(p + "self_attn.o_proj");
  const int64_t nh = cfg.num_attention_heads, nkv = cfg.num_key_value_heads, hd = cfg.head_dim;
  at::Tensor qh = at::randn({B, nh, T, hd}, x.options()),
             kh = at::randn({B, nkv, T, hd}, x.options());
  at::Tensor cosr = at::randn({B, 1, T, hd}, x.options()),
             sinr = at::randn({B, 1, T, hd}, x.options());
  const double f_attn_gemm =
      2 * tokens * H *
      (wq.weight.size(0) + wk.weight.size(0) + wv.weight.size(0) + wo.weight.size(1));

  struct Row {
    const char* name;
    double flop;
    std::function<void()> fn;
  };
  const double f_mlp = 2 * tokens * 3 * H * I;
  const Row rows[] = {
    {"block forward", 0, [&] { blk.forward(x, ctx); }},
    {"scope attn", 0, [&] { blk.forward_scope("attn", x, ctx); }},
    {"scope mlp", f_mlp, [&] { blk.forward_scope("mlp", x, ctx); }},
    {"scope down_proj", 2 * tokens * H * I,
     [&] { blk.forward_scope(p + "mlp.down_proj", xi, ctx); }},
    {"GEMM x·gateᵀ (bf16)", 2 * tokens * H * I, [&] { at::linear(x, gate.weight); }},
    {"GEMM h·downᵀ (bf16)", 2 * tokens * H * I, [&] { at::linear(xi, down.weight); }},
    {"silu(g)·u", 0, [&] { at::silu(xi) * xi; }},
    {"attn GEMMs q,k,v,o", f_attn_gemm,
     [&] {
       at::linear(x, wq.weight);
       at::linear(x, wk.weight);
       at::linear(x, wv.weight);
       at::linear(x, wo.weight);
     }},
    {"rotary q+k (5 passes each)", 0,
     [&] {
       for (at::Tensor t : {qh, kh}) {
         auto x1 = t.narrow(-1, 0, hd / 2), x2 = t.narrow(-1, hd / 2, hd / 2);
         auto rot = at::cat({-x2, x1}, -1);
         (void)(t * cosr + rot * sinr);
       }
     }},
    {"repeat_kv k+v", 0,
     [&] {
       kh.repeat_interleave(nh / nkv, 1);
       kh.repeat_interleave(nh / nkv, 1);
     }},
#if defined(TORCH_VERSION_MAJOR) && \
    (TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 1))
    {"sdpa causal (kv repeated)", 0,
     [&] {
       auto kk = kh.repeat_interleave(nh / nkv, 1);
       at::scaled_dot_product_attention(qh, kk, kk, {}, 0.0, true);
     }},
#endif
#if defined(TORCH_VERSION_MAJOR) && \
    (TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 5))
    {"sdpa causal enable_gqa", 0,
     [&] { at::scaled_dot_product_attention(qh, kh, kh, {}, 0.0, true, c10::nullopt, true); }},
#endif
    {"o transpose+reshape copy", 0,
     [&] {
       qh.transpose(1, 2).reshape({B, T, -1});
     }},
    {"awq trial weight gate", 0,
     [&] {
       solvers::awq_trial_weight(gate.weight, at::ones({H}, x.options().dtype(at::kFloat)), scheme)
           .to(dt);
     }},
  };
  std::printf("device %s, block %lld, batch %lld x %lld tokens, %s\n", dev.str().c_str(),
              (long long)bi, (long long)B, (long long)T, c10::toString(dt));
  for (const auto& r : rows) {
    const double ms = time_ms(dev, iters, r.fn);
    if (r.flop > 0)
      std::printf("  %-26s %9.3f ms  %7.1f TFLOP/s  (first call %.1f ms)\n", r.name, ms,
                  r.flop / ms / 1e9, g_first_ms);
    else
      std::printf("  %-26s %9.3f ms  (first call %.1f ms)\n", r.name, ms, g_first_ms);
  }
  return 0;
}
