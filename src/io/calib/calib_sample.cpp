// Both sampling modes. Units are encoded lazily in AWQ mode (only as many as needed), so a
// 128×512 request on a large corpus tokenizes a few hundred kilobytes, not the whole corpus.
#include "io/calib/calib_sample.h"

#include <algorithm>
#include <numeric>
#include <sstream>

#include "io/tokenizer/tokenizer.h"

namespace sq::io {
namespace {

// Characters per encode() call in GPTQ mode: large enough to amortize the call, small enough
// that a tokenizer never sees a multi-megabyte string.
constexpr size_t kChunkChars = 1 << 16;

std::string_view strip(std::string_view s) {
  const auto b = s.find_first_not_of(" \t\r\n\f\v");
  if (b == std::string_view::npos) return {};
  const auto e = s.find_last_not_of(" \t\r\n\f\v");
  return s.substr(b, e - b + 1);
}

// Appends one row made of ids[from, from+n), padded to seq_len.
void push_row(SourceSamples& out, const std::vector<int64_t>& ids, size_t from, int64_t n,
              int64_t seq_len, int32_t pad_id) {
  std::vector<int64_t> row(static_cast<size_t>(seq_len), pad_id);
  std::copy(ids.begin() + from, ids.begin() + from + n, row.begin());
  out.rows.push_back(std::move(row));
  out.valid.push_back(n);
}

}  // namespace

SourceSamples sample_awq(const CorpusSource& src, const Tokenizer& tok, int64_t want,
                         int64_t seq_len, int32_t pad_id, SplitMix64& rng) {
  SourceSamples out;
  if (want <= 0) return out;
  std::vector<size_t> order(src.units.size());
  std::iota(order.begin(), order.end(), size_t{0});
  shuffle_in_place(order, rng);

  const size_t need = static_cast<size_t>(want * seq_len);
  std::vector<int64_t> ids;
  ids.reserve(need + static_cast<size_t>(seq_len));
  size_t skipped_long = 0, used = 0;
  for (size_t idx : order) {
    if (ids.size() >= need) break;
    const std::string_view text = strip(src.units[idx]);
    if (text.empty()) continue;
    const std::vector<int32_t> enc = tok.encode(text, /*add_special_tokens=*/true);
    if (enc.empty()) continue;
    if (static_cast<int64_t>(enc.size()) > seq_len) {
      ++skipped_long;
      continue;
    }
    ids.insert(ids.end(), enc.begin(), enc.end());
    ++used;
  }
  const int64_t full = std::min<int64_t>(want, static_cast<int64_t>(ids.size()) / seq_len);
  for (int64_t b = 0; b < full; ++b) {
    push_row(out, ids, static_cast<size_t>(b * seq_len), seq_len, seq_len, pad_id);
  }
  if (full < want) {
    const int64_t tail = static_cast<int64_t>(ids.size()) - full * seq_len;
    if (tail > 0) push_row(out, ids, static_cast<size_t>(full * seq_len), tail, seq_len, pad_id);
    std::ostringstream os;
    os << "calibration source " << src.name << " has too little text for " << want << " samples of "
       << seq_len << " tokens (awq mode): " << used << " of " << src.units.size() << " texts used ("
       << skipped_long << " skipped as longer than seq_len), " << ids.size() << " tokens; using "
       << out.rows.size() << " samples" << (tail > 0 ? " (the last one padded and masked)" : "");
    out.warning = os.str();
  }
  return out;
}

SourceSamples sample_gptq(const CorpusSource& src, const Tokenizer& tok, int64_t want,
                          int64_t seq_len, int32_t pad_id, SplitMix64& rng) {
  SourceSamples out;
  if (want <= 0) return out;
  std::vector<int64_t> ids;
  std::string chunk;
  auto flush = [&] {
    if (chunk.empty()) return;
    const std::vector<int32_t> enc = tok.encode(chunk, /*add_special_tokens=*/false);
    ids.insert(ids.end(), enc.begin(), enc.end());
    chunk.clear();
  };
  for (size_t i = 0; i < src.units.size(); ++i) {
    chunk += src.units[i];
    if (i + 1 < src.units.size()) chunk += src.joiner;
    if (chunk.size() >= kChunkChars) flush();
  }
  flush();

  const int64_t total = static_cast<int64_t>(ids.size());
  if (total < seq_len) {
    if (total > 0) push_row(out, ids, 0, total, seq_len, pad_id);
    std::ostringstream os;
    os << "calibration source " << src.name << " has " << total << " tokens, fewer than one "
       << seq_len << "-token window (gptq mode, " << want << " requested); using "
       << out.rows.size() << " sample" << (total > 0 ? " padded and masked" : "s");
    out.warning = os.str();
    return out;
  }
  for (int64_t w = 0; w < want; ++w) {
    const uint64_t start = rng.below(static_cast<uint64_t>(total - seq_len + 1));
    push_row(out, ids, static_cast<size_t>(start), seq_len, seq_len, pad_id);
  }
  if (total < want * seq_len) {
    std::ostringstream os;
    os << "calibration source " << src.name << " has only " << total << " tokens for " << want
       << " random windows of " << seq_len << " tokens (gptq mode); the windows overlap";
    out.warning = os.str();
  }
  return out;
}

}  // namespace sq::io
