// Tokenizer unit tests that need no oracle: the house model's contract (load from file or
// directory, BOS from the template, round trip), invalid UTF-8 repair (Unicode's "maximal
// subpart" rule), NFC facts from the Unicode standard, and clear errors for unsupported parts.
#include <gtest/gtest.h>

#include <fstream>

#include "common/errors.h"
#include "io/tokenizer/tokenizer.h"
#include "io/tokenizer/unicode.h"
#include "test_paths.h"

namespace {

using sq::io::Tokenizer;
namespace uc = sq::io::unicode;

const char* kHouse = "models/house-llama-13m";

TEST(TokenizerHouse, LoadsFromFileAndDirectoryAlike) {
  if (!sq::test::have_shared(kHouse)) GTEST_SKIP() << "house model absent";
  auto dir = Tokenizer::load(sq::test::shared(kHouse));
  auto file = Tokenizer::load(sq::test::shared(kHouse) + "/tokenizer.json");
  const std::string text = "The quick brown fox, 1234 times.\n  def f(x): return x";
  EXPECT_EQ(dir->encode(text, true), file->encode(text, true));
  EXPECT_EQ(dir->vocab_size(), 8192);
  EXPECT_EQ(dir->hash(), file->hash());
  EXPECT_EQ(dir->hash().size(), 16u);
}

TEST(TokenizerHouse, SpecialTokensFromConfigAndTemplate) {
  if (!sq::test::have_shared(kHouse)) GTEST_SKIP() << "house model absent";
  auto tok = Tokenizer::load(sq::test::shared(kHouse));
  // tokenizer.json lists <|begin_of_text|>=0, <|end_of_text|>=1, <|pad|>=2 (checked by hand).
  ASSERT_TRUE(tok->bos_id() && tok->eos_id() && tok->pad_id());
  EXPECT_EQ(*tok->bos_id(), 0);
  EXPECT_EQ(*tok->eos_id(), 1);
  EXPECT_EQ(*tok->pad_id(), 2);
  auto with = tok->encode("Hello world", true);
  auto without = tok->encode("Hello world", false);
  ASSERT_EQ(with.size(), without.size() + 1);
  EXPECT_EQ(with[0], 0);
  EXPECT_EQ(std::vector<int32_t>(with.begin() + 1, with.end()), without);
  EXPECT_EQ(tok->decode(without, false), "Hello world");
  EXPECT_EQ(tok->decode(with, true), "Hello world");
  EXPECT_EQ(tok->decode(with, false), "<|begin_of_text|>Hello world");
  EXPECT_TRUE(tok->encode("", false).empty());
}

TEST(TokenizerHouse, InvalidUtf8IsEncodedAsItsLossyRepair) {
  if (!sq::test::have_shared(kHouse)) GTEST_SKIP() << "house model absent";
  auto tok = Tokenizer::load(sq::test::shared(kHouse));
  EXPECT_EQ(tok->encode("a\xff"
                        "b",
                        false),
            tok->encode("a\xEF\xBF\xBD"
                        "b",
                        false));
  EXPECT_FALSE(tok->encode("\xc3", false).empty());
}

TEST(Unicode, LossyRepairFollowsMaximalSubparts) {
  const std::string r = "\xEF\xBF\xBD";
  EXPECT_EQ(uc::utf8_lossy("abc"), "abc");
  EXPECT_EQ(uc::utf8_lossy("\xF0\x9F\x98"), r);          // truncated 4-byte sequence
  EXPECT_EQ(uc::utf8_lossy("\xED\xA0\x80"), r + r + r);  // surrogate: 3 subparts
  EXPECT_EQ(uc::utf8_lossy("\xC0\xAF"), r + r);          // overlong lead
  EXPECT_EQ(uc::utf8_lossy("\xE2\x82x"), r + "x");
  EXPECT_EQ(uc::utf8_lossy("\xF4\x90\x80\x80"), r + r + r + r);  // above U+10FFFF
  EXPECT_TRUE(uc::valid_utf8("\xF0\x9F\x98\x80"));
}

TEST(Unicode, NfcComposesAndOrders) {
  EXPECT_EQ(uc::nfc("e\xCC\x81"), "\xC3\xA9");                     // e + U+0301 -> U+00E9
  EXPECT_EQ(uc::nfc("\xE1\x84\x80\xE1\x85\xA1"), "\xEA\xB0\x80");  // U+1100 U+1161 -> U+AC00
  EXPECT_EQ(uc::nfc("\xE2\x84\xAB"), "\xC3\x85");                  // U+212B ANGSTROM -> U+00C5
  // U+0307 (ccc 230) after U+0323 (ccc 220): canonical ordering swaps them; q has no composite.
  EXPECT_EQ(uc::nfc("q\xCC\x87\xCC\xA3"), "q\xCC\xA3\xCC\x87");
  EXPECT_EQ(uc::nfc("plain ascii"), "plain ascii");
}

class TokenizerErrors : public ::testing::Test {
 protected:
  std::string write(const std::string& body) {
    std::ofstream(dir_ / "tokenizer.json") << body;
    return dir_ / "tokenizer.json";
  }
  sq::test::TempDir dir_;
};

TEST_F(TokenizerErrors, UnigramModelIsNamed) {
  auto p = write(R"({"model": {"type": "Unigram", "vocab": [["a", 0.0]]}})");
  try {
    Tokenizer::load(p);
    FAIL() << "Unigram accepted";
  } catch (const sq::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("Unigram"), std::string::npos) << e.what();
  }
}

TEST_F(TokenizerErrors, UnsupportedNormalizerIsNamed) {
  auto p = write(R"({"normalizer": {"type": "BertNormalizer"},
                     "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}})");
  try {
    Tokenizer::load(p);
    FAIL() << "BertNormalizer accepted";
  } catch (const sq::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("BertNormalizer"), std::string::npos) << e.what();
  }
}

TEST_F(TokenizerErrors, MissingFileIsInputError) {
  EXPECT_THROW(Tokenizer::load(dir_.path()), sq::InputError);
}

// A tiny hand-built SentencePiece-style BPE: merge ranks decide, unknown chars fall back to
// bytes, both merge spellings load.
TEST_F(TokenizerErrors, TinyBpeMergesByRank) {
  auto p = write(R"({"model": {"type": "BPE", "byte_fallback": true, "unk_token": "<unk>",
      "vocab": {"<unk>": 0, "a": 1, "b": 2, "c": 3, "ab": 4, "bc": 5, "abc": 6, "<0xC3>": 7, "<0xA9>": 8},
      "merges": [["b", "c"], "a b", "a bc"]},
      "decoder": {"type": "Sequence", "decoders": [{"type": "ByteFallback"}, {"type": "Fuse"}]}})");
  auto tok = Tokenizer::load(p);
  EXPECT_EQ(tok->encode("abc", false), (std::vector<int32_t>{6}));  // b c first, then a bc
  EXPECT_EQ(tok->encode("abab", false), (std::vector<int32_t>{4, 4}));
  EXPECT_EQ(tok->encode("\xC3\xA9"
                        "a",
                        false),
            (std::vector<int32_t>{7, 8, 1}));
  EXPECT_EQ(tok->decode({7, 8, 1}, false),
            "\xC3\xA9"
            "a");
  EXPECT_EQ(tok->decode({7, 1}, false),
            "\xEF\xBF\xBD"
            "a");  // lone byte: U+FFFD
}

}  // namespace
