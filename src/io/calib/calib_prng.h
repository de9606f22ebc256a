// The calibration PRNG: SplitMix64 (Steele, Lea, Flood 2014) plus unbiased bounded integers by
// rejection and a Fisher–Yates shuffle. Everything is defined here on uint64_t arithmetic, so the
// same seed gives the same samples on every machine and compiler (unlike
// std::uniform_int_distribution, whose algorithm is implementation-defined, or torch's
// generator, which differs between versions and devices).
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace sq::io {

class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}

  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }

  // Uniform in [0, n), n >= 1: draws above the largest multiple of n are rejected (no modulo
  // bias).
  uint64_t below(uint64_t n) {
    const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x = next();
    while (x >= limit) x = next();
    return x % n;
  }

  // Independent stream `index` of `seed`: source i of a mixture draws from stream(seed, i).
  static SplitMix64 stream(uint64_t seed, uint64_t index) {
    SplitMix64 mixer(seed ^ (0xD1B54A32D192ED03ull * (index + 1)));
    return SplitMix64(mixer.next());
  }

 private:
  uint64_t state_;
};

// Fisher–Yates, from the last element down.
template <typename T>
void shuffle_in_place(std::vector<T>& v, SplitMix64& rng) {
  for (size_t i = v.size(); i > 1; --i) {
    const size_t j = static_cast<size_t>(rng.below(i));
    std::swap(v[i - 1], v[j]);
  }
}

}  // namespace sq::io
