// build_calibration: resolve sources, check the cache, sample each source, interleave, record
// provenance (contract in calib.h). The cache key is the whole request — including each source's
// content hash — so an edited corpus file can never be served stale tokens.
#include "io/calib/calib.h"

#include <algorithm>
#include <filesystem>
#include <optional>

#include "common/check.h"
#include "io/calib/calib_sample.h"
#include "io/calib/corpus.h"
#include "io/hdf5/hdf5_store.h"
#include "io/tokenizer/tokenizer.h"

namespace fs = std::filesystem;

namespace sq::io {
namespace {

constexpr const char* kFormat = "shardquant-calib-1";

std::vector<CorpusSource> load_sources(const CalibOptions& o, const std::string& data_dir,
                                       const std::string& dataset_dir,
                                       const std::vector<std::string>& splits) {
  std::vector<CorpusSource> out;
  std::vector<std::string> datasets = o.datasets;
  if (datasets.empty() && o.files.empty()) datasets = {"brown"};
  for (const auto& d : datasets) {
    out.push_back(d == "brown" ? load_brown(data_dir, splits)
                               : load_named_dataset(d, dataset_dir, splits));
  }
  for (const auto& f : o.files) out.push_back(load_text_file(f));
  return out;
}

// The first top-level key whose value differs (for the cache-miss note), or "" when equal.
std::string first_difference(const nlohmann::json& stored, const nlohmann::json& request) {
  for (auto it = request.begin(); it != request.end(); ++it) {
    if (!stored.contains(it.key()) || stored.at(it.key()) != it.value()) return it.key();
  }
  for (auto it = stored.begin(); it != stored.end(); ++it) {
    if (!request.contains(it.key())) return it.key();
  }
  return "";
}

// Returns the cached set when the file exists, is readable and was made for exactly `request`.
std::optional<CalibSet> try_cache(const std::string& path, const nlohmann::json& request,
                                  int64_t seq_len, CalibSet& note) {
  std::optional<TokenCache> cached;
  try {
    cached = read_token_cache(path);
  } catch (const Error& e) {
    note.warnings.push_back("calibration cache " + path + " is unusable (" + e.what() +
                            "); rebuilding it");
    note.cache_status = "rebuilt: unreadable";
    return std::nullopt;
  }
  if (!cached) {
    note.cache_status = "built: absent";
    return std::nullopt;
  }
  nlohmann::json stored = cached->provenance;
  const nlohmann::json count = stored.value("count", nlohmann::json());
  const nlohmann::json warnings = stored.value("warnings", nlohmann::json::array());
  stored.erase("count");
  stored.erase("warnings");
  const std::string diff = first_difference(stored, request);
  const bool shape_ok = count.is_number_integer() &&
                        cached->tokens.size(0) == count.get<int64_t>() &&
                        cached->tokens.size(1) == seq_len;
  if (!diff.empty() || !shape_ok || !warnings.is_array()) {
    note.cache_status = "rebuilt: " + (diff.empty() ? std::string("shape") : diff) + " differs";
    return std::nullopt;
  }
  CalibSet set;
  set.tokens = cached->tokens;
  set.mask = cached->mask;
  set.provenance = cached->provenance;
  for (const auto& w : warnings) {
    if (w.is_string()) set.warnings.push_back(w.get<std::string>());
  }
  set.from_cache = true;
  set.cache_status = "hit";
  return set;
}

}  // namespace

namespace {

// Samples per source: equal shares (the first n mod k sources get one more), or shares
// proportional to the sources' byte sizes by largest remainder (ties to the earlier source).
std::vector<int64_t> sample_shares(const std::vector<CorpusSource>& sources, int64_t n,
                                   CalibMix mix) {
  const auto k = static_cast<int64_t>(sources.size());
  std::vector<int64_t> out(sources.size());
  uint64_t total = 0;
  for (const auto& s : sources) total += s.bytes;
  if (mix == CalibMix::Equal || k == 1 || total == 0) {
    for (int64_t i = 0; i < k; ++i) out[i] = n / k + (i < n % k ? 1 : 0);
    return out;
  }
  std::vector<std::pair<double, int64_t>> remainders;
  int64_t given = 0;
  for (int64_t i = 0; i < k; ++i) {
    const double exact = static_cast<double>(n) * sources[i].bytes / total;
    out[i] = static_cast<int64_t>(exact);
    given += out[i];
    remainders.emplace_back(-(exact - out[i]), i);
  }
  std::sort(remainders.begin(), remainders.end());  // largest remainder first, then index
  for (int64_t j = 0; given < n; ++j, ++given) ++out[remainders[j % k].second];
  return out;
}

}  // namespace

CalibSet build_calibration(const CalibOptions& o, const Tokenizer& tok) {
  SQ_REQUIRE(o.n_samples >= 1, "--calib-size must be at least 1 (got " << o.n_samples << ")");
  SQ_REQUIRE(o.seq_len >= 1, "--seq_len must be at least 1 (got " << o.seq_len << ")");
  SQ_REQUIRE(!o.splits.empty(), "--calib-split is empty (expected train, valid and/or test)");
  std::vector<std::string> splits;
  for (const auto& s : o.splits) splits.push_back(normalize_split(s));
  const std::string data_dir = o.data_dir.empty() ? default_data_dir() : o.data_dir;
  const std::string dataset_dir =
      o.dataset_dir.empty() ? (fs::path(data_dir) / "datasets").string() : o.dataset_dir;

  const std::vector<CorpusSource> sources = load_sources(o, data_dir, dataset_dir, splits);
  nlohmann::json described = nlohmann::json::array();
  for (const auto& s : sources) described.push_back(s.describe());
  nlohmann::json request = {
      {"format", kFormat}, {"tokenizer", tok.hash()}, {"mode", calib_mode_name(o.mode)},
      {"seed", o.seed},    {"seq_len", o.seq_len},    {"n_samples", o.n_samples},
      {"splits", splits},  {"sources", described},
  };
  if (o.mix == CalibMix::Proportional && sources.size() > 1) request["mix"] = "proportional";

  CalibSet set;
  if (!o.cache_path.empty()) {
    if (auto hit = try_cache(o.cache_path, request, o.seq_len, set)) return std::move(*hit);
  }

  const int32_t pad = tok.pad_id().value_or(tok.eos_id().value_or(0));
  const auto k = static_cast<int64_t>(sources.size());
  std::vector<SourceSamples> per(sources.size());
  const std::vector<int64_t> wants = sample_shares(sources, o.n_samples, o.mix);
  for (int64_t i = 0; i < k; ++i) {
    const int64_t want = wants[i];
    SplitMix64 rng = SplitMix64::stream(o.seed, static_cast<uint64_t>(i));
    per[i] = o.mode == CalibMode::Awq ? sample_awq(sources[i], tok, want, o.seq_len, pad, rng)
                                      : sample_gptq(sources[i], tok, want, o.seq_len, pad, rng);
    if (!per[i].warning.empty()) set.warnings.push_back(per[i].warning);
  }

  // Round robin: sample j comes from source j mod k while every source still has rows.
  std::vector<const std::vector<int64_t>*> rows;
  std::vector<int64_t> valid;
  for (size_t r = 0;; ++r) {
    bool any = false;
    for (const auto& p : per) {
      if (r < p.rows.size()) {
        rows.push_back(&p.rows[r]);
        valid.push_back(p.valid[r]);
        any = true;
      }
    }
    if (!any) break;
  }
  const auto n = static_cast<int64_t>(rows.size());
  SQ_REQUIRE(n > 0,
             "no calibration sample could be made: every source is empty after "
             "tokenization ("
                 << nlohmann::json(set.warnings).dump() << ")");
  if (n < o.n_samples) {
    set.warnings.push_back("calibration: " + std::to_string(n) + " samples instead of the " +
                           std::to_string(o.n_samples) + " requested (not enough text)");
  }
  set.tokens = at::empty({n, o.seq_len}, at::kLong);
  set.mask = at::ones({n, o.seq_len}, at::kBool);
  auto* t = set.tokens.data_ptr<int64_t>();
  for (int64_t r = 0; r < n; ++r) {
    std::copy(rows[r]->begin(), rows[r]->end(), t + r * o.seq_len);
    if (valid[r] < o.seq_len) set.mask[r].narrow(0, valid[r], o.seq_len - valid[r]).fill_(false);
  }
  set.provenance = request;
  set.provenance["count"] = n;
  set.provenance["warnings"] = set.warnings;
  if (!o.cache_path.empty()) {
    write_token_cache(o.cache_path, {set.tokens, set.mask, set.provenance});
  }
  return set;
}

}  // namespace sq::io
