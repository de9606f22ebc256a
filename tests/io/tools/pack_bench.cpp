// Packing throughput (where the export time of a quantized block goes): packs one random
// [N, K] quantized linear per format and prints the seconds of each step.
//   sq_pack_bench [N K]   (default 8192 2048, a llama-1b gate/up projection)
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "io/format/pack.h"

using namespace sq::io;

namespace {
double since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}
}  // namespace

int main(int argc, char** argv) {
  const int64_t n = argc > 2 ? std::atoll(argv[1]) : 8192,
                k = argc > 2 ? std::atoll(argv[2]) : 2048;
  const int64_t g = 128;
  QuantLinear q;
  q.codes = at::randint(0, 16, {n, k}, at::kInt);
  q.zeros = at::randint(1, 16, {k / g, n}, at::kInt);
  q.scales = at::rand({k / g, n}).to(at::kHalf);
  q.g_idx = default_g_idx(k, g);
  q.scheme.bits = 4;
  q.scheme.group_size = g;
  for (auto f : {Format::kAwqGemm, Format::kGptqV1, Format::kGptqV2}) {
    auto t = std::chrono::steady_clock::now();
    PackedLinear p = pack(q, f);
    std::printf("pack %-10s [%lld x %lld]: %.3f s\n", format_name(f), (long long)n, (long long)k,
                since(t));
  }
  auto t = std::chrono::steady_clock::now();
  at::Tensor w = pack_bits(q.codes, 4, BitLayout::kStream);
  std::printf("pack_bits alone: %.3f s\n", since(t));
  t = std::chrono::steady_clock::now();
  w = pack_bits_vectorized(q.codes, 4, BitLayout::kStream);
  std::printf("pack_bits_vectorized on the CPU: %.3f s\n", since(t));
  t = std::chrono::steady_clock::now();
  at::Tensor perm = at::randperm(n, at::kLong);
  at::Tensor s = q.codes.t().index_select(1, perm);
  std::printf("index_select of the transposed codes: %.3f s\n", since(t));
  return w.numel() > 0 && s.numel() > 0 ? 0 : 1;
}
