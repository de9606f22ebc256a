// The compressed-tensors pack-quantized row (REFERENCE.md §3.3). Stored values are the signed
// code plus 2^(b-1); with unsigned canonical codes whose signed value is code − 2^(b-1), that is
// the code itself. Same for zero points.
#include "common/check.h"
#include "io/format/format_rows.h"

namespace sq::io::rows {
namespace {

std::string scheme_error(const QuantScheme& s) {
  // compressed-tensors 0.17+ packs 3-bit values across word boundaries, earlier versions ten per
  // word: no layout loads in every version (and vLLM's W*A16 path takes 4 and 8 bits only).
  if (s.bits == 3)
    return "pack-quantized: compressed-tensors 0.17 and later pack 3-bit values across int32 "
           "words, earlier versions ten to a word, so no 3-bit checkpoint loads in every "
           "version; use --format gptq";
  if (s.bits < 2 || s.bits > 8)
    return "pack-quantized: bits must be 2..8, got " + std::to_string(s.bits);
  return "";
}

PackedLinear pack(const QuantLinear& q, const PackOptions& opts) {
  const int b = q.scheme.bits;
  const int64_t mid = int64_t{1} << (b - 1);
  const bool sym =
      opts.symmetric.value_or(q.zeros.numel() == 0 || at::all(q.zeros == mid).item<bool>());
  if (sym)
    SQ_REQUIRE(q.zeros.numel() == 0 || at::all(q.zeros == mid).item<bool>(),
               "pack-quantized: symmetric output needs every zero point = " << mid);
  PackedLinear p;
  p.format = Format::kCompressedPack;
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

QuantLinear unpack(const PackedLinear& p) {
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
  q.g_idx = p.has("weight_g_idx") ? p.get("weight_g_idx").to(at::kInt)
                                  : default_g_idx(k, p.scheme.group_size);
  return q;
}

nlohmann::json config(const QuantSettings& s) {
  nlohmann::json weights = {
      {"num_bits", s.scheme.bits},
      {"type", "int"},
      {"symmetric", !s.scheme.zero_point},
      {"strategy", s.scheme.group_size > 0 ? "group" : "channel"},
      {"group_size",
       s.scheme.group_size > 0 ? nlohmann::json(s.scheme.group_size) : nlohmann::json()},
      // Act order with static groups keeps g_idx = k / G: llm-compressor's "weight" ordering.
      {"actorder", !s.scheme.act_order ? nlohmann::json()
                   : s.static_groups   ? nlohmann::json("weight")
                                       : nlohmann::json("group")},
      {"dynamic", false},
      {"observer", s.scheme.mse_norm > 0 ? "mse" : "minmax"}};
  return {{"quant_method", "compressed-tensors"},
          {"format", "pack-quantized"},
          {"quantization_status", "compressed"},
          {"ignore", s.modules_to_not_convert},
          {"config_groups",
           {{"group_0",
             {{"targets", {"Linear"}},
              {"weights", weights},
              {"input_activations", nullptr},
              {"output_activations", nullptr}}}}}};
}

std::map<std::string, nlohmann::json> side_files(const QuantSettings&) {
  return {};
}

Format read_config(const nlohmann::json& q, const std::string& ctx, QuantScheme* scheme) {
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
  scheme->bits = static_cast<int>(int_key(w, {"num_bits"}, 4, ctx));
  scheme->group_size = int_key(w, {"group_size"}, -1, ctx);
  return Format::kCompressedPack;
}

// weight_shape = [N, K] is stored itself.
std::vector<int64_t> stored_shape(const QuantScheme&, const std::string& p, const StoredLookup& s) {
  const at::Tensor shape = need(s, p, "weight_shape", "pack-quantized").to(at::kLong);
  SQ_REQUIRE(shape.numel() == 2, "quantized linear " << p
                                                     << ": weight_shape must hold 2 values, got "
                                                     << shape.numel());
  // weight_shape is data, not a header: it must agree with weight_packed [N, K·b/32] before
  // anything sizes a tensor from it (a hostile [2^58, 192] overflowed numel(); found by fuzzing).
  const at::Tensor packed = need(s, p, "weight_packed", "pack-quantized");
  const int64_t n = shape[0].item<int64_t>(), k = shape[1].item<int64_t>();
  SQ_REQUIRE(packed.dim() == 2 && n == packed.size(0) && k > 0 && k <= packed.size(1) * 32,
             "quantized linear " << p << ": weight_shape [" << n << ", " << k
                                 << "] does not match weight_packed " << packed.sizes());
  return {n, k};
}

}  // namespace

FormatRow compressed_pack() {
  return {Format::kCompressedPack,
          "pack-quantized",
          "compressed-tensors",
          true,
          scheme_error,
          "weight_packed",
          {"weight_packed", "weight_scale", "weight_shape", "weight_zero_point", "weight_g_idx"},
          pack,
          unpack,
          nullptr,
          nullptr,
          std::nullopt,
          "compressed-tensors",
          config,
          side_files,
          read_config,
          stored_shape,
          "stores its linears as Conv1D modules ([in, out] weights) and compressed-tensors "
          "quantizes torch.nn.Linear modules only, so no loader would apply the packed weights; "
          "use --format gptq"};
}

}  // namespace sq::io::rows
