// Normalizers and pre-tokenizers of tokenizer.json (REFERENCE.md §5), built from their JSON
// objects. Each supported component is one row of a table in the .cpp; anything else is an
// InputError naming the component type.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace sq::io::tok {

// A PCRE2 pattern compiled with UTF|UCP and JIT, as the tokenizers library's Oniguruma regexes.
class Regex {
 public:
  explicit Regex(const std::string& pattern);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;
  // Calls fn(start, end) for each non-empty match, left to right, in valid UTF-8 text.
  template <typename Fn>
  void for_each_match(std::string_view text, Fn&& fn) const {
    size_t pos = 0, s, e;
    while (next(text, pos, s, e)) fn(s, e);
  }
  // Finds the next non-empty match at or after `pos`; advances pos past it.
  bool next(std::string_view text, size_t& pos, size_t& start, size_t& end) const;
  const std::string& pattern() const { return pattern_; }

 private:
  std::string pattern_;
  void* code_ = nullptr;  // pcre2_code_8*
};

// Normalizer: string -> string, applied to each segment between added tokens.
class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual void apply(std::string& s) const = 0;
  // `j` may be null (no normalizer): returns nullptr.
  static std::unique_ptr<Normalizer> from_json(const nlohmann::json& j);
};

// Pre-tokenizer: splits each piece into smaller pieces. `at_start` tells whether the piece
// starts at offset 0 of the original input (Metaspace's prepend_scheme "first").
class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  struct Piece {
    std::string text;
    bool at_start;
  };
  virtual void split(std::vector<Piece>& pieces) const = 0;
  // True when this pre-tokenizer (or one inside a Sequence) maps bytes to GPT-2's alphabet.
  virtual bool byte_level() const { return false; }
  static std::unique_ptr<PreTokenizer> from_json(const nlohmann::json& j);
};

}  // namespace sq::io::tok
