// Hugging Face tokenizer.json, encoded and decoded exactly as the `tokenizers` library does
// (REFERENCE.md §5). CONTRACT (stable API for calibration, eval and the tokenize subcommand):
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sq::io {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // `path` is a tokenizer.json file or a model directory holding tokenizer.json (and optionally
  // tokenizer_config.json). Unsupported components are an InputError naming them.
  static std::unique_ptr<Tokenizer> load(const std::string& path);

  // add_special_tokens = the post-processor's BOS/EOS template (as tokenizers' encode()).
  virtual std::vector<int32_t> encode(std::string_view text, bool add_special_tokens) const = 0;
  virtual std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const = 0;
  virtual int64_t vocab_size() const = 0;
  virtual std::optional<int32_t> bos_id() const = 0;
  virtual std::optional<int32_t> eos_id() const = 0;
  virtual std::optional<int32_t> pad_id() const = 0;
  // Stable content hash of the tokenizer files (hex), for calibration-cache provenance.
  virtual std::string hash() const = 0;
};

}  // namespace sq::io
