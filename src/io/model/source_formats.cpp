// Which stored tensors of an FP8 / MXFP4 checkpoint are weights in disguise (source_formats.h).
// The config says which scheme; the tensors' dtypes and names say which linears use it, so a
// checkpoint that leaves some linears in BF16 (lm_head, routers, DeepSeek's dense layers in some
// releases) needs no list.
#include <algorithm>
#include <cctype>
#include <sstream>

#include "common/check.h"
#include "io/model/source_formats.h"
#include "io/safetensors/shape_text.h"

namespace sq::io {
namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

// [rows, cols] of one scale block from a JSON pair (weight_block_size, block_structure).
void read_block(const nlohmann::json& j, const std::string& key, const std::string& ctx,
                SourceFormat& f) {
  SQ_REQUIRE(j.is_array() && j.size() == 2 && j[0].is_number_integer() &&
                 j[1].is_number_integer() && j[0].get<int64_t>() > 0 && j[1].get<int64_t>() > 0,
             ctx << ": quantization_config." << key
                 << " must be two positive integers [rows, cols], got " << j.dump());
  f.block_rows = j[0].get<int64_t>();
  f.block_cols = j[1].get<int64_t>();
}

SourceFormat parse_fp8(const nlohmann::json& q, const std::string& ctx) {
  SourceFormat f;
  f.scheme = SourceScheme::kFp8;
  f.scale_suffix = "weight_scale_inv";
  const std::string fmt = q.contains("fmt") && q["fmt"].is_string() ? lower(q["fmt"]) : "e4m3";
  SQ_REQUIRE(fmt == "e4m3", ctx << ": quantization_config.fmt \"" << fmt
                                << "\" is not supported for loading (only \"e4m3\")");
  if (q.contains("weight_block_size") && !q["weight_block_size"].is_null())
    read_block(q["weight_block_size"], "weight_block_size", ctx, f);
  return f;
}

SourceFormat parse_compressed_fp8(const nlohmann::json& q, const std::string& ctx) {
  SourceFormat f;
  f.scheme = SourceScheme::kCompressedFp8;
  f.scale_suffix = "weight_scale";
  SQ_REQUIRE(
      q.contains("config_groups") && q["config_groups"].is_object() && !q["config_groups"].empty(),
      ctx << ": compressed-tensors float-quantized needs a config_groups object");
  bool first = true;
  for (auto it = q["config_groups"].begin(); it != q["config_groups"].end(); ++it) {
    const nlohmann::json& g = it.value();
    SQ_REQUIRE(
        g.is_object() && g.contains("weights") && g["weights"].is_object(),
        ctx << ": quantization_config.config_groups." << it.key() << " has no \"weights\" object");
    const nlohmann::json& w = g["weights"];
    const std::string type = w.contains("type") && w["type"].is_string() ? lower(w["type"]) : "";
    const int64_t bits = w.contains("num_bits") && w["num_bits"].is_number_integer()
                             ? w["num_bits"].get<int64_t>()
                             : 8;
    SQ_REQUIRE(type == "float" && bits == 8,
               ctx << ": quantization_config.config_groups." << it.key() << ".weights is type \""
                   << type << "\" with " << bits
                   << " bits; float-quantized checkpoints load as FP8 (type \"float\", 8 bits)");
    SourceFormat g_f = f;
    if (w.contains("block_structure") && !w["block_structure"].is_null())
      read_block(w["block_structure"], "config_groups." + it.key() + ".weights.block_structure",
                 ctx, g_f);
    SQ_REQUIRE(first || (g_f.block_rows == f.block_rows && g_f.block_cols == f.block_cols),
               ctx << ": quantization_config.config_groups disagree on block_structure");
    f = g_f;
    first = false;
  }
  return f;
}

SourceFormat parse_mxfp4(const nlohmann::json&, const std::string&) {
  SourceFormat f;
  f.scheme = SourceScheme::kMxfp4;
  return f;
}

bool is_float_dtype(DType d) {
  return d == DType::F32 || d == DType::BF16 || d == DType::F16 || d == DType::F64;
}

// The scale of FP8 weight `w`: its dtype and its shape against the weight's, which gives the
// rows and columns one scale covers.
SourceTensor plan_fp8(const SourceFormat& f, const TensorInfo& w, const TensorInfo* scale,
                      const std::string& scale_name, const std::string& ctx) {
  SQ_REQUIRE(w.shape.size() == 2, ctx << ": FP8 tensor " << w.name << " is " << w.shape.size()
                                      << "-D " << shape_str(w.shape)
                                      << "; expected a 2-D linear weight [out, in]");
  SQ_REQUIRE(scale != nullptr,
             ctx << ": FP8 tensor " << w.name << " has no scale tensor " << scale_name);
  SQ_REQUIRE(is_float_dtype(scale->dtype), ctx << ": scale " << scale_name << " is "
                                               << dtype_name(scale->dtype)
                                               << "; expected F32, BF16 or F16");
  const int64_t N = w.shape[0], K = w.shape[1];
  std::vector<int64_t> s = scale->shape;
  while (s.size() > 2 && s.front() == 1) s.erase(s.begin());
  if (s.empty()) s = {1, 1};
  if (s.size() == 1) s = s[0] == 1 ? std::vector<int64_t>{1, 1} : std::vector<int64_t>{s[0], 1};
  SourceTensor t;
  t.name = w.name;
  t.shape = w.shape;
  t.data = w.name;
  t.scale = scale_name;
  if (f.block_rows > 0) {
    t.block_rows = f.block_rows;
    t.block_cols = f.block_cols;
  } else if (s[0] == 1 && s[1] == 1) {  // per tensor
    t.block_rows = N;
    t.block_cols = K;
  } else if (s[0] == N && s[1] == 1) {  // per output channel
    t.block_rows = 1;
    t.block_cols = K;
  } else {
    SQ_THROW(InputError, ctx << ": scale " << scale_name << " has shape " << shape_str(scale->shape)
                             << "; for weight " << w.name << " " << shape_str(w.shape)
                             << " expected [1] (per tensor) or [" << N
                             << ", 1] (per channel), or a block size in the config");
  }
  const std::vector<int64_t> want = {ceil_div(N, t.block_rows), ceil_div(K, t.block_cols)};
  SQ_REQUIRE(s == want, ctx << ": scale " << scale_name << " has shape " << shape_str(scale->shape)
                            << "; weight " << w.name << " " << shape_str(w.shape)
                            << " in blocks of [" << t.block_rows << ", " << t.block_cols
                            << "] needs " << shape_str(want));
  return t;
}

SourceTensor plan_mxfp4(const TensorInfo& blocks, const TensorInfo* scales,
                        const std::string& scales_name, const std::string& ctx) {
  SQ_REQUIRE(blocks.dtype == DType::U8, ctx << ": MXFP4 tensor " << blocks.name << " is "
                                            << dtype_name(blocks.dtype) << "; expected U8");
  SQ_REQUIRE(blocks.shape.size() == 4 && blocks.shape[3] == 16,
             ctx << ": MXFP4 tensor " << blocks.name << " has shape " << shape_str(blocks.shape)
                 << "; expected [experts, rows, in/32, 16]");
  SQ_REQUIRE(scales != nullptr,
             ctx << ": MXFP4 tensor " << blocks.name << " has no scale tensor " << scales_name);
  const std::vector<int64_t> want(blocks.shape.begin(), blocks.shape.end() - 1);
  SQ_REQUIRE(scales->dtype == DType::U8 && scales->shape == want,
             ctx << ": MXFP4 scales " << scales_name << " are " << dtype_name(scales->dtype) << " "
                 << shape_str(scales->shape) << "; expected U8 " << shape_str(want));
  SourceTensor t;
  t.name = blocks.name.substr(0, blocks.name.size() - 7);  // drop "_blocks"
  t.shape = {blocks.shape[0], blocks.shape[2] * 32, blocks.shape[1]};
  t.data = blocks.name;
  t.scale = scales_name;
  return t;
}

}  // namespace

const char* source_methods() {
  return "fp8, mxfp4, compressed-tensors (float-quantized)";
}

std::optional<SourceFormat> source_format(const nlohmann::json& config,
                                          const std::string& context) {
  if (!config.is_object() || !config.contains("quantization_config")) return std::nullopt;
  const nlohmann::json& q = config["quantization_config"];
  if (!q.is_object()) return std::nullopt;  // quantized_layout() names this error
  const std::string method =
      q.contains("quant_method") && q["quant_method"].is_string() ? lower(q["quant_method"]) : "";
  if (method == "fp8") return parse_fp8(q, context);
  if (method == "mxfp4") return parse_mxfp4(q, context);
  if (method == "compressed-tensors" && q.contains("format") && q["format"].is_string() &&
      q["format"].get<std::string>() == "float-quantized")
    return parse_compressed_fp8(q, context);
  return std::nullopt;
}

SourcePlan plan_source_tensors(const SourceFormat& f,
                               const std::map<std::string, const TensorInfo*>& stored,
                               const std::string& ctx) {
  SourcePlan plan;
  auto find = [&](const std::string& n) -> const TensorInfo* {
    auto it = stored.find(n);
    return it == stored.end() ? nullptr : it->second;
  };
  const bool fp8 = f.scheme != SourceScheme::kMxfp4;
  for (const auto& [name, info] : stored) {
    if (info->dtype == DType::F8_E5M2)
      SQ_THROW(InputError, ctx << ": tensor " << name
                               << " is F8_E5M2; only F8_E4M3 source weights can be loaded");
    if (info->dtype == DType::F8_E4M3) {
      SQ_REQUIRE(fp8, ctx << ": tensor " << name
                          << " is F8_E4M3 in an mxfp4 checkpoint; expected U8 *_blocks/_scales");
      SQ_REQUIRE(ends_with(name, ".weight"),
                 ctx << ": FP8 tensor " << name
                     << " is not a linear weight (\"*.weight\"); cannot dequantize it");
      const std::string scale = name.substr(0, name.size() - 6) + f.scale_suffix;
      plan.tensors[name] = plan_fp8(f, *info, find(scale), scale, ctx);
      continue;
    }
    if (fp8 && (ends_with(name, "." + f.scale_suffix) || ends_with(name, ".input_scale"))) {
      plan.hidden.push_back(name);
      continue;
    }
    if (!fp8 && ends_with(name, "_blocks")) {
      const std::string scales = name.substr(0, name.size() - 7) + "_scales";
      SourceTensor t = plan_mxfp4(*info, find(scales), scales, ctx);
      SQ_REQUIRE(!find(t.name),
                 ctx << ": " << t.name << " is stored both dequantized and as " << name);
      plan.hidden.push_back(name);
      plan.hidden.push_back(scales);
      plan.tensors[t.name] = t;
    }
  }
  return plan;
}

at::Tensor dequantize_source(const SourceTensor& t, const RawLookup& raw, at::ScalarType dtype,
                             at::Device device) {
  const at::Tensor data = raw(t.data).to(device);
  const at::Tensor scale = raw(t.scale).to(device);
  at::Tensor out;
  if (t.block_rows == 0) {
    out = dequant_mxfp4(data, scale).transpose(1, 2);
  } else {
    const int64_t R = ceil_div(t.shape[0], t.block_rows), C = ceil_div(t.shape[1], t.block_cols);
    out = dequant_fp8(data, scale.to(at::kFloat).reshape({R, C}), t.block_rows, t.block_cols);
  }
  SQ_CHECK(out.sizes().vec() == t.shape,
           "dequantized " << t.name << " to " << out.sizes() << ", planned " << shape_str(t.shape));
  return out.to(dtype).contiguous();
}

}  // namespace sq::io
