// tokenizer.json loading: the fuzzed bytes are the file; a tokenizer that loads must then encode
// and decode a fixed text (with special-token look-alikes and invalid UTF-8) without failing.
#include "fuzz_util.h"
#include "io/tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = sq::fuzz::write_file("tokenizer.json", data, size);
  std::unique_ptr<sq::io::Tokenizer> tok;
  sq::fuzz::expect_only_input_errors([&] { tok = sq::io::Tokenizer::load(path); });
  if (!tok) return 0;
  static const std::string text =
      "Hello <|begin_of_text|> wörld\n\n  def f(x):\treturn 12345 \xff\xc3 <unk> ab";
  sq::fuzz::expect_only_input_errors([&] {
    auto ids = tok->encode(text, true);
    (void)tok->decode(ids, false);
    (void)tok->decode(ids, true);
    (void)tok->vocab_size();
  });
  return 0;
}
