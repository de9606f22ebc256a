// The synthetic-weight generator. Counter-based so that each element depends only on (seed,
// stream, index): threads take fixed chunks and the bytes never depend on the thread count.
// Box–Muller in float is plenty for random benchmark weights and runs at ~10^8 values/s/core.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <thread>
#include <vector>

#include "common/check.h"
#include "rank/synth/synth.h"

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

uint8_t encode_e4m3(float x) {
  if (std::isnan(x)) return 0x7F;
  const uint8_t sign = std::signbit(x) ? 0x80 : 0;
  const float a = std::min(std::fabs(x), 448.0f);
  int code;
  if (a < std::ldexp(1.0f, -6)) {
    // Subnormals are multiples of 2^-9; code 8 (rounded up from the top) is 2^-6, the first
    // normal, so the integer is the code either way.
    code = static_cast<int>(std::nearbyint(std::ldexp(a, 9)));
  } else {
    int ex;
    const float f = std::frexp(a, &ex);  // a = f · 2^ex, f in [0.5, 1)
    const int e = ex - 1;                // a = (2f) · 2^e, 2f in [1, 2)
    int m = static_cast<int>(std::nearbyint((2.0f * f - 1.0f) * 8.0f));  // exact: 2f has 24 bits
    int be = e + 7;
    if (m == 8) m = 0, ++be;
    code = (be << 3) | m;
  }
  return static_cast<uint8_t>(sign | std::min(code, 0x7E));  // 0x7E = 448, 0x7F is NaN
}

Fp8Blocks quantize_fp8_blocks(const at::Tensor& w, int64_t br, int64_t bc, int threads) {
  SQ_CHECK(w.dim() == 2 && w.scalar_type() == at::kFloat && w.is_contiguous() && br > 0 && bc > 0,
           "quantize_fp8_blocks: expected a contiguous float32 matrix, got " << w.sizes());
  const int64_t N = w.size(0), K = w.size(1), R = (N + br - 1) / br, C = (K + bc - 1) / bc;
  Fp8Blocks out{at::empty({N, K}, at::kByte), at::empty({R, C}, at::kFloat)};
  const float* src = w.data_ptr<float>();
  uint8_t* dst = out.bytes.data_ptr<uint8_t>();
  float* sc = out.scale_inv.data_ptr<float>();
  // Row blocks are independent: threads take every threads-th one (same bytes for any count).
  auto rows = [&](int64_t first, int64_t step) {
    for (int64_t r = first; r < R; r += step)
      for (int64_t c = 0; c < C; ++c) {
        const int64_t i1 = std::min(N, (r + 1) * br), j1 = std::min(K, (c + 1) * bc);
        float amax = 0;
        for (int64_t i = r * br; i < i1; ++i)
          for (int64_t j = c * bc; j < j1; ++j) amax = std::max(amax, std::fabs(src[i * K + j]));
        const float s = amax > 0 ? amax / 448.0f : 1.0f;
        sc[r * C + c] = s;
        for (int64_t i = r * br; i < i1; ++i)
          for (int64_t j = c * bc; j < j1; ++j) dst[i * K + j] = encode_e4m3(src[i * K + j] / s);
      }
  };
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int n = static_cast<int>(std::min<int64_t>(threads, R));
  std::vector<std::thread> pool;
  for (int k = 1; k < n; ++k) pool.emplace_back(rows, k, n);
  rows(0, std::max(n, 1));
  for (auto& th : pool) th.join();
  return out;
}

}  // namespace sq::rank
