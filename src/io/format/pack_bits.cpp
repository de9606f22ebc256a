// Bit-level packing shared by every format, plus the group-index helpers.
//
// Plain loops over rows rather than tensor ops: the bit stream of the 3-bit GPTQ layout straddles
// words, which a 64-bit accumulator handles directly, and the loops are exact and fast enough
// (tens of millions of values per second per core).
#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>

#include "common/check.h"
#include "io/format/pack.h"

namespace sq::io {
namespace {

void check_bits(int bits) {
  SQ_CHECK(bits >= 1 && bits <= 8, "bit width " << bits << " outside 1..8");
}

int64_t word_count(int64_t length, int bits, BitLayout layout) {
  if (layout == BitLayout::kStream) return length * bits / 32;
  const int64_t per = 32 / bits;
  return (length + per - 1) / per;
}

}  // namespace

at::Tensor pack_bits_reference(const at::Tensor& values_in, int bits, BitLayout layout) {
  check_bits(bits);
  const at::Tensor values = values_in.cpu();
  SQ_CHECK(values.dim() == 2, "pack_bits expects [rows, length], got " << values.sizes());
  const int64_t rows = values.size(0), length = values.size(1);
  if (layout == BitLayout::kStream)
    SQ_REQUIRE(length * bits % 32 == 0, "cannot pack " << length << " values of " << bits
                                                       << " bits into whole 32-bit words ("
                                                       << length << " × " << bits
                                                       << " is not a multiple of 32)");
  const at::Tensor v = values.to(at::kInt).contiguous();
  const int64_t words = word_count(length, bits, layout);
  at::Tensor out = at::zeros({rows, words}, at::kInt);
  const int32_t* src = v.data_ptr<int32_t>();
  auto* dst = reinterpret_cast<uint32_t*>(out.data_ptr<int32_t>());
  const int32_t maxq = (1 << bits) - 1;
  std::atomic<int64_t> bad{-1};
  at::parallel_for(0, rows, 64, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int32_t* in = src + r * length;
      uint32_t* o = dst + r * words;
      if (layout == BitLayout::kStream) {
        uint64_t acc = 0;
        int nbits = 0;
        int64_t w = 0;
        for (int64_t i = 0; i < length; ++i) {
          if (in[i] < 0 || in[i] > maxq) bad = r * length + i;
          acc |= static_cast<uint64_t>(in[i] & maxq) << nbits;
          nbits += bits;
          if (nbits >= 32) {
            o[w++] = static_cast<uint32_t>(acc);
            acc >>= 32;
            nbits -= 32;
          }
        }
      } else {
        const int per = 32 / bits;
        for (int64_t i = 0; i < length; ++i) {
          if (in[i] < 0 || in[i] > maxq) bad = r * length + i;
          o[i / per] |= static_cast<uint32_t>(in[i] & maxq) << (bits * (i % per));
        }
      }
    }
  });
  if (bad >= 0)
    SQ_THROW(InternalError, "pack_bits: value " << src[bad.load()] << " at row "
                                                << bad.load() / length << ", column "
                                                << bad.load() % length << " outside 0.." << maxq
                                                << " for " << bits << "-bit codes");
  return out;
}

at::Tensor pack_bits(const at::Tensor& values, int bits, BitLayout layout) {
  check_bits(bits);
  // The loop is faster on a CPU (no int64 temporaries); the tensor path is for GPUs, where the
  // loop would first copy the codes to the host.
  if (!values.is_cuda() || 32 % bits != 0 || values.numel() == 0)
    return pack_bits_reference(values, bits, layout);
  return pack_bits_vectorized(values, bits, layout);
}

at::Tensor pack_bits_vectorized(const at::Tensor& values, int bits, BitLayout layout) {
  check_bits(bits);
  SQ_REQUIRE(32 % bits == 0, "pack_bits_vectorized: " << bits << " bits do not divide 32");
  SQ_CHECK(values.dim() == 2, "pack_bits expects [rows, length], got " << values.sizes());
  const int64_t rows = values.size(0), length = values.size(1);
  // b | 32: both layouts put value i of a row at bits [b·(i mod per), …) of word i / per.
  const int per = 32 / bits;
  const int32_t maxq = (1 << bits) - 1;
  at::Tensor v = values.to(at::kLong);
  const at::Tensor bad = v.lt(0).logical_or(v.gt(maxq));
  if (bad.any().item<bool>()) {
    const int64_t at_flat = at::nonzero(bad.reshape({-1}))[0].item<int64_t>();
    SQ_THROW(InternalError, "pack_bits: value " << v.reshape({-1})[at_flat].item<int64_t>()
                                                << " at row " << at_flat / length << ", column "
                                                << at_flat % length << " outside 0.." << maxq
                                                << " for " << bits << "-bit codes");
  }
  if (layout == BitLayout::kStream)
    SQ_REQUIRE(length * bits % 32 == 0, "cannot pack " << length << " values of " << bits
                                                       << " bits into whole 32-bit words ("
                                                       << length << " × " << bits
                                                       << " is not a multiple of 32)");
  const int64_t words = (length + per - 1) / per;
  if (words * per != length) v = at::constant_pad_nd(v, {0, words * per - length}, 0);
  const at::Tensor shifts =
      at::arange(per, at::TensorOptions().dtype(at::kLong).device(v.device())) * bits;
  // Disjoint bit fields: their sum is their OR, below 2^32; fold it into int32's range.
  at::Tensor packed = at::bitwise_left_shift(v.view({rows, words, per}), shifts).sum(-1);
  packed = packed - packed.ge(int64_t{1} << 31).to(at::kLong) * (int64_t{1} << 32);
  return packed.to(at::kInt);
}

at::Tensor unpack_bits(const at::Tensor& words, int bits, int64_t length, BitLayout layout) {
  check_bits(bits);
  SQ_CHECK(words.dim() == 2, "unpack_bits expects [rows, words], got " << words.sizes());
  SQ_REQUIRE(words.scalar_type() == at::kInt,
             "packed tensor must be int32, got " << c10::toString(words.scalar_type()));
  const int64_t rows = words.size(0), nwords = words.size(1);
  const int64_t needed =
      layout == BitLayout::kStream ? (length * bits + 31) / 32 : word_count(length, bits, layout);
  SQ_REQUIRE(nwords >= needed, "packed tensor has " << nwords << " words per row, " << length
                                                    << " values of " << bits << " bits need "
                                                    << needed);
  const at::Tensor w = words.contiguous();
  at::Tensor out = at::empty({rows, length}, at::kInt);
  const auto* src = reinterpret_cast<const uint32_t*>(w.data_ptr<int32_t>());
  int32_t* dst = out.data_ptr<int32_t>();
  const uint64_t mask = (1u << bits) - 1;
  at::parallel_for(0, rows, 64, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const uint32_t* in = src + r * nwords;
      int32_t* o = dst + r * length;
      if (layout == BitLayout::kStream) {
        uint64_t acc = 0;
        int nbits = 0;
        int64_t wi = 0;
        for (int64_t i = 0; i < length; ++i) {
          if (nbits < bits) {
            acc |= static_cast<uint64_t>(in[wi++]) << nbits;
            nbits += 32;
          }
          o[i] = static_cast<int32_t>(acc & mask);
          acc >>= bits;
          nbits -= bits;
        }
      } else {
        const int per = 32 / bits;
        for (int64_t i = 0; i < length; ++i)
          o[i] = static_cast<int32_t>((in[i / per] >> (bits * (i % per))) & mask);
      }
    }
  });
  return out;
}

int64_t num_groups(int64_t in_features, int64_t group_size) {
  const int64_t g = group_size_for(group_size, in_features);
  return g == 0 ? 0 : (in_features + g - 1) / g;
}

at::Tensor default_g_idx(int64_t in_features, int64_t group_size) {
  const int64_t g = group_size_for(group_size, in_features);
  at::Tensor out = at::empty({in_features}, at::kInt);
  int32_t* o = out.data_ptr<int32_t>();
  for (int64_t k = 0; k < in_features; ++k) o[k] = static_cast<int32_t>(k / g);
  return out;
}

bool is_trivial_g_idx(const at::Tensor& g_idx, int64_t group_size) {
  return at::equal(g_idx.to(at::kInt).cpu(), default_g_idx(g_idx.numel(), group_size));
}

}  // namespace sq::io
