// The synthetic-weight generator. Counter-based so that each element depends only on (seed,
// stream, index): threads take fixed chunks and the bytes never depend on the thread count.
// Box–Muller in float is plenty for random benchmark weights and runs at ~10^8 values/s/core.
#include <cmath>
#include <cstring>
#include <thread>
#include <vector>

#include "common/check.h"
#include "rank/synth.h"

namespace sq::rank {
namespace {

inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

inline uint16_t to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return static_cast<uint16_t>((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

inline uint16_t to_fp16(float f) {
  at::Half h(f);  // round-to-nearest-even conversion
  return h.x;
}

// Two normals from pair index p.
inline void normal_pair(uint64_t key, uint64_t p, float stddev, float& a, float& b) {
  const uint64_t h = splitmix64(key ^ splitmix64(p));
  const float u1 = (static_cast<float>(h >> 40) + 1.0f) * (1.0f / 16777216.0f);  // (0, 1]
  const float u2 = static_cast<float>((h >> 8) & 0xFFFFFF) * (1.0f / 16777216.0f);
  const float r = std::sqrt(-2.0f * std::log(u1)) * stddev;
  const float th = 6.2831853071795864f * u2;
  a = r * std::cos(th);
  b = r * std::sin(th);
}

template <typename Out, typename Conv>
void fill_range(Out* dst, int64_t n, int64_t p0, int64_t p1, uint64_t key, float stddev,
                Conv conv) {
  for (int64_t p = p0; p < p1; ++p) {
    float a, b;
    normal_pair(key, static_cast<uint64_t>(p), stddev, a, b);
    const int64_t i = 2 * p;
    dst[i] = conv(a);
    if (i + 1 < n) dst[i + 1] = conv(b);
  }
}

}  // namespace

void fill_normal(at::Tensor& t, uint64_t seed, uint64_t stream, float stddev, int threads) {
  SQ_CHECK(t.device().is_cpu() && t.is_contiguous(),
           "fill_normal: expected a contiguous CPU tensor");
  const int64_t n = t.numel(), pairs = (n + 1) / 2;
  const uint64_t key = splitmix64(seed ^ splitmix64(stream));
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int64_t per = std::max<int64_t>(1 << 16, (pairs + threads - 1) / threads);
  void* base = t.data_ptr();
  const auto st = t.scalar_type();
  auto work = [&](int64_t p0, int64_t p1) {
    if (st == at::kBFloat16)
      fill_range(static_cast<uint16_t*>(base), n, p0, p1, key, stddev, to_bf16);
    else if (st == at::kHalf)
      fill_range(static_cast<uint16_t*>(base), n, p0, p1, key, stddev, to_fp16);
    else
      fill_range(static_cast<float*>(base), n, p0, p1, key, stddev, [](float f) { return f; });
  };
  SQ_REQUIRE(st == at::kBFloat16 || st == at::kHalf || st == at::kFloat,
             "synth: unsupported dtype " << c10::toString(st) << " (expected bf16, fp16 or fp32)");
  std::vector<std::thread> pool;
  for (int64_t p0 = per; p0 < pairs; p0 += per)
    pool.emplace_back(work, p0, std::min(pairs, p0 + per));
  work(0, std::min(pairs, per));
  for (auto& th : pool) th.join();
}

}  // namespace sq::rank
