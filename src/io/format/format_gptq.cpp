// The GPTQ rows (REFERENCE.md §3.2), v1 and v2: the same qweight/scales/g_idx, but v1 stores
// zero − 1 in qzeros (checkpoint_format "gptq", every writer's default) and v2 the true zeros
// ("gptq_v2"). Two rows rather than one with a variant because every column but the names
// differs between them: the qzeros packer, the config's checkpoint_format, the loader's "+1 and
// mask". v1 cannot store an asymmetric zero of 0; its `widened` row is v2.
#include "common/check.h"
#include "io/format/format_rows.h"

namespace sq::io::rows {
namespace {

template <Format F>
std::string scheme_error(const QuantScheme& s) {
  const int b = s.bits;
  if (b == 2 || b == 3 || b == 4 || b == 8) return "";
  return std::string(format_name(F)) + ": bits must be 2, 3, 4 or 8, got " + std::to_string(b);
}

// v1 stores zero − 1: every zero must lie in 1 .. 2^bits − 1.
bool v1_can_store(const at::Tensor& zeros, int bits) {
  if (zeros.numel() == 0) return true;
  const at::Tensor z = zeros.to(at::kLong);
  return z.min().item<int64_t>() >= 1 && z.max().item<int64_t>() <= max_code(bits);
}
bool v2_can_store(const at::Tensor&, int) {
  return true;
}

template <Format F>
at::Tensor pack_zeros(const at::Tensor& zeros, int bits) {
  at::Tensor stored = zeros.to(at::kInt);
  if (F == Format::kGptqV1) {
    SQ_REQUIRE(v1_can_store(stored, bits),
               format_name(F) << ": checkpoint format v1 stores zero - 1 and cannot represent a "
                                 "zero point of 0 (asymmetric); write gptq_v2 or use symmetric "
                                 "quantization");
    stored = stored - 1;
  }
  return pack_bits(stored, bits, BitLayout::kStream);
}

template <Format F>
PackedLinear pack(const QuantLinear& q, const PackOptions&) {
  const int64_t n = q.out_features(), k = q.in_features();
  const int b = q.scheme.bits;
  const char* name = format_name(F);
  SQ_REQUIRE(k * b % 32 == 0, name << ": qweight [K·" << b << "/32, N] needs K·" << b
                                   << " divisible by 32, got K = " << k);
  SQ_REQUIRE(n * b % 32 == 0, name << ": qzeros [n_groups, N·" << b << "/32] needs N·" << b
                                   << " divisible by 32, got N = " << n);
  PackedLinear p;
  p.format = F;
  p.scheme.bits = b;
  p.scheme.group_size = q.scheme.group_size;
  p.tensors["qweight"] = pack_bits(q.codes, b, BitLayout::kStream).t().contiguous();
  p.tensors["qzeros"] = pack_zeros<F>(q.zeros, b);
  p.tensors["scales"] = q.scales.to(at::kHalf).contiguous();
  p.tensors["g_idx"] = q.g_idx.to(at::kInt).contiguous();
  return p;
}

template <Format F>
QuantLinear unpack(const PackedLinear& p) {
  const at::Tensor& qw = p.get("qweight");
  const at::Tensor& qz = p.get("qzeros");
  const at::Tensor& sc = p.get("scales");
  const int b = p.scheme.bits;
  const char* name = format_name(F);
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
  if (F == Format::kGptqV1) q.zeros = at::bitwise_and(q.zeros + 1, max_code(b));
  q.scales = sc;
  q.g_idx = p.has("g_idx") ? p.get("g_idx").to(at::kInt) : default_g_idx(k, p.scheme.group_size);
  return q;
}

nlohmann::json config(const QuantSettings& s) {
  nlohmann::json j = {{"quant_method", "gptq"},
                      {"bits", s.scheme.bits},
                      {"group_size", s.scheme.group_size},
                      {"desc_act", s.scheme.act_order},
                      {"sym", !s.scheme.zero_point},
                      {"true_sequential", s.true_sequential},
                      {"damp_percent", s.damp_percent},
                      {"static_groups", s.static_groups},
                      {"checkpoint_format", format_name(s.format)}};  // "gptq" or "gptq_v2"
  if (s.scheme.mse_norm > 0) j["mse"] = s.scheme.mse_norm;  // GPTQModel's key; loaders ignore it
  if (!s.modules_to_not_convert.empty()) j["modules_to_not_convert"] = s.modules_to_not_convert;
  return j;
}

std::map<std::string, nlohmann::json> side_files(const QuantSettings& s) {
  return {{"quantize_config.json", config(s)}};
}

Format read_config(const nlohmann::json& q, const std::string& ctx, QuantScheme* scheme) {
  // checkpoint_format: "gptq" (v1, zero − 1 stored; the default of every writer) or "gptq_v2".
  const std::string fmt = lower(str_key(q, "checkpoint_format", "gptq"));
  SQ_REQUIRE(fmt == "gptq" || fmt == "gptq_v2",
             ctx << ": GPTQ checkpoint_format \"" << fmt
                 << "\" is not supported for loading (\"gptq\" or \"gptq_v2\")");
  scheme->bits = static_cast<int>(int_key(q, {"bits"}, 4, ctx));
  scheme->group_size = int_key(q, {"group_size"}, 128, ctx);
  return fmt == "gptq_v2" ? Format::kGptqV2 : Format::kGptqV1;
}

// qweight [K·b/32, N]; K from g_idx when present.
std::vector<int64_t> stored_shape(const QuantScheme& l, const std::string& p,
                                  const StoredLookup& s) {
  const at::Tensor qw = need(s, p, "qweight", "gptq");
  SQ_REQUIRE(qw.dim() == 2,
             "quantized linear " << p << ": gptq qweight must be 2-D, got " << qw.sizes());
  const at::Tensor g = s(p + ".g_idx");
  const int64_t k = g.defined() ? g.numel() : qw.size(0) * 32 / l.bits;
  SQ_REQUIRE(k * l.bits == qw.size(0) * 32, "quantized linear "
                                                << p << ": gptq qweight has " << qw.size(0)
                                                << " rows, expected " << k * l.bits / 32
                                                << " for K = " << k << " at " << l.bits << " bits");
  return {qw.size(1), k};
}

template <Format F>
FormatRow row() {
  const bool v1 = F == Format::kGptqV1;
  return {F,
          v1 ? "gptq" : "gptq_v2",
          "gptq",
          v1,
          scheme_error<F>,
          "qweight",
          {"qweight", "qzeros", "scales", "g_idx"},
          pack<F>,
          unpack<F>,
          pack_zeros<F>,
          v1 ? v1_can_store : v2_can_store,
          v1 ? std::optional<Format>(Format::kGptqV2) : std::nullopt,
          "gptq",
          config,
          side_files,
          read_config,
          stored_shape,
          nullptr};
}

}  // namespace

FormatRow gptq(Format v1_or_v2) {
  SQ_CHECK(v1_or_v2 == Format::kGptqV1 || v1_or_v2 == Format::kGptqV2, "not a GPTQ format");
  return v1_or_v2 == Format::kGptqV1 ? row<Format::kGptqV1>() : row<Format::kGptqV2>();
}

}  // namespace sq::io::rows
