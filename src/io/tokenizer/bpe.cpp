// BPE merging with a min-heap of candidate pairs keyed by (rank, position), the same order the
// tokenizers library's Word::merge_all uses; stale heap entries are skipped on pop. Short
// pre-tokens are cached because natural text repeats them heavily.
#include "io/tokenizer/bpe.h"

#include <algorithm>
#include <cstdio>
#include <queue>

#include <nlohmann/json.hpp>

#include "common/check.h"
#include "io/tokenizer/unicode.h"

namespace sq::io::tok {

namespace {

constexpr size_t kCacheMaxWord = 64;
constexpr size_t kCacheMaxEntries = 1 << 18;

// Byte-level vocabulary string -> raw bytes; nullopt when it uses chars outside the alphabet.
std::optional<std::string> unbyte(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    int b = unicode::cp_to_byte(unicode::next_cp(s, i));
    if (b < 0) return std::nullopt;
    out.push_back(static_cast<char>(b));
  }
  return out;
}

std::pair<std::string, std::string> parse_merge(const nlohmann::json& m) {
  if (m.is_array()) {
    SQ_REQUIRE(m.size() == 2, "tokenizer.json: merge entry must be a pair, got " << m.dump());
    return {m[0].get<std::string>(), m[1].get<std::string>()};
  }
  const std::string& s = m.get_ref<const std::string&>();
  size_t sp = s.find(' ');
  SQ_REQUIRE(sp != std::string::npos && s.find(' ', sp + 1) == std::string::npos,
             "tokenizer.json: merge '" << s << "' is not two space-separated tokens");
  return {s.substr(0, sp), s.substr(sp + 1)};
}

}  // namespace

int32_t checked_token_id(const nlohmann::json& v, const std::string& where) {
  // A JSON float, a negative number or a boolean would convert to some int32 (or be undefined
  // behaviour) and index the id table out of bounds; the library itself reads ids as u32.
  SQ_REQUIRE(v.is_number_unsigned() && v.get<uint64_t>() <= static_cast<uint64_t>(kMaxTokenId),
             "tokenizer.json: " << where << " must be a token id, an integer in [0, " << kMaxTokenId
                                << "], got " << v.dump());
  return static_cast<int32_t>(v.get<uint64_t>());
}

Bpe::Bpe(const nlohmann::json& model, bool byte_level) : byte_level_(byte_level) {
  byte_fallback_ = model.value("byte_fallback", false);
  fuse_unk_ = model.value("fuse_unk", false);
  ignore_merges_ = model.value("ignore_merges", false);
  auto str_or_empty = [&](const char* k) {
    return model.contains(k) && model[k].is_string() ? model[k].get<std::string>() : "";
  };
  prefix_ = str_or_empty("continuing_subword_prefix");
  suffix_ = str_or_empty("end_of_word_suffix");
  SQ_REQUIRE(!(byte_level_ && (!prefix_.empty() || !suffix_.empty())),
             "tokenizer.json: byte-level BPE with continuing_subword_prefix/end_of_word_suffix "
             "is not supported");
  SQ_REQUIRE(model.value("dropout", nlohmann::json()).is_null(),
             "tokenizer.json: BPE dropout is not supported (encoding would be random)");

  const auto& vocab = model.at("vocab");
  SQ_REQUIRE(vocab.is_object(), "tokenizer.json: model.vocab must be an object {token: id}, got "
                                    << vocab.type_name());
  int32_t max_id = -1;
  for (const auto& [tok, id] : vocab.items())
    max_id = std::max(max_id, checked_token_id(id, "model.vocab[\"" + tok + "\"]"));
  id_to_token_.resize(max_id + 1);
  vocab_.reserve(vocab.size() * 2);
  for (const auto& [tok, idj] : vocab.items()) {
    const int32_t id = idj.get<int32_t>();  // range-checked above
    id_to_token_[id] = tok;
    if (!byte_level_) {
      vocab_.emplace(tok, id);
    } else if (auto raw = unbyte(tok)) {
      vocab_.emplace(std::move(*raw), id);
    }
  }
  if (model.contains("unk_token") && model["unk_token"].is_string()) {
    const std::string u = model["unk_token"].get<std::string>();
    auto it = vocab_.find(u);
    SQ_REQUIRE(it != vocab_.end(), "tokenizer.json: unk_token '" << u << "' is not in the vocab");
    unk_ = it->second;
  }
  for (int b = 0; b < 256; ++b) {
    auto it = vocab_.find(std::string(1, static_cast<char>(b)));
    byte_ids_[b] = it == vocab_.end() ? -1 : it->second;
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    auto f = vocab_.find(name);
    fallback_ids_[b] = f == vocab_.end() ? -1 : f->second;
  }

  const auto& merges = model.at("merges");
  merges_.reserve(merges.size() * 2);
  int32_t rank = 0;
  for (const auto& m : merges) {
    auto [a, b] = parse_merge(m);
    std::string ka = a, kb = b;
    if (byte_level_) {
      auto ra = unbyte(a), rb = unbyte(b);
      SQ_REQUIRE(ra && rb, "tokenizer.json: merge '" << a << " " << b
                                                     << "' is outside the byte-level alphabet");
      ka = *ra;
      kb = *rb;
    }
    auto ia = vocab_.find(ka), ib = vocab_.find(kb);
    std::string merged = ka + kb.substr(std::min(prefix_.size(), kb.size()));
    auto in = vocab_.find(merged);
    SQ_REQUIRE(ia != vocab_.end() && ib != vocab_.end() && in != vocab_.end(),
               "tokenizer.json: merge '" << a << " " << b << "' (rank " << rank
                                         << ") uses a token missing from the vocab");
    uint64_t key = (static_cast<uint64_t>(ia->second) << 32) | static_cast<uint32_t>(ib->second);
    merges_.emplace(key, Merge{rank, in->second});  // first occurrence wins, as in the library
    ++rank;
  }
}

Bpe::~Bpe() = default;

const std::string* Bpe::id_to_token(int32_t id) const {
  if (id < 0 || id >= static_cast<int32_t>(id_to_token_.size())) return nullptr;
  const std::string& s = id_to_token_[id];
  return s.empty() ? nullptr : &s;
}

std::optional<int32_t> Bpe::token_to_id(const std::string& token) const {
  if (!byte_level_) return lookup(token);
  auto raw = unbyte(token);
  return raw ? lookup(*raw) : std::nullopt;
}

std::optional<int32_t> Bpe::lookup(std::string_view key) const {
  auto it = vocab_.find(std::string(key));
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

void Bpe::initial_symbols(std::string_view word, std::vector<int32_t>& ids,
                          std::vector<uint32_t>& lens) const {
  // The library's chain for a symbol missing from the vocab: byte fallback on the symbol's
  // UTF-8 bytes, else the unk token (runs fused when fuse_unk), else the symbol is dropped.
  std::optional<std::pair<int32_t, uint32_t>> pending_unk;
  auto flush_unk = [&] {
    if (!pending_unk) return;
    ids.push_back(pending_unk->first);
    lens.push_back(pending_unk->second);
    pending_unk.reset();
  };
  auto known = [&](int32_t id, uint32_t len) {
    flush_unk();
    ids.push_back(id);
    lens.push_back(len);
  };
  auto unknown = [&](std::string_view symbol, uint32_t len) {
    if (byte_fallback_) {
      bool all = true;
      for (unsigned char b : symbol) all = all && fallback_ids_[b] >= 0;
      if (all) {
        // Before a pending unk, as the library adds them (it flushes the unk only on a known
        // symbol).
        for (unsigned char b : symbol) {
          ids.push_back(fallback_ids_[b]);
          lens.push_back(1);
        }
        return;
      }
    }
    if (!unk_) return;
    if (pending_unk && fuse_unk_) {
      pending_unk->second += len;
    } else {
      flush_unk();
      pending_unk = std::make_pair(*unk_, len);
    }
  };
  if (byte_level_) {
    // A vocab normally holds all 256 byte symbols; one that lacks some (a hostile or damaged
    // tokenizer.json: the fuzzer found it) takes the chain above with the byte's symbol
    // (checked against the tokenizers library: tests/io, TokenizerOracleMissingBytes).
    for (unsigned char c : word) {
      if (byte_ids_[c] >= 0) {
        known(byte_ids_[c], 1);
        continue;
      }
      std::string symbol;
      unicode::append_utf8(symbol, unicode::byte_to_cp()[c]);
      unknown(symbol, 1);
    }
    flush_unk();
    return;
  }
  std::string key;
  for (size_t i = 0; i < word.size();) {
    size_t start = i;
    unicode::next_cp(word, i);
    uint32_t len = static_cast<uint32_t>(i - start);
    key.assign(start > 0 ? prefix_ : std::string());
    key.append(word.substr(start, len));
    if (i == word.size()) key.append(suffix_);
    if (auto id = lookup(key)) {
      known(*id, len);
      continue;
    }
    unknown(word.substr(start, len), len);
  }
  flush_unk();
}

void Bpe::merge_word(std::string_view word, std::vector<int32_t>& out) const {
  std::vector<int32_t> ids;
  std::vector<uint32_t> lens;
  ids.reserve(word.size());
  lens.reserve(word.size());
  initial_symbols(word, ids, lens);
  const int n = static_cast<int>(ids.size());
  if (n <= 1) {
    out.insert(out.end(), ids.begin(), ids.end());
    return;
  }
  std::vector<int> prev(n), next(n);
  for (int i = 0; i < n; ++i) {
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  // Heap entries: (rank << 32 | pos), smallest first; new_id is re-derived on pop.
  std::priority_queue<uint64_t, std::vector<uint64_t>, std::greater<uint64_t>> heap;
  auto find_merge = [&](int l, int r) -> const Merge* {
    auto it = merges_.find((static_cast<uint64_t>(ids[l]) << 32) | static_cast<uint32_t>(ids[r]));
    return it == merges_.end() ? nullptr : &it->second;
  };
  auto push = [&](int l) {
    if (l < 0 || next[l] < 0) return;
    if (const Merge* m = find_merge(l, next[l]))
      heap.push((static_cast<uint64_t>(m->rank) << 32) | static_cast<uint32_t>(l));
  };
  for (int i = 0; i + 1 < n; ++i) push(i);
  while (!heap.empty()) {
    uint64_t top = heap.top();
    heap.pop();
    int l = static_cast<int>(top & 0xFFFFFFFFu);
    int32_t rank = static_cast<int32_t>(top >> 32);
    if (lens[l] == 0 || next[l] < 0) continue;
    int r = next[l];
    const Merge* m = find_merge(l, r);
    if (!m || m->rank != rank) continue;  // stale: a neighbour changed since the push
    ids[l] = m->new_id;
    lens[l] += lens[r];
    lens[r] = 0;
    next[l] = next[r];
    if (next[r] >= 0) prev[next[r]] = l;
    push(prev[l]);
    push(l);
  }
  for (int i = 0; i >= 0 && i < n; i = next[i]) out.push_back(ids[i]);
}

void Bpe::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    if (auto id = lookup(word)) {
      out.push_back(*id);
      return;
    }
  }
  const bool cacheable = word.size() <= kCacheMaxWord;
  std::string key;
  if (cacheable) {
    key.assign(word);
    std::lock_guard<std::mutex> lock(cache_mu_);
    auto it = cache_.find(key);
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  size_t before = out.size();
  merge_word(word, out);
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mu_);
    if (cache_.size() >= kCacheMaxEntries) cache_.clear();
    cache_.emplace(std::move(key), std::vector<int32_t>(out.begin() + before, out.end()));
  }
}

}  // namespace sq::io::tok
