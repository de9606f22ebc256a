// Reading quantized checkpoints back. Each quant_method is one row of kMethods (how its
// quantization_config names format, bits and group size); each packing format is one row of
// kPackRows (marker, stored suffixes, and how [N, K] follows from the stored shapes, so that a
// model can be planned without unpacking anything).
#include "io/quantized_view.h"

#include <algorithm>
#include <cctype>

#include "common/check.h"

namespace sq::io {
namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// First present key among `keys` as an integer; `fallback` when none is present. A JSON null
// (compressed-tensors' channel strategy) counts as -1 = one group per row.
int64_t int_key(const nlohmann::json& j, std::initializer_list<const char*> keys, int64_t fallback,
                const std::string& context) {
  for (const char* k : keys) {
    if (!j.contains(k)) continue;
    if (j[k].is_null()) return -1;
    SQ_REQUIRE(j[k].is_number_integer(), context << ": quantization_config." << k
                                                 << " must be an integer, got " << j[k].dump());
    return j[k].get<int64_t>();
  }
  return fallback;
}

std::string str_key(const nlohmann::json& j, const char* key, const std::string& fallback) {
  return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : fallback;
}

QuantizedLayout parse_awq(const nlohmann::json& q, const std::string& ctx) {
  // AutoAWQ writes "version" (gemm, gemv, marlin...); only GEMM is a layout we unpack.
  const std::string version = lower(str_key(q, "version", "gemm"));
  SQ_REQUIRE(version == "gemm", ctx << ": AWQ version \"" << version
                                    << "\" is not supported for loading (only \"gemm\")");
  QuantizedLayout l;
  l.format = PackFormat::kAwqGemm;
  l.scheme.bits = static_cast<int>(int_key(q, {"bits", "w_bit"}, 4, ctx));
  l.scheme.group_size = int_key(q, {"group_size", "q_group_size"}, 128, ctx);
  SQ_REQUIRE(l.scheme.bits == 4, ctx << ": AWQ GEMM checkpoints are 4-bit, config says " << l.scheme.bits);
  return l;
}

QuantizedLayout parse_gptq(const nlohmann::json& q, const std::string& ctx) {
  // checkpoint_format: "gptq" (v1, zero − 1 stored; the default of every writer) or "gptq_v2".
  const std::string fmt = lower(str_key(q, "checkpoint_format", "gptq"));
  SQ_REQUIRE(fmt == "gptq" || fmt == "gptq_v2",
             ctx << ": GPTQ checkpoint_format \"" << fmt
                 << "\" is not supported for loading (\"gptq\" or \"gptq_v2\")");
  QuantizedLayout l;
  l.format = fmt == "gptq_v2" ? PackFormat::kGptqV2 : PackFormat::kGptqV1;
  l.scheme.bits = static_cast<int>(int_key(q, {"bits"}, 4, ctx));
  l.scheme.group_size = int_key(q, {"group_size"}, 128, ctx);
  return l;
}

QuantizedLayout parse_compressed(const nlohmann::json& q, const std::string& ctx) {
  const std::string fmt = str_key(q, "format", "");
  SQ_REQUIRE(fmt == "pack-quantized",
             ctx << ": quantization_config.format \"" << fmt
                 << "\" of compressed-tensors is not supported for loading (\"pack-quantized\" or "
                    "\"float-quantized\")");
  SQ_REQUIRE(q.contains("config_groups") && q["config_groups"].is_object() &&
                 q["config_groups"].size() == 1,
             ctx << ": compressed-tensors needs exactly one entry in config_groups");
  const nlohmann::json& g = q["config_groups"].begin().value();
  SQ_REQUIRE(g.contains("weights") && g["weights"].is_object(),
             ctx << ": compressed-tensors config_groups entry has no \"weights\" object");
  const nlohmann::json& w = g["weights"];
  QuantizedLayout l;
  l.format = PackFormat::kCompressedPack;
  l.scheme.bits = static_cast<int>(int_key(w, {"num_bits"}, 4, ctx));
  l.scheme.group_size = int_key(w, {"group_size"}, -1, ctx);
  return l;
}

struct MethodRow {
  const char* quant_method;
  QuantizedLayout (*parse)(const nlohmann::json&, const std::string&);
};
constexpr MethodRow kMethods[] = {
    {"awq", parse_awq},
    {"gptq", parse_gptq},
    {"compressed-tensors", parse_compressed},
};

using Lookup = StoredLookup;
at::Tensor need(const Lookup& stored, const std::string& prefix, const std::string& suffix,
                const char* format) {
  at::Tensor t = stored(prefix + "." + suffix);
  SQ_REQUIRE(t.defined(), "quantized linear " << prefix << " (" << format << "): tensor " << prefix
                                              << "." << suffix << " is missing");
  SQ_REQUIRE(t.dim() >= 1, "quantized linear " << prefix << ": " << suffix << " is a scalar");
  return t;
}

// [N, K] from stored shapes: AWQ qweight [K, N/8]; GPTQ qweight [K·b/32, N] (K from g_idx when
// present); compressed-tensors stores weight_shape = [N, K] itself.
std::vector<int64_t> awq_shape(const QuantizedLayout&, const std::string& p, const Lookup& s) {
  const at::Tensor qw = need(s, p, "qweight", "awq");
  SQ_REQUIRE(qw.dim() == 2,
             "quantized linear " << p << ": awq qweight must be 2-D, got " << qw.sizes());
  return {qw.size(1) * 8, qw.size(0)};
}
std::vector<int64_t> gptq_shape(const QuantizedLayout& l, const std::string& p, const Lookup& s) {
  const at::Tensor qw = need(s, p, "qweight", "gptq");
  SQ_REQUIRE(qw.dim() == 2,
             "quantized linear " << p << ": gptq qweight must be 2-D, got " << qw.sizes());
  const at::Tensor g = s(p + ".g_idx");
  const int64_t k = g.defined() ? g.numel() : qw.size(0) * 32 / l.scheme.bits;
  SQ_REQUIRE(k * l.scheme.bits == qw.size(0) * 32, "quantized linear "
                                                << p << ": gptq qweight has " << qw.size(0)
                                                << " rows, expected " << k * l.scheme.bits / 32
                                                << " for K = " << k << " at " << l.scheme.bits << " bits");
  return {qw.size(1), k};
}
std::vector<int64_t> ct_shape(const QuantizedLayout&, const std::string& p, const Lookup& s) {
  const at::Tensor shape = need(s, p, "weight_shape", "pack-quantized").to(at::kLong);
  SQ_REQUIRE(shape.numel() == 2, "quantized linear " << p
                                                     << ": weight_shape must hold 2 values, got "
                                                     << shape.numel());
  return {shape[0].item<int64_t>(), shape[1].item<int64_t>()};
}

struct PackRow {
  PackFormat format;
  const char* marker;
  std::vector<std::string> suffixes;
  std::vector<int64_t> (*shape)(const QuantizedLayout&, const std::string&, const Lookup&);
};
const PackRow kPackRows[] = {
    {PackFormat::kAwqGemm, "qweight", {"qweight", "qzeros", "scales"}, awq_shape},
    {PackFormat::kGptqV1, "qweight", {"qweight", "qzeros", "scales", "g_idx"}, gptq_shape},
    {PackFormat::kGptqV2, "qweight", {"qweight", "qzeros", "scales", "g_idx"}, gptq_shape},
    {PackFormat::kCompressedPack,
     "weight_packed",
     {"weight_packed", "weight_scale", "weight_shape", "weight_zero_point", "weight_g_idx"},
     ct_shape},
};

const PackRow& pack_row(PackFormat f) {
  for (const auto& r : kPackRows)
    if (r.format == f) return r;
  SQ_CHECK(false, "quantized_view: no row for format " << format_name(f));
}

}  // namespace

std::optional<QuantizedLayout> quantized_layout(const nlohmann::json& config,
                                                const std::string& context) {
  if (!config.is_object() || !config.contains("quantization_config")) return std::nullopt;
  const nlohmann::json& q = config["quantization_config"];
  SQ_REQUIRE(q.is_object(), context << ": quantization_config is not an object");
  const std::string method = lower(str_key(q, "quant_method", ""));
  for (const auto& r : kMethods)
    if (method == r.quant_method) {
      QuantizedLayout l = r.parse(q, context);
      SQ_REQUIRE(l.scheme.bits >= 2 && l.scheme.bits <= 8,
                 context << ": quantization_config bits must be 2..8, got " << l.scheme.bits);
      SQ_REQUIRE(l.scheme.group_size == -1 || l.scheme.group_size > 0,
                 context << ": quantization_config group_size must be -1 or positive, got "
                         << l.scheme.group_size);
      return l;
    }
  SQ_THROW(InputError,
           context << ": quantization_config.quant_method \"" << method
                   << "\" cannot be loaded (known: awq, gptq, compressed-tensors "
                      "pack-quantized; fp8, mxfp4, compressed-tensors float-quantized)");
}

const char* marker_suffix(PackFormat f) {
  return pack_row(f).marker;
}

const std::vector<std::string>& packed_suffixes(PackFormat f) {
  return pack_row(f).suffixes;
}

std::vector<int64_t> dequantized_shape(const QuantizedLayout& layout, const std::string& prefix,
                                       const StoredLookup& stored) {
  return pack_row(layout.format).shape(layout, prefix, stored);
}

at::Tensor dequantize_stored(const QuantizedLayout& layout, const std::string& prefix,
                             const StoredLookup& stored) {
  PackedLinear p;
  p.format = layout.format;
  p.scheme.bits = layout.scheme.bits;
  p.scheme.group_size = layout.scheme.group_size;
  for (const auto& suffix : packed_suffixes(layout.format)) {
    at::Tensor t = stored(prefix + "." + suffix);
    if (t.defined()) p.tensors[suffix] = t.contiguous();
  }
  const std::vector<int64_t> want = dequantized_shape(layout, prefix, stored);
  at::Tensor w = dequantize(p).to(at::kFloat).contiguous();
  SQ_CHECK(w.dim() == 2 && w.size(0) == want[0] && w.size(1) == want[1],
           "quantized linear " << prefix << ": dequantized to " << w.sizes() << ", expected ["
                               << want[0] << ", " << want[1] << "]");
  return w;
}

}  // namespace sq::io
