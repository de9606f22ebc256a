// The registry's table (each row is built in its format's file) and the lookups by key.
#include "io/format/format_registry.h"

#include <algorithm>
#include <cctype>

#include "common/check.h"
#include "io/format/format_rows.h"

namespace sq::io {

const std::vector<FormatRow>& format_rows() {
  // A function-local static: the option table (another translation unit's static) reads it.
  static const std::vector<FormatRow> rows = {rows::awq_gemm(), rows::gptq(Format::kGptqV1),
                                              rows::gptq(Format::kGptqV2), rows::compressed_pack()};
  return rows;
}

const FormatRow& format_row(Format f) {
  for (const auto& r : format_rows())
    if (r.format == f) return r;
  SQ_THROW(InternalError, "format " << static_cast<int>(f) << " has no registry row");
}

const char* format_name(Format f) {
  return format_row(f).name;
}

const char* cli_name(Format f) {
  return format_row(f).cli_name;
}

std::vector<std::pair<const char*, Format>> cli_formats() {
  std::vector<std::pair<const char*, Format>> out;
  for (const auto& r : format_rows())
    if (r.selectable) out.emplace_back(r.cli_name, r.format);
  return out;
}

Format format_from_cli(const std::string& name) {
  std::string known;
  for (const auto& [n, f] : cli_formats()) {
    if (name == n) return f;
    known += (known.empty() ? "" : ", ") + std::string(n);
  }
  SQ_THROW(InputError, "unknown output format \"" << name << "\" (known: " << known << ")");
}

std::string scheme_error(Format f, const QuantScheme& s) {
  return format_row(f).scheme_error(s);
}

namespace rows {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

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

at::Tensor need(const StoredLookup& stored, const std::string& prefix, const std::string& suffix,
                const char* format) {
  at::Tensor t = stored(prefix + "." + suffix);
  SQ_REQUIRE(t.defined(), "quantized linear " << prefix << " (" << format << "): tensor " << prefix
                                              << "." << suffix << " is missing");
  SQ_REQUIRE(t.dim() >= 1, "quantized linear " << prefix << ": " << suffix << " is a scalar");
  return t;
}

}  // namespace rows
}  // namespace sq::io
