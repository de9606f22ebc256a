// What every format shares: the canonical form's checks and the dispatch to the format's row
// (io/format/format_registry.h; the packers themselves are in io/format_*.cpp, the bit work in
// pack_bits.cpp).
#include "io/format/pack.h"

#include <sstream>

#include "common/check.h"
#include "io/format/format_registry.h"

namespace sq::io {
namespace {

int32_t max_code(int bits) {
  return (1 << bits) - 1;
}

void check_range(const at::Tensor& t, int bits, const char* context, const char* what) {
  if (t.numel() == 0) return;
  const int64_t lo = t.min().item<int64_t>(), hi = t.max().item<int64_t>();
  SQ_CHECK(lo >= 0 && hi <= max_code(bits), context << ": " << what << " span [" << lo << ", " << hi
                                                    << "], outside 0.." << max_code(bits) << " for "
                                                    << bits << "-bit quantization");
}

}  // namespace

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

// `from_file`: the linear was unpacked from a checkpoint, so a violation is the file's fault
// (InputError) rather than a broken invariant of our own packer (InternalError).
void check_quant_linear(const QuantLinear& q, const char* context, bool from_file) {
  SQ_CHECK_OR_REQUIRE(
      from_file, q.codes.defined() && q.zeros.defined() && q.scales.defined() && q.g_idx.defined(),
      context << ": codes, zeros, scales and g_idx must all be set");
  SQ_CHECK_OR_REQUIRE(from_file, q.codes.dim() == 2,
                      context << ": codes must be [N, K], got " << q.codes.sizes());
  const int64_t n = q.codes.size(0), k = q.codes.size(1);
  const int64_t groups = num_groups(k, q.scheme.group_size);
  SQ_CHECK_OR_REQUIRE(
      from_file, q.zeros.dim() == 2 && q.zeros.size(0) == groups && q.zeros.size(1) == n,
      context << ": zeros must be [" << groups << ", " << n << "], got " << q.zeros.sizes());
  SQ_CHECK_OR_REQUIRE(
      from_file, q.scales.sizes() == q.zeros.sizes(),
      context << ": scales must be [" << groups << ", " << n << "], got " << q.scales.sizes());
  SQ_CHECK_OR_REQUIRE(from_file, q.scales.is_floating_point(),
                      context << ": scales must be floating point");
  SQ_CHECK_OR_REQUIRE(from_file, q.g_idx.dim() == 1 && q.g_idx.numel() == k,
                      context << ": g_idx must be [" << k << "], got " << q.g_idx.sizes());
  if (k > 0)
    SQ_CHECK_OR_REQUIRE(
        from_file, q.g_idx.min().item<int64_t>() >= 0 && q.g_idx.max().item<int64_t>() < groups,
        context << ": g_idx values must lie in 0.." << groups - 1);
  if (from_file) {
    const auto in_range = [&](const at::Tensor& t) {
      return t.numel() == 0 ||
             (t.min().item<int64_t>() >= 0 && t.max().item<int64_t>() <= max_code(q.scheme.bits));
    };
    SQ_REQUIRE(in_range(q.codes) && in_range(q.zeros),
               context << ": codes or zeros outside 0.." << max_code(q.scheme.bits));
    return;
  }
  check_range(q.codes, q.scheme.bits, context, "codes");
  check_range(q.zeros, q.scheme.bits, context, "zeros");
}

PackedLinear pack(const QuantLinear& q, Format format, const PackOptions& opts) {
  const FormatRow& row = format_row(format);
  check_quant_linear(q, row.name, /*from_file=*/false);
  const std::string why = row.scheme_error(q.scheme);
  SQ_REQUIRE(why.empty(), why);
  return row.pack(q, opts);
}

QuantLinear unpack(const PackedLinear& p) {
  QuantLinear q = format_row(p.format).unpack(p);
  check_quant_linear(q, format_name(p.format), /*from_file=*/true);
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
