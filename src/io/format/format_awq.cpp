// The AWQ GEMM row (AutoAWQ's GEMM layout, REFERENCE.md §3.1): pack/unpack, the config and
// quant_config.json, and how the loader reads it back.
#include "common/check.h"
#include "io/format/format_rows.h"

namespace sq::io::rows {
namespace {

// AutoAWQ GEMM: nibble i of a word holds column 8c + kAwqOrder[i] of its 8-column block.
constexpr int64_t kAwqOrder[8] = {0, 2, 4, 6, 1, 3, 5, 7};

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

std::string scheme_error(const QuantScheme& s) {
  if (s.bits != 4)
    return "awq-gemm packs 4-bit weights only, got " + std::to_string(s.bits) + " bits";
  if (s.act_order) return "awq-gemm has no g_idx: act-order (permuted) groups cannot be stored";
  return "";
}

PackedLinear pack(const QuantLinear& q, const PackOptions&) {
  const int64_t n = q.out_features(), k = q.in_features();
  const int64_t g = group_size_for(q.scheme.group_size, k);
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
  p.format = Format::kAwqGemm;
  p.scheme.bits = 4;
  p.scheme.group_size = q.scheme.group_size;
  p.tensors["qweight"] =
      pack_bits(q.codes.to(at::kInt).t().contiguous().index_select(1, perm), 4, BitLayout::kStream);
  p.tensors["qzeros"] = pack_bits(q.zeros.to(at::kInt).index_select(1, perm.to(q.zeros.device())),
                                  4, BitLayout::kStream);
  p.tensors["scales"] = q.scales.to(at::kHalf).contiguous();
  return p;
}

QuantLinear unpack(const PackedLinear& p) {
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
  SQ_REQUIRE(num_groups(k, q.scheme.group_size) == groups,
             "awq-gemm: group size " << q.scheme.group_size << " with K = " << k << " gives "
                                     << num_groups(k, q.scheme.group_size) << " groups, qzeros has "
                                     << groups);
  q.codes = unpack_bits(qw, 4, n, BitLayout::kStream).index_select(1, inv).t().contiguous();
  q.zeros = unpack_bits(qz, 4, n, BitLayout::kStream).index_select(1, inv).contiguous();
  q.scales = sc;
  q.g_idx = default_g_idx(k, q.scheme.group_size);
  return q;
}

nlohmann::json config(const QuantSettings& s) {
  return {{"quant_method", "awq"},
          {"bits", s.scheme.bits},
          {"group_size", s.scheme.group_size},
          {"zero_point", s.scheme.zero_point},
          {"version", "gemm"},
          {"modules_to_not_convert", s.modules_to_not_convert}};
}

std::map<std::string, nlohmann::json> side_files(const QuantSettings& s) {
  // The container edition's own file (REFERENCE.md §3.1).
  return {{"quant_config.json",
           {{"zero_point", s.scheme.zero_point},
            {"q_group_size", s.scheme.group_size},
            {"w_bit", s.scheme.bits},
            {"version", "GEMM"}}}};
}

Format read_config(const nlohmann::json& q, const std::string& ctx, QuantScheme* scheme) {
  // AutoAWQ writes "version" (gemm, gemv, marlin...); only GEMM is a layout we unpack.
  const std::string version = lower(str_key(q, "version", "gemm"));
  SQ_REQUIRE(version == "gemm", ctx << ": AWQ version \"" << version
                                    << "\" is not supported for loading (only \"gemm\")");
  scheme->bits = static_cast<int>(int_key(q, {"bits", "w_bit"}, 4, ctx));
  scheme->group_size = int_key(q, {"group_size", "q_group_size"}, 128, ctx);
  SQ_REQUIRE(scheme->bits == 4,
             ctx << ": AWQ GEMM checkpoints are 4-bit, config says " << scheme->bits);
  return Format::kAwqGemm;
}

// qweight [K, N/8].
std::vector<int64_t> stored_shape(const QuantScheme&, const std::string& p, const StoredLookup& s) {
  const at::Tensor qw = need(s, p, "qweight", "awq");
  SQ_REQUIRE(qw.dim() == 2,
             "quantized linear " << p << ": awq qweight must be 2-D, got " << qw.sizes());
  return {qw.size(1) * 8, qw.size(0)};
}

}  // namespace

FormatRow awq_gemm() {
  return {Format::kAwqGemm,
          "awq-gemm",
          "awq",
          true,
          scheme_error,
          "qweight",
          {"qweight", "qzeros", "scales"},
          pack,
          unpack,
          nullptr,
          nullptr,
          std::nullopt,
          "awq",
          config,
          side_files,
          read_config,
          stored_shape,
          nullptr};
}

}  // namespace sq::io::rows
