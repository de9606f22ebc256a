// Encoding arbitrary bytes with real tokenizers: the house model's byte-level BPE (Llama-3 split
// regex) and a SentencePiece-style BPE with a normalizer and byte fallback (committed beside
// this file). The first byte picks the tokenizer and add_special; the rest is the text. The ids
// are decoded again, and the raw bytes are also decoded as a list of int32 ids (any value).
#include <cstring>
#include <vector>

#include "fuzz_util.h"
#include "io/tokenizer/tokenizer.h"

namespace {
std::vector<std::unique_ptr<sq::io::Tokenizer>>& tokenizers() {
  static std::vector<std::unique_ptr<sq::io::Tokenizer>> t = [] {
    std::vector<std::unique_ptr<sq::io::Tokenizer>> v;
    const std::string house = sq::fuzz::shared_dir() + "/models/house-llama-13m";
    if (std::filesystem::exists(house + "/tokenizer.json"))
      v.push_back(sq::io::Tokenizer::load(house));
    v.push_back(
        sq::io::Tokenizer::load(std::string(SQ_FUZZ_DIR) + "/data/spm_like_tokenizer.json"));
    return v;
  }();
  return t;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  auto& toks = tokenizers();
  const auto& tok = *toks[data[0] % toks.size()];
  const bool special = data[0] & 0x80;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  sq::fuzz::expect_only_input_errors([&] {
    auto ids = tok.encode(text, special);
    (void)tok.decode(ids, special);
    std::vector<int32_t> raw((size - 1) / 4);
    if (!raw.empty()) std::memcpy(raw.data(), data + 1, raw.size() * 4);
    (void)tok.decode(raw, special);
  });
  return 0;
}
