// Internals of the tokenizer.json implementation shared by tokenizer*.cpp (not part of the
// public contract in tokenizer.h).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "io/tokenizer/bpe.h"
#include "io/tokenizer/pretokenize.h"
#include "io/tokenizer/tokenizer.h"

namespace sq::io::tok {

struct AddedToken {
  std::string content;
  int32_t id;
  bool special, normalized, lstrip, rstrip, single_word;
};

// Leftmost-longest matcher over added-token contents (a byte trie), as the library's
// Aho-Corasick with MatchKind::LeftmostLongest.
class AddedMatcher {
 public:
  void add(const std::string& content, int index);
  bool empty() const { return nodes_.size() <= 1; }
  // Longest token starting at text[pos]: index into the token table, or -1.
  int longest_at(std::string_view text, size_t pos, size_t& len) const;

 private:
  struct Node {
    int token = -1;
    std::vector<std::pair<unsigned char, int>> kids;  // sorted by byte
  };
  std::vector<Node> nodes_{1};
  bool first_byte_[256] = {};  // fast reject: no token starts with this byte
};

// One decoder step of tokenizer.json: tokens -> tokens (decode_chain in the library).
class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual void apply(std::vector<std::string>& tokens) const = 0;
  static std::unique_ptr<Decoder> from_json(const nlohmann::json& j);  // null json -> nullptr
};

// Post-processor template for a single sequence: ids before and after the sequence.
struct Template {
  std::vector<int32_t> before, after;
  std::optional<int32_t> first_special;
};
Template template_from_json(const nlohmann::json& j);

class JsonTokenizer : public Tokenizer {
 public:
  JsonTokenizer(const std::string& json_path, const std::string& config_path, bool apply_config);

  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens) const override;
  std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const override;
  int64_t vocab_size() const override { return vocab_size_; }
  std::optional<int32_t> bos_id() const override { return bos_; }
  std::optional<int32_t> eos_id() const override { return eos_; }
  std::optional<int32_t> pad_id() const override { return pad_; }
  std::string hash() const override { return hash_; }

 private:
  void split_added(std::string_view text, const AddedMatcher& m, size_t base,
                   std::vector<std::pair<size_t, size_t>>& plain, std::vector<int>& token_at) const;
  void encode_plain(std::string_view segment, bool at_start, std::vector<int32_t>& out) const;
  void apply_config(const nlohmann::json& cfg, bool change_template);
  std::optional<int32_t> token_id(const nlohmann::json& tok) const;

  std::vector<AddedToken> added_;
  std::unordered_map<int32_t, int> added_by_id_;
  std::unordered_map<std::string, int32_t> added_by_content_;
  AddedMatcher raw_matcher_, norm_matcher_;
  std::unique_ptr<Normalizer> normalizer_;
  std::unique_ptr<PreTokenizer> pre_;
  std::unique_ptr<Bpe> bpe_;
  Template template_;
  std::unique_ptr<Decoder> decoder_;
  int64_t vocab_size_ = 0;
  std::optional<int32_t> bos_, eos_, pad_;
  std::string hash_;
};

}  // namespace sq::io::tok
