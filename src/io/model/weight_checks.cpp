#include "io/model/weight_checks.h"

#include <map>
#include <mutex>
#include <set>

#include "common/check.h"
#include "common/log.h"
#include "io/model/model_weights.h"

namespace sq::io {
namespace {

bool is_float(at::ScalarType s) {
  return s == at::kFloat || s == at::kDouble || s == at::kHalf || s == at::kBFloat16;
}

// Rows per chunk: the scan's temporaries (|x| and the row maxima) stay near 16 M elements
// whatever the tensor's size.
constexpr int64_t kChunkElems = int64_t(1) << 24;

std::string index_text(const at::Tensor& t, int64_t flat) {
  if (t.dim() == 0 || flat < 0) return "[]";
  std::vector<int64_t> idx(t.dim());
  for (int64_t d = t.dim() - 1; d >= 0; --d) {
    idx[d] = flat % t.size(d);
    flat /= t.size(d);
  }
  std::string s = "[";
  for (size_t i = 0; i < idx.size(); ++i) s += (i ? ", " : "") + std::to_string(idx[i]);
  return s + "]";
}

bool skip_zero_row_warning(const std::string& name) {
  for (const char* part : {"embed", "wte", "wpe", "lm_head", "norm"})
    if (name.find(part) != std::string::npos) return true;
  return name.size() < 7 || name.compare(name.size() - 7, 7, ".weight") != 0;
}

}  // namespace

RowScan scan_rows(const at::Tensor& t) {
  RowScan r;
  if (!is_float(t.scalar_type()) || t.numel() == 0) return r;
  const at::Tensor m = t.dim() >= 2 ? t.reshape({t.size(0), -1}) : t.reshape({1, -1});
  r.rows = m.size(0);
  const int64_t cols = std::max<int64_t>(m.size(1), 1);
  const int64_t step = std::max<int64_t>(1, kChunkElems / cols);
  for (int64_t r0 = 0; r0 < r.rows; r0 += step) {
    const at::Tensor c = m.narrow(0, r0, std::min(step, r.rows - r0));
    // amax propagates NaN, so a row maximum of |x| is finite exactly when the row is.
    const at::Tensor mx = c.abs().amax(1);
    r.zero_rows += mx.eq(0).sum().item<int64_t>();
    if (mx.isfinite().all().item<bool>()) continue;
    r.nan += c.isnan().sum().item<int64_t>();
    r.inf += c.isinf().sum().item<int64_t>();
    if (r.first_bad < 0) {
      const at::Tensor bad = c.isfinite().logical_not().reshape({-1}).nonzero();
      r.first_bad = r0 * m.size(1) + bad[0][0].item<int64_t>();
    }
  }
  return r;
}

void check_source_tensor(const std::string& file, const std::string& name, const at::Tensor& t) {
  const RowScan s = scan_rows(t);
  if (s.nan || s.inf)
    SQ_THROW(InputError, file << ": tensor \"" << name << "\" holds " << s.nan << " NaN and "
                              << s.inf << " infinite values (first at "
                              << index_text(t, s.first_bad)
                              << "); a weight must be finite to be quantized — re-export the "
                                 "checkpoint from a healthy copy");
  if (s.zero_rows && t.dim() == 2 && !skip_zero_row_warning(name))
    log()->warn("{}: tensor \"{}\": {} of {} rows are all zero (they quantize to exact zeros)",
                file, name, s.zero_rows, s.rows);
}

void check_source_once(const std::string& file, const std::string& name, const at::Tensor& t) {
  static std::mutex mu;
  static std::set<std::string> passed;
  const std::string key = file + '\n' + name;
  {
    std::lock_guard<std::mutex> lock(mu);
    if (passed.count(key)) return;
  }
  // Marked only once it passed: a reader that swallows the error (the page-in prefetcher) must
  // not hide it from the next get() of the same tensor. Two threads may both scan; harmless.
  check_source_tensor(file, name, t);
  std::lock_guard<std::mutex> lock(mu);
  passed.insert(key);
}

void check_output_tensor(const std::string& file, const std::string& name, const at::Tensor& t) {
  const RowScan s = scan_rows(t);
  SQ_CHECK(!s.nan && !s.inf, file << ": refusing to write tensor \"" << name << "\": it holds "
                                  << s.nan << " NaN and " << s.inf << " infinite values (first at "
                                  << index_text(t, s.first_bad) << ")");
}

std::string check_weight_dtypes(const ModelWeights& w, const std::string& torch_dtype,
                                const std::vector<std::string>& linear_weights) {
  auto floating = [](DType d) {
    return d == DType::F16 || d == DType::BF16 || d == DType::F32 || d == DType::F64;
  };
  for (const auto& n : linear_weights) {
    if (!w.has(n) || w.is_dequantized(n)) continue;
    const DType d = w.info(n).dtype;
    if (floating(d) || d == DType::F8_E4M3 || d == DType::F8_E5M2) continue;
    SQ_THROW(InputError, w.file_of(n) << ": tensor \"" << n << "\" is stored as " << dtype_name(d)
                                      << ", expected a floating type (config.json torch_dtype: "
                                      << (torch_dtype.empty() ? "not given" : torch_dtype)
                                      << "); is this a quantized checkpoint without its "
                                         "quantization_config?");
  }
  const std::map<std::string, DType> by_name = {
      {"bfloat16", DType::BF16}, {"float16", DType::F16}, {"float32", DType::F32}};
  auto want = by_name.find(torch_dtype);
  if (want == by_name.end()) return "";
  std::vector<std::string> odd;
  for (const auto& n : w.names()) {
    if (w.is_dequantized(n)) continue;
    const DType d = w.info(n).dtype;
    if (floating(d) && d != want->second)
      odd.push_back(n + " (" + dtype_name(d) + ", " + w.file_of(n) + ")");
  }
  if (odd.empty()) return "";
  std::string line = std::to_string(odd.size()) + " floating tensor(s) are not stored as " +
                     dtype_name(want->second) + " (config.json torch_dtype " + torch_dtype + "): ";
  for (size_t i = 0; i < odd.size() && i < 3; ++i) line += (i ? "; " : "") + odd[i];
  if (odd.size() > 3) line += "; and " + std::to_string(odd.size() - 3) + " more";
  return line +
         " — each is converted to the compute dtype when read, kept ones are written as "
         "stored";
}

}  // namespace sq::io
