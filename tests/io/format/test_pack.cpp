// Packer round trips on random data, layout facts derived by hand from REFERENCE.md §3.1-3.3,
// and the errors for shapes a format cannot hold.
#include <gtest/gtest.h>

#include <random>

#include "common/errors.h"
#include "io/format/format_registry.h"
#include "io/format/pack.h"

using namespace sq;
using io::Format;

namespace {

// A random canonical linear. zero_lo = 1 keeps zeros storable in GPTQ v1.
io::QuantLinear random_linear(int64_t n, int64_t k, int bits, int64_t group, bool act_order,
                              int zero_lo, uint64_t seed) {
  at::manual_seed(seed);
  const int64_t maxq = (int64_t{1} << bits) - 1;
  const int64_t groups = io::num_groups(k, group);
  io::QuantLinear q;
  q.scheme.bits = bits;
  q.scheme.group_size = group;
  q.codes = at::randint(0, maxq + 1, {n, k}, at::kInt);
  q.zeros = at::randint(zero_lo, maxq + 1, {groups, n}, at::kInt);
  q.scales = (at::rand({groups, n}) * 0.1 + 0.001).to(at::kHalf).to(at::kFloat);
  q.g_idx = io::default_g_idx(k, group);
  if (act_order) q.g_idx = q.g_idx.index_select(0, at::randperm(k, at::kLong)).contiguous();
  return q;
}

// W[n,k] = (codes[n,k] - zeros[g_idx[k],n]) * scales[g_idx[k],n], written as a plain loop.
at::Tensor reference_dequant(const io::QuantLinear& q) {
  const int64_t n = q.codes.size(0), k = q.codes.size(1);
  at::Tensor out = at::empty({n, k}, at::kFloat);
  auto c = q.codes.accessor<int32_t, 2>();
  auto z = q.zeros.accessor<int32_t, 2>();
  at::Tensor s32 = q.scales.to(at::kFloat);
  auto s = s32.accessor<float, 2>();
  auto g = q.g_idx.accessor<int32_t, 1>();
  auto o = out.accessor<float, 2>();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < k; ++j) o[i][j] = static_cast<float>(c[i][j] - z[g[j]][i]) * s[g[j]][i];
  return out;
}

void expect_same(const io::QuantLinear& a, const io::QuantLinear& b, const std::string& what) {
  EXPECT_TRUE(at::equal(a.codes, b.codes)) << what << ": codes";
  EXPECT_TRUE(at::equal(a.zeros, b.zeros)) << what << ": zeros";
  EXPECT_TRUE(at::equal(a.g_idx, b.g_idx)) << what << ": g_idx";
  EXPECT_TRUE(at::equal(a.scales.to(at::kHalf), b.scales.to(at::kHalf))) << what << ": scales";
}

template <typename Fn>
std::string input_error_message(Fn&& fn) {
  try {
    fn();
  } catch (const InputError& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("WRONG EXCEPTION: ") + e.what();
  }
  return "NO EXCEPTION";
}

}  // namespace

TEST(PackBits, StreamLayoutIsLsbFirstAcrossWords) {
  // 3-bit: 32 values in 3 words; value 3 everywhere gives the repeating pattern 1,1,0 over the
  // 96-bit stream, worked out by hand from REFERENCE.md §3.2.
  at::Tensor v = at::full({1, 32}, 3, at::kInt);
  at::Tensor w = io::pack_bits(v, 3, io::BitLayout::kStream);
  ASSERT_EQ(w.sizes(), (at::IntArrayRef{1, 3}));
  EXPECT_EQ(static_cast<uint32_t>(w[0][0].item<int32_t>()), 0xDB6DB6DBu);
  EXPECT_EQ(static_cast<uint32_t>(w[0][1].item<int32_t>()), 0xB6DB6DB6u);
  EXPECT_EQ(static_cast<uint32_t>(w[0][2].item<int32_t>()), 0x6DB6DB6Du);
  // A single 1 at position 10 (3-bit) straddles words 0/1: bits 30-31 of word 0 get its low bits.
  at::Tensor one = at::zeros({1, 32}, at::kInt);
  one[0][10] = 5;  // 0b101: bit0 -> word0 bit 30, bit2 -> word1 bit 0
  at::Tensor w1 = io::pack_bits(one, 3, io::BitLayout::kStream);
  EXPECT_EQ(static_cast<uint32_t>(w1[0][0].item<int32_t>()), 1u << 30);
  EXPECT_EQ(static_cast<uint32_t>(w1[0][1].item<int32_t>()), 1u);
  EXPECT_TRUE(at::equal(io::unpack_bits(w1, 3, 32, io::BitLayout::kStream), one));
}

TEST(PackBits, RoundTripsEveryWidthAndLayout) {
  for (int bits = 1; bits <= 8; ++bits)
    for (auto layout : {io::BitLayout::kStream, io::BitLayout::kWordAligned}) {
      const int64_t len = layout == io::BitLayout::kStream ? 32 * 3 : 37;
      at::Tensor v = at::randint(0, 1 << bits, {5, len}, at::kInt);
      at::Tensor w = io::pack_bits(v, bits, layout);
      EXPECT_TRUE(at::equal(io::unpack_bits(w, bits, len, layout), v)) << bits << " bits";
    }
}

TEST(PackBits, OutOfRangeValueIsInternalError) {
  at::Tensor v = at::zeros({2, 8}, at::kInt);
  v[1][3] = 16;
  EXPECT_THROW(io::pack_bits(v, 4, io::BitLayout::kStream), InternalError);
}

// The vectorised path (b | 32) against the per-row loop, bit for bit, for both layouts,
// including padded word-aligned rows, int64 input and the bad-value error naming the spot.
TEST(PackBits, FastPathMatchesReference) {
  for (int bits : {1, 2, 4, 8})
    for (auto layout : {io::BitLayout::kStream, io::BitLayout::kWordAligned})
      for (int64_t len : {int64_t{64}, int64_t{96}, int64_t{37}}) {
        if (layout == io::BitLayout::kStream && len * bits % 32 != 0) continue;
        at::Tensor v = at::randint(0, 1 << bits, {7, len}, at::kLong);
        v[0].fill_((1 << bits) - 1);  // all-ones row: the top bit of the word set
        at::Tensor fast = io::pack_bits_vectorized(v, bits, layout);
        at::Tensor ref = io::pack_bits_reference(v, bits, layout);
        EXPECT_EQ(fast.scalar_type(), at::kInt);
        EXPECT_TRUE(at::equal(fast, ref)) << bits << " bits, length " << len;
      }
  at::Tensor v = at::zeros({3, 16}, at::kInt);
  v[2][5] = -1;
  try {
    io::pack_bits_vectorized(v, 4, io::BitLayout::kStream);
    FAIL() << "a negative code must throw";
  } catch (const InternalError& e) {
    EXPECT_NE(std::string(e.what()).find("row 2, column 5"), std::string::npos) << e.what();
  }
}

TEST(Pack, GptqRoundTripsEveryBitWidth) {
  struct Case {
    int bits;
    int64_t n, k, group;
    bool act_order;
  };
  // K need not be a multiple of 32 where K·b is (2/4/8-bit); 3-bit needs K, N % 32 == 0.
  const Case cases[] = {{2, 48, 80, 16, false},  {3, 64, 96, 32, true},  {4, 24, 56, 8, true},
                        {4, 40, 200, -1, false}, {8, 12, 36, 12, false}, {8, 20, 44, 10, true}};
  for (const auto& c : cases)
    for (auto f : {Format::kGptqV1, Format::kGptqV2}) {
      const int zero_lo = f == Format::kGptqV1 ? 1 : 0;
      auto q = random_linear(c.n, c.k, c.bits, c.group, c.act_order, zero_lo, 7 + c.bits);
      auto p = io::pack(q, f);
      const std::string what = std::string(io::format_name(f)) + " w" + std::to_string(c.bits) +
                               " K=" + std::to_string(c.k);
      EXPECT_EQ(p.get("qweight").sizes(), (at::IntArrayRef{c.k * c.bits / 32, c.n})) << what;
      EXPECT_EQ(p.get("qzeros").sizes(),
                (at::IntArrayRef{io::num_groups(c.k, c.group), c.n * c.bits / 32}))
          << what;
      EXPECT_EQ(p.get("scales").scalar_type(), at::kHalf);
      expect_same(io::unpack(p), q, what);
      EXPECT_TRUE(at::equal(io::dequantize(p), reference_dequant(q))) << what;
    }
}

TEST(Pack, GptqV1SymmetricZerosAreTheKnownConstants) {
  const std::pair<int, uint32_t> cases[] = {{4, 0x77777777u}, {8, 0x7F7F7F7Fu}, {2, 0x55555555u}};
  for (const auto& [bits, word] : cases) {
    auto q = random_linear(32, 64, bits, 32, false, 1, 3);
    q.zeros.fill_(1 << (bits - 1));
    auto p = io::pack(q, Format::kGptqV1);
    at::Tensor expect = at::full_like(p.get("qzeros"), static_cast<int32_t>(word));
    EXPECT_TRUE(at::equal(p.get("qzeros"), expect)) << bits << " bits";
  }
  auto q3 = random_linear(32, 64, 3, 32, false, 1, 3);
  q3.zeros.fill_(4);  // stores 3 in every slot: the hand-derived 3-bit stream pattern
  auto p3 = io::pack(q3, Format::kGptqV1);
  ASSERT_EQ(p3.get("qzeros").sizes(), (at::IntArrayRef{2, 3}));
  const uint32_t w3[] = {0xDB6DB6DBu, 0xB6DB6DB6u, 0x6DB6DB6Du};
  for (int g = 0; g < 2; ++g)
    for (int j = 0; j < 3; ++j)
      EXPECT_EQ(static_cast<uint32_t>(p3.get("qzeros")[g][j].item<int32_t>()), w3[j]);
}

TEST(Pack, GptqV1CannotStoreZeroPointZero) {
  auto q = random_linear(32, 64, 4, 32, false, 1, 5);
  const io::FormatRow& v1 = io::format_row(Format::kGptqV1);
  EXPECT_TRUE(v1.can_store_zeros(q.zeros, 4));
  q.zeros[1][3] = 0;
  EXPECT_FALSE(v1.can_store_zeros(q.zeros, 4));
  EXPECT_EQ(v1.widened, Format::kGptqV2);
  const std::string msg = input_error_message([&] { io::pack(q, Format::kGptqV1); });
  EXPECT_NE(msg.find("gptq_v2"), std::string::npos) << msg;
  // v2 stores true zeros, so the same linear round trips there.
  expect_same(io::unpack(io::pack(q, Format::kGptqV2)), q, "v2 with a zero of 0");
}

TEST(Pack, GptqRejectsShapesTheLayoutCannotHold) {
  auto q3 = random_linear(32, 40, 3, 8, false, 1, 9);  // K·3 = 120, not a multiple of 32
  std::string msg = input_error_message([&] { io::pack(q3, Format::kGptqV1); });
  EXPECT_NE(msg.find("K = 40"), std::string::npos) << msg;
  auto q4 = random_linear(12, 64, 4, 32, false, 1, 9);  // N·4 = 48
  msg = input_error_message([&] { io::pack(q4, Format::kGptqV2); });
  EXPECT_NE(msg.find("N = 12"), std::string::npos) << msg;
}

TEST(Pack, AwqRoundTripAndNibbleOrder) {
  auto q = random_linear(64, 96, 4, 32, false, 0, 11);
  auto p = io::pack(q, Format::kAwqGemm);
  EXPECT_EQ(p.get("qweight").sizes(), (at::IntArrayRef{96, 8}));
  EXPECT_EQ(p.get("qzeros").sizes(), (at::IntArrayRef{3, 8}));
  EXPECT_EQ(p.get("scales").sizes(), (at::IntArrayRef{3, 64}));
  expect_same(io::unpack(p), q, "awq");
  EXPECT_TRUE(at::equal(io::dequantize(p), reference_dequant(q)));

  // Column n of row k set to n % 8 + 1 for the first block: nibble i must hold 8c+order[i].
  io::QuantLinear one = q;
  one.codes = at::zeros_like(q.codes);
  for (int n = 0; n < 8; ++n) one.codes[n][0] = n + 1;
  auto p1 = io::pack(one, Format::kAwqGemm);
  const uint32_t w = static_cast<uint32_t>(p1.get("qweight")[0][0].item<int32_t>());
  const int order[8] = {0, 2, 4, 6, 1, 3, 5, 7};
  for (int i = 0; i < 8; ++i) EXPECT_EQ((w >> (4 * i)) & 0xF, order[i] + 1u) << "nibble " << i;
}

TEST(Pack, AwqRejectsWhatGemmCannotStore) {
  auto bad_n = random_linear(12, 64, 4, 32, false, 0, 1);
  EXPECT_NE(input_error_message([&] { io::pack(bad_n, Format::kAwqGemm); }).find("N = 12"),
            std::string::npos);
  auto bad_k = random_linear(16, 72, 4, 32, false, 0, 1);  // 72 % 32 != 0
  EXPECT_NE(input_error_message([&] { io::pack(bad_k, Format::kAwqGemm); }).find("K = 72"),
            std::string::npos);
  auto act = random_linear(16, 64, 4, 32, true, 0, 1);
  EXPECT_NE(input_error_message([&] { io::pack(act, Format::kAwqGemm); }).find("act-order"),
            std::string::npos);
  auto w3 = random_linear(16, 64, 3, 32, false, 0, 1);
  EXPECT_NE(input_error_message([&] { io::pack(w3, Format::kAwqGemm); }).find("4-bit"),
            std::string::npos);
}

TEST(Pack, CompressedTensorsLayoutAndRoundTrip) {
  // K = 36 is not a multiple of 8: the last word is zero padded.
  auto q = random_linear(24, 36, 4, 12, false, 0, 13);
  io::PackOptions opts;
  opts.scale_dtype = at::kBFloat16;
  auto p = io::pack(q, Format::kCompressedPack, opts);
  EXPECT_EQ(p.get("weight_packed").sizes(), (at::IntArrayRef{24, 5}));
  EXPECT_EQ(p.get("weight_scale").sizes(), (at::IntArrayRef{24, 3}));
  EXPECT_EQ(p.get("weight_scale").scalar_type(), at::kBFloat16);
  EXPECT_TRUE(at::equal(p.get("weight_shape"), at::tensor({24, 36}, at::kLong)));
  EXPECT_EQ(p.get("weight_zero_point").sizes(), (at::IntArrayRef{3, 3}));  // [N/8, n_groups]
  EXPECT_FALSE(p.has("weight_g_idx"));
  // Element 0 in the low bits: word 0 of row 0 holds codes[0][0..7] at 4j.
  const uint32_t w = static_cast<uint32_t>(p.get("weight_packed")[0][0].item<int32_t>());
  for (int j = 0; j < 8; ++j) EXPECT_EQ((w >> (4 * j)) & 0xF, q.codes[0][j].item<int32_t>());
  auto back = io::unpack(p);
  EXPECT_TRUE(at::equal(back.codes, q.codes));
  EXPECT_TRUE(at::equal(back.zeros, q.zeros));

  auto sym = random_linear(16, 64, 8, 32, true, 0, 2);
  sym.zeros.fill_(128);
  auto ps = io::pack(sym, Format::kCompressedPack);
  EXPECT_FALSE(ps.has("weight_zero_point"));
  EXPECT_TRUE(ps.has("weight_g_idx"));
  expect_same(io::unpack(ps), sym, "compressed sym act-order");
}

// weight_g_idx follows the option when set: the config's actorder decides what loaders expect.
TEST(Pack, CompressedTensorsGIdxFollowsTheOption) {
  io::PackOptions always;
  always.g_idx = true;
  auto plain = random_linear(16, 64, 4, 32, false, 0, 3);
  auto p = io::pack(plain, Format::kCompressedPack, always);
  ASSERT_TRUE(p.has("weight_g_idx"));
  EXPECT_TRUE(at::equal(p.get("weight_g_idx"), io::default_g_idx(64, 32)));
  EXPECT_FALSE(io::pack(plain, Format::kCompressedPack).has("weight_g_idx"));
  io::PackOptions never;
  never.g_idx = false;
  auto act = random_linear(16, 64, 4, 32, true, 0, 4);
  EXPECT_THROW(io::pack(act, Format::kCompressedPack, never), InternalError);
}

TEST(Pack, DequantizeMatchesTheFormula) {
  auto q = random_linear(16, 48, 4, 16, true, 0, 21);
  EXPECT_TRUE(at::equal(io::dequantize(q), reference_dequant(q)));
}
