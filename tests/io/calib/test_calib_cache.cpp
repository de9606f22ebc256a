// The HDF5 calibration cache: hit when the whole request matches, rebuilt when any provenance
// field differs, and a corrupt or foreign file is a warning, never a crash.
#include <gtest/gtest.h>

#include <hdf5.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include "common/errors.h"
#include "io/calib/calib.h"
#include "io/hdf5/hdf5_store.h"
#include "io/tokenizer/tokenizer.h"
#include "test_paths.h"

using namespace sq;
namespace fs = std::filesystem;

namespace {

// Byte-level fake tokenizer whose hash is configurable (a "different tokenizer").
class ByteTokenizer : public io::Tokenizer {
 public:
  explicit ByteTokenizer(std::string hash = "bytes-v1") : hash_(std::move(hash)) {}
  std::vector<int32_t> encode(std::string_view text, bool add_special) const override {
    std::vector<int32_t> ids;
    if (add_special) ids.push_back(1);
    for (unsigned char c : text) ids.push_back(c + 3);
    return ids;
  }
  std::string decode(const std::vector<int32_t>&, bool) const override { return ""; }
  int64_t vocab_size() const override { return 259; }
  std::optional<int32_t> bos_id() const override { return 1; }
  std::optional<int32_t> eos_id() const override { return 2; }
  std::optional<int32_t> pad_id() const override { return 0; }
  std::string hash() const override { return hash_; }

 private:
  std::string hash_;
};

void write(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

std::string lines(const std::string& stem, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += stem + std::to_string(i) + " some words here\n";
  return out;
}

struct CacheFixture : ::testing::Test {
  test::TempDir dir;
  ByteTokenizer tok;
  io::CalibOptions opts;
  void SetUp() override {
    write(dir / "a.txt", lines("a", 300));
    write(dir / "b.txt", lines("b", 300));
    write(dir / "ds/wikitext2/train.txt", lines("wt", 300));
    write(dir / "ds/wikitext2/valid.txt", lines("wv", 300));
    opts.files = {dir / "a.txt"};
    opts.n_samples = 6;
    opts.seq_len = 32;
    opts.cache_path = dir / "cache/calib.h5";
    opts.data_dir = dir / "nodata";
    opts.dataset_dir = dir / "ds";
  }
  io::CalibSet build(const io::CalibOptions& o) { return io::build_calibration(o, tok); }
};

}  // namespace

TEST_F(CacheFixture, SecondBuildIsACacheHitWithSameTokens) {
  auto first = build(opts);
  EXPECT_FALSE(first.from_cache);
  EXPECT_EQ(first.cache_status, "built: absent");
  ASSERT_TRUE(fs::exists(opts.cache_path));
  auto second = build(opts);
  EXPECT_TRUE(second.from_cache);
  EXPECT_EQ(second.cache_status, "hit");
  EXPECT_TRUE(at::equal(first.tokens, second.tokens));
  EXPECT_TRUE(at::equal(first.mask, second.mask));
  EXPECT_EQ(first.provenance, second.provenance);
  for (const char* key : {"tokenizer", "sources", "splits", "seed", "seq_len", "count", "mode"}) {
    EXPECT_TRUE(second.provenance.contains(key)) << key;
  }
  // No temporary file left beside the cache.
  int files = 0;
  for (const auto& e : fs::directory_iterator(fs::path(opts.cache_path).parent_path())) {
    ++files;
    (void)e;
  }
  EXPECT_EQ(files, 1);
}

TEST_F(CacheFixture, EveryProvenanceFieldInvalidates) {
  struct Change {
    const char* field;
    std::function<void(io::CalibOptions&, std::string&)> apply;  // (options, tokenizer hash)
  };
  const std::vector<Change> changes = {
      {"tokenizer", [](io::CalibOptions&, std::string& h) { h = "other-tokenizer"; }},
      {"seed", [](io::CalibOptions& o, std::string&) { o.seed = 43; }},
      {"seq_len", [](io::CalibOptions& o, std::string&) { o.seq_len = 24; }},
      {"n_samples", [](io::CalibOptions& o, std::string&) { o.n_samples = 5; }},
      {"mode", [](io::CalibOptions& o, std::string&) { o.mode = io::CalibMode::Gptq; }},
      {"sources", [this](io::CalibOptions& o, std::string&) { o.files = {dir / "b.txt"}; }},
      {"sources",
       [this](io::CalibOptions& o, std::string&) {
         o.files = {dir / "a.txt", dir / "b.txt"};
       }},
      {"sources",
       [](io::CalibOptions& o, std::string&) {
         o.files = {};
         o.datasets = {"wikitext2"};
       }},
  };
  for (const auto& c : changes) {
    io::CalibOptions base = opts;
    fs::remove(base.cache_path);
    build(base);
    io::CalibOptions changed = base;
    std::string hash = "bytes-v1";
    c.apply(changed, hash);
    ByteTokenizer other(hash);
    auto set = io::build_calibration(changed, other);
    EXPECT_FALSE(set.from_cache) << c.field;
    EXPECT_EQ(set.cache_status, std::string("rebuilt: ") + c.field + " differs") << c.field;
    // The rebuilt file now serves the changed request.
    EXPECT_TRUE(io::build_calibration(changed, other).from_cache) << c.field;
  }
}

TEST_F(CacheFixture, SplitChangeInvalidates) {
  opts.files = {};
  opts.datasets = {"wikitext2"};
  build(opts);
  opts.splits = {"train", "valid"};
  auto set = build(opts);
  EXPECT_FALSE(set.from_cache);
  // Each source records its splits too, so the first differing field may be "sources".
  EXPECT_EQ(set.cache_status.rfind("rebuilt: ", 0), 0u) << set.cache_status;
  EXPECT_EQ(set.provenance["splits"], nlohmann::json({"train", "valid"}));
  EXPECT_TRUE(build(opts).from_cache);
}

TEST_F(CacheFixture, EditedSourceFileInvalidates) {
  build(opts);
  write(dir / "a.txt", lines("edited", 300));
  auto set = build(opts);
  EXPECT_FALSE(set.from_cache);
  EXPECT_EQ(set.cache_status, "rebuilt: sources differs");
}

TEST_F(CacheFixture, CorruptFileIsRebuiltWithWarning) {
  write(opts.cache_path, "this is not an HDF5 file at all");
  auto set = build(opts);
  EXPECT_FALSE(set.from_cache);
  ASSERT_EQ(set.warnings.size(), 1u);
  EXPECT_NE(set.warnings[0].find(opts.cache_path), std::string::npos) << set.warnings[0];
  EXPECT_EQ(set.cache_status, "rebuilt: unreadable");
  EXPECT_TRUE(build(opts).from_cache);

  // Truncated HDF5 file.
  const auto size = fs::file_size(opts.cache_path);
  fs::resize_file(opts.cache_path, size / 2);
  auto again = build(opts);
  EXPECT_FALSE(again.from_cache);
  EXPECT_EQ(again.cache_status, "rebuilt: unreadable");
}

TEST_F(CacheFixture, ForeignHdf5FileIsRebuiltWithWarning) {
  fs::create_directories(fs::path(opts.cache_path).parent_path());
  hid_t f = H5Fcreate(opts.cache_path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  ASSERT_GE(f, 0);
  H5Fclose(f);
  EXPECT_THROW(io::read_token_cache(opts.cache_path), BackendError);
  auto set = build(opts);
  EXPECT_FALSE(set.from_cache);
  EXPECT_EQ(set.warnings.size(), 1u);
  EXPECT_TRUE(build(opts).from_cache);
}

TEST(Hdf5Store, RoundTripAndMissing) {
  test::TempDir dir;
  EXPECT_FALSE(io::read_token_cache(dir / "absent.h5").has_value());
  io::TokenCache c;
  c.tokens = at::arange(12, at::kLong).reshape({3, 4}) * 1000003;
  c.mask = at::ones({3, 4}, at::kBool);
  c.mask[2][3] = false;
  c.provenance = {{"format", "test"}, {"text", "ünïcode ✓"}, {"n", 3}};
  io::write_token_cache(dir / "sub/c.h5", c);
  auto r = io::read_token_cache(dir / "sub/c.h5");
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(at::equal(r->tokens, c.tokens));
  EXPECT_TRUE(at::equal(r->mask, c.mask));
  EXPECT_EQ(r->provenance, c.provenance);
}

// The provenance lists every source's paths and the reader's warnings: beyond the 64 KB an HDF5
// attribute may hold (session 14: writing it as one failed with "object header message is too
// large", ending the run).
TEST(Hdf5Store, ProvenanceBeyondAnAttributesLimitRoundTrips) {
  test::TempDir dir;
  io::TokenCache c{at::zeros({1, 2}, at::kLong), at::ones({1, 2}, at::kBool), {}};
  c.provenance["paths"] = std::vector<std::string>(2000, std::string(100, 'p'));
  io::write_token_cache(dir / "c.h5", c);
  auto r = io::read_token_cache(dir / "c.h5");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->provenance, c.provenance);
}

TEST(Hdf5Store, UnwritableDestinationIsBackendError) {
  test::TempDir dir;
  write(dir / "file", "x");
  io::TokenCache c{at::zeros({1, 2}, at::kLong), at::ones({1, 2}, at::kBool), {{"a", 1}}};
  EXPECT_THROW(io::write_token_cache(dir / "file/c.h5", c), BackendError);
}
