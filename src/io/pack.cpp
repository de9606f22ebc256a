// The format packers. Each format is one row of kFormats (name, pack, unpack); the bit work is in
// pack_bits.cpp. Layout facts are REFERENCE.md §3.1-3.3.
#include "io/pack.h"

#include <sstream>

#include "common/check.h"

namespace sq::io {
namespace {

// AutoAWQ GEMM: nibble i of a word holds column 8c + kAwqOrder[i] of its 8-column block.
constexpr int64_t kAwqOrder[8] = {0, 2, 4, 6, 1, 3, 5, 7};

int32_t max_code(int bits) {
  return (1 << bits) - 1;
}

// Column permutation for AWQ: `forward` gathers the stored order from the natural one.
at::Tensor awq_permutation(int64_t n, bool forward) {
  at::Tensor perm = at::empty({n}, at::kLong);
  int64_t* p = perm.data_ptr<int64_t>();
  for (int64_t c = 0; c < n / 8; ++c)
    for (int i = 0; i < 8; ++i) {
      if (forward)
        p[8 * c + i] = 8 * c + kAwqOrder[i];
      else
        p[8 * c + kAwqOrder[i]] = 8 * c + i;
    }
  return perm;
}

void check_range(const at::Tensor& t, int bits, const char* context, const char* what) {
  if (t.numel() == 0) return;
  const int64_t lo = t.min().item<int64_t>(), hi = t.max().item<int64_t>();
  SQ_CHECK(lo >= 0 && hi <= max_code(bits), context << ": " << what << " span [" << lo << ", " << hi
                                                    << "], outside 0.." << max_code(bits) << " for "
                                                    << bits << "-bit quantization");
}

// ---- AWQ GEMM ------------------------------------------------------------------------------

PackedLinear pack_awq(const QuantLinear& q, const PackOptions&) {
  const int64_t n = q.out_features(), k = q.in_features();
  const int64_t g = group_size_for(q.scheme.group_size, k);
  SQ_REQUIRE(q.scheme.bits == 4, "awq-gemm packs 4-bit weights only, got " << q.scheme.bits << " bits");
  SQ_REQUIRE(n % 8 == 0,
             "awq-gemm needs out_features divisible by 8 (qweight [K, N/8]), got N = " << n);
  SQ_REQUIRE(k % g == 0,
             "awq-gemm needs in_features divisible by the group size (qzeros [K/G, "
             "N/8]), got K = "
                 << k << ", G = " << g);
  SQ_REQUIRE(is_trivial_g_idx(q.g_idx, q.scheme.group_size),
             "awq-gemm has no g_idx: act-order (permuted) groups cannot be stored");
  const at::Tensor perm = awq_permutation(n, true).to(q.codes.device());
  PackedLinear p;
  p.format = PackFormat::kAwqGemm;
  p.scheme.bits = 4;
  p.scheme.group_size = q.scheme.group_size;
  p.tensors["qweight"] =
      pack_bits(q.codes.to(at::kInt).t().contiguous().index_select(1, perm), 4, BitLayout::kStream);
  p.tensors["qzeros"] = pack_bits(q.zeros.to(at::kInt).index_select(1, perm.to(q.zeros.device())),
                                  4, BitLayout::kStream);
  p.tensors["scales"] = q.scales.to(at::kHalf).contiguous();
  return p;
}

QuantLinear unpack_awq(const PackedLinear& p) {
  const at::Tensor& qw = p.get("qweight");
  const at::Tensor& qz = p.get("qzeros");
  const at::Tensor& sc = p.get("scales");
  SQ_REQUIRE(qw.dim() == 2 && qz.dim() == 2 && sc.dim() == 2 && qz.size(1) == qw.size(1) &&
                 sc.size(1) == 8 * qw.size(1) && sc.size(0) == qz.size(0) && qz.size(0) > 0,
             "awq-gemm: inconsistent shapes qweight " << qw.sizes() << ", qzeros " << qz.sizes()
                                                      << ", scales " << sc.sizes()
                                                      << " (expected [K, N/8], [K/G, N/8], "
                                                         "[K/G, N])");
  const int64_t k = qw.size(0), n = 8 * qw.size(1), groups = qz.size(0);
  SQ_REQUIRE(k % groups == 0,
             "awq-gemm: K = " << k << " rows of qweight do not split into " << groups << " groups");
  const at::Tensor inv = awq_permutation(n, false);
  QuantLinear q;
  q.scheme.bits = 4;
  q.scheme.group_size = p.scheme.group_size > 0 ? p.scheme.group_size : k / groups;
  SQ_REQUIRE(num_groups(k, q.scheme.group_size) == groups, "awq-gemm: group size "
                                                        << q.scheme.group_size << " with K = " << k
                                                        << " gives " << num_groups(k, q.scheme.group_size)
                                                        << " groups, qzeros has " << groups);
  q.codes = unpack_bits(qw, 4, n, BitLayout::kStream).index_select(1, inv).t().contiguous();
  q.zeros = unpack_bits(qz, 4, n, BitLayout::kStream).index_select(1, inv).contiguous();
  q.scales = sc;
  q.g_idx = default_g_idx(k, q.scheme.group_size);
  return q;
}

// ---- GPTQ ----------------------------------------------------------------------------------

PackedLinear pack_gptq(const QuantLinear& q, PackFormat f) {
  const int64_t n = q.out_features(), k = q.in_features();
  const int b = q.scheme.bits;
  const char* name = format_name(f);
  SQ_REQUIRE(b == 2 || b == 3 || b == 4 || b == 8,
             name << ": bits must be 2, 3, 4 or 8, got " << b);
  SQ_REQUIRE(k * b % 32 == 0, name << ": qweight [K·" << b << "/32, N] needs K·" << b
                                   << " divisible by 32, got K = " << k);
  SQ_REQUIRE(n * b % 32 == 0, name << ": qzeros [n_groups, N·" << b << "/32] needs N·" << b
                                   << " divisible by 32, got N = " << n);
  at::Tensor stored = q.zeros.to(at::kInt);
  if (f == PackFormat::kGptqV1) {
    SQ_REQUIRE(gptq_v1_can_store(stored, b),
               name << ": checkpoint format v1 stores zero - 1 and cannot represent a zero "
                       "point of 0 (asymmetric); write gptq_v2 or use symmetric quantization");
    stored = stored - 1;
  }
  PackedLinear p;
  p.format = f;
  p.scheme.bits = b;
  p.scheme.group_size = q.scheme.group_size;
  p.tensors["qweight"] = pack_bits(q.codes, b, BitLayout::kStream).t().contiguous();
  p.tensors["qzeros"] = pack_bits(stored, b, BitLayout::kStream);
  p.tensors["scales"] = q.scales.to(at::kHalf).contiguous();
  p.tensors["g_idx"] = q.g_idx.to(at::kInt).contiguous();
  return p;
}

QuantLinear unpack_gptq(const PackedLinear& p) {
  const at::Tensor& qw = p.get("qweight");
  const at::Tensor& qz = p.get("qzeros");
  const at::Tensor& sc = p.get("scales");
  const int b = p.scheme.bits;
  const char* name = format_name(p.format);
  SQ_REQUIRE(qw.dim() == 2 && qz.dim() == 2 && sc.dim() == 2 && sc.size(1) == qw.size(1) &&
                 sc.size(0) == qz.size(0) && qz.size(1) * 32 == qw.size(1) * b,
             name << " " << b << "-bit: inconsistent shapes qweight " << qw.sizes() << ", qzeros "
                  << qz.sizes() << ", scales " << sc.sizes()
                  << " (expected [K·b/32, N], [n_groups, N·b/32], [n_groups, N])");
  const int64_t n = qw.size(1);
  const int64_t k = p.has("g_idx") ? p.get("g_idx").numel() : qw.size(0) * 32 / b;
  SQ_REQUIRE(k * b == qw.size(0) * 32, name << ": g_idx has " << k << " entries but qweight has "
                                            << qw.size(0) << " rows of " << b << "-bit values");
  SQ_REQUIRE(qz.size(0) == num_groups(k, p.scheme.group_size),
             name << ": group size " << p.scheme.group_size << " with K = " << k << " gives "
                  << num_groups(k, p.scheme.group_size) << " groups, qzeros has " << qz.size(0));
  QuantLinear q;
  q.scheme.bits = b;
  q.scheme.group_size = p.scheme.group_size;
  q.codes = unpack_bits(qw.t(), b, k, BitLayout::kStream);
  q.zeros = unpack_bits(qz, b, n, BitLayout::kStream);
  // v1 readers add 1 and mask (a stored 2^b - 1 reads back as 0).
  if (p.format == PackFormat::kGptqV1) q.zeros = at::bitwise_and(q.zeros + 1, max_code(b));
  q.scales = sc;
  q.g_idx = p.has("g_idx") ? p.get("g_idx").to(at::kInt) : default_g_idx(k, p.scheme.group_size);
  return q;
}

PackedLinear pack_gptq_v1(const QuantLinear& q, const PackOptions&) {
  return pack_gptq(q, PackFormat::kGptqV1);
}
PackedLinear pack_gptq_v2(const QuantLinear& q, const PackOptions&) {
  return pack_gptq(q, PackFormat::kGptqV2);
}

// ---- compressed-tensors pack-quantized -----------------------------------------------------
// Stored values are the signed code plus 2^(b-1); with unsigned canonical codes whose signed
// value is code - 2^(b-1), that is the code itself. Same for zero points.

PackedLinear pack_compressed(const QuantLinear& q, const PackOptions& opts) {
  const int b = q.scheme.bits;
  SQ_REQUIRE(b >= 2 && b <= 8, "pack-quantized: bits must be 2..8, got " << b);
  const int64_t mid = int64_t{1} << (b - 1);
  const bool sym =
      opts.symmetric.value_or(q.zeros.numel() == 0 || at::all(q.zeros == mid).item<bool>());
  if (sym)
    SQ_REQUIRE(q.zeros.numel() == 0 || at::all(q.zeros == mid).item<bool>(),
               "pack-quantized: symmetric output needs every zero point = " << mid);
  PackedLinear p;
  p.format = PackFormat::kCompressedPack;
  p.scheme.bits = b;
  p.scheme.group_size = q.scheme.group_size;
  p.tensors["weight_packed"] = pack_bits(q.codes, b, BitLayout::kWordAligned);
  p.tensors["weight_scale"] = q.scales.t().to(opts.scale_dtype).contiguous();
  p.tensors["weight_shape"] = at::tensor({q.out_features(), q.in_features()}, at::kLong);
  if (!sym)
    p.tensors["weight_zero_point"] =
        pack_bits(q.zeros, b, BitLayout::kWordAligned).t().contiguous();
  const bool trivial = is_trivial_g_idx(q.g_idx, q.scheme.group_size);
  SQ_CHECK(
      opts.g_idx.value_or(true) || trivial,
      "pack-quantized: an act-order g_idx cannot be left out (actorder \"weight\" needs k / G)");
  if (opts.g_idx.value_or(!trivial)) p.tensors["weight_g_idx"] = q.g_idx.to(at::kInt).contiguous();
  return p;
}

QuantLinear unpack_compressed(const PackedLinear& p) {
  const at::Tensor shape = p.get("weight_shape").to(at::kLong);
  SQ_REQUIRE(shape.numel() == 2,
             "pack-quantized: weight_shape must hold 2 values, got " << shape.numel());
  const int64_t n = shape[0].item<int64_t>(), k = shape[1].item<int64_t>();
  const int b = p.scheme.bits;
  QuantLinear q;
  q.scheme.bits = b;
  q.scheme.group_size = p.scheme.group_size;
  q.codes = unpack_bits(p.get("weight_packed"), b, k, BitLayout::kWordAligned);
  q.scales = p.get("weight_scale").t().contiguous();
  const int64_t groups = q.scales.size(0);
  if (p.has("weight_zero_point"))
    q.zeros = unpack_bits(p.get("weight_zero_point").t(), b, n, BitLayout::kWordAligned);
  else
    q.zeros = at::full({groups, n}, int64_t{1} << (b - 1), at::kInt);
  q.g_idx =
      p.has("weight_g_idx") ? p.get("weight_g_idx").to(at::kInt) : default_g_idx(k, p.scheme.group_size);
  return q;
}

struct FormatRow {
  PackFormat format;
  const char* name;
  PackedLinear (*pack)(const QuantLinear&, const PackOptions&);
  QuantLinear (*unpack)(const PackedLinear&);
};
const FormatRow kFormats[] = {
    {PackFormat::kAwqGemm, "awq-gemm", pack_awq, unpack_awq},
    {PackFormat::kGptqV1, "gptq", pack_gptq_v1, unpack_gptq},
    {PackFormat::kGptqV2, "gptq_v2", pack_gptq_v2, unpack_gptq},
    {PackFormat::kCompressedPack, "pack-quantized", pack_compressed, unpack_compressed},
};

const FormatRow& row(PackFormat f) {
  for (const auto& r : kFormats)
    if (r.format == f) return r;
  SQ_THROW(InternalError, "unknown PackFormat " << static_cast<int>(f));
}

}  // namespace

const char* format_name(PackFormat f) {
  return row(f).name;
}

const at::Tensor& PackedLinear::get(const std::string& suffix) const {
  auto it = tensors.find(suffix);
  if (it == tensors.end()) {
    std::string have;
    for (const auto& kv : tensors) have += (have.empty() ? "" : ", ") + kv.first;
    SQ_THROW(InputError, format_name(format) << " linear: tensor \"" << suffix
                                             << "\" missing (present: " << have << ")");
  }
  return it->second;
}

void check_quant_linear(const QuantLinear& q, const char* context) {
  SQ_CHECK(q.codes.defined() && q.zeros.defined() && q.scales.defined() && q.g_idx.defined(),
           context << ": codes, zeros, scales and g_idx must all be set");
  SQ_CHECK(q.codes.dim() == 2, context << ": codes must be [N, K], got " << q.codes.sizes());
  const int64_t n = q.codes.size(0), k = q.codes.size(1);
  const int64_t groups = num_groups(k, q.scheme.group_size);
  SQ_CHECK(q.zeros.dim() == 2 && q.zeros.size(0) == groups && q.zeros.size(1) == n,
           context << ": zeros must be [" << groups << ", " << n << "], got " << q.zeros.sizes());
  SQ_CHECK(q.scales.sizes() == q.zeros.sizes(),
           context << ": scales must be [" << groups << ", " << n << "], got " << q.scales.sizes());
  SQ_CHECK(q.scales.is_floating_point(), context << ": scales must be floating point");
  SQ_CHECK(q.g_idx.dim() == 1 && q.g_idx.numel() == k,
           context << ": g_idx must be [" << k << "], got " << q.g_idx.sizes());
  if (k > 0)
    SQ_CHECK(q.g_idx.min().item<int64_t>() >= 0 && q.g_idx.max().item<int64_t>() < groups,
             context << ": g_idx values must lie in 0.." << groups - 1);
  check_range(q.codes, q.scheme.bits, context, "codes");
  check_range(q.zeros, q.scheme.bits, context, "zeros");
}

PackedLinear pack(const QuantLinear& q, PackFormat format, const PackOptions& opts) {
  check_quant_linear(q, format_name(format));
  return row(format).pack(q, opts);
}

QuantLinear unpack(const PackedLinear& p) {
  QuantLinear q = row(p.format).unpack(p);
  check_quant_linear(q, format_name(p.format));
  return q;
}

at::Tensor dequantize(const QuantLinear& q) {
  const at::Tensor gi = q.g_idx.to(at::kLong);
  const at::Tensor z = q.zeros.to(at::kInt).index_select(0, gi).t();     // [N, K]
  const at::Tensor s = q.scales.to(at::kFloat).index_select(0, gi).t();  // [N, K]
  return ((q.codes.to(at::kInt) - z).to(at::kFloat) * s).contiguous();
}

at::Tensor dequantize(const PackedLinear& p) {
  return dequantize(unpack(p));
}

}  // namespace sq::io
