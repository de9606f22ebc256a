// The BPE model of tokenizer.json (model.type == "BPE"), merging exactly as the tokenizers
// library: lowest merge rank first, leftmost first among equal ranks.
//
// Byte-level vocabularies (GPT-2 alphabet, when the pre-tokenizer contains ByteLevel) are
// re-keyed to raw bytes at load time, so words are merged straight from their UTF-8 bytes with
// no per-call alphabet mapping. Otherwise the initial symbols are UTF-8 characters, with
// byte_fallback (<0xHH>) or the unk token for characters outside the vocabulary.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace sq::io::tok {

// The largest token id tokenizer.json may use. Real vocabularies stay below 2^18; the bound keeps
// a hostile id from sizing the id → token table (2^24 entries is already 400 MB of strings).
constexpr int32_t kMaxTokenId = (1 << 24) - 1;

// `v` as a token id: a non-negative JSON integer ≤ kMaxTokenId; otherwise an InputError naming
// `where` ("model.vocab[\"clinic\"]", "added_tokens[3].id") and the value found.
int32_t checked_token_id(const nlohmann::json& v, const std::string& where);

class Bpe {
 public:
  Bpe(const nlohmann::json& model, bool byte_level);
  ~Bpe();

  // Appends the ids of one pre-token (UTF-8; raw bytes in byte-level mode).
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;

  // Vocabulary string of `id` as written in tokenizer.json (nullptr when absent).
  const std::string* id_to_token(int32_t id) const;
  // Id of a vocabulary string as written in tokenizer.json.
  std::optional<int32_t> token_to_id(const std::string& token) const;
  int32_t max_id() const { return static_cast<int32_t>(id_to_token_.size()) - 1; }

 private:
  struct Merge {
    int32_t rank, new_id;
  };
  std::optional<int32_t> lookup(std::string_view key) const;
  void merge_word(std::string_view word, std::vector<int32_t>& out) const;
  void initial_symbols(std::string_view word, std::vector<int32_t>& ids,
                       std::vector<uint32_t>& lens) const;

  bool byte_level_, byte_fallback_ = false, fuse_unk_ = false, ignore_merges_ = false;
  std::optional<int32_t> unk_;
  std::string prefix_, suffix_;
  std::unordered_map<std::string, int32_t> vocab_;  // model key (raw bytes if byte-level) -> id
  std::vector<std::string> id_to_token_;            // as written in tokenizer.json
  std::unordered_map<uint64_t, Merge> merges_;      // (left id << 32 | right id) -> merge
  int32_t byte_ids_[256];                           // byte-level: id of each single byte
  int32_t fallback_ids_[256];                       // byte_fallback: id of <0xHH>, -1 if none

  // Results for short pre-tokens; bounded, cleared when full.
  mutable std::mutex cache_mu_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

}  // namespace sq::io::tok
