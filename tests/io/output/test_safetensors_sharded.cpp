// Sharded model directories: the writer's splitting and index, the reader's errors, and the
// --max-shard-size parser.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/errors.h"
#include "io/model/model_weights.h"
#include "io/output/safetensors_writer.h"
#include "test_paths.h"

using namespace sq;
namespace fs = std::filesystem;

namespace {

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

void write_json(const std::string& path, const nlohmann::json& j) {
  std::ofstream(path) << j.dump();
}

std::vector<std::string> dir_listing(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

// The message of the InputError ModelWeights throws for `dir` ("" when none).
std::string weights_error(const std::string& dir) {
  try {
    io::ModelWeights w(dir);
  } catch (const Error& e) {
    if (e.code() != ExitCode::kUser) return std::string("WRONG CLASS: ") + e.what();
    return e.what();
  }
  return "";
}

bool has(const std::string& msg, const std::string& part) {
  return msg.find(part) != std::string::npos;
}

// Five tensors: 40, 40, 40, 200 and 4 bytes, written with a 100-byte limit.
std::vector<std::pair<std::string, at::Tensor>> five_tensors() {
  return {{"a", at::arange(10, at::kFloat)},
          {"b", at::arange(10, at::kInt)},
          {"c", at::full({20}, 3, at::kShort)},
          {"d", at::randn({5, 10})},
          {"e", at::tensor({7}, at::kInt)}};
}

std::string write_five(const test::TempDir& tmp) {
  const std::string dir = tmp / "model";
  io::ShardedWriter w(dir, 100);
  for (const auto& [n, t] : five_tensors()) w.add(n, t);
  w.finish();
  return dir;
}

}  // namespace

TEST(ShardedWriter, SplitsAtTheLimitAndWritesTheIndex) {
  test::TempDir tmp;
  const std::string dir = tmp / "model";
  io::ShardedWriter w(dir, 100);
  for (const auto& [n, t] : five_tensors()) w.add(n, t);
  // a+b = 80 bytes; c would make 120 -> new shard; d (200) alone; e after d.
  const std::vector<std::string> expect_files = {
      "model-00001-of-00004.safetensors", "model-00002-of-00004.safetensors",
      "model-00003-of-00004.safetensors", "model-00004-of-00004.safetensors"};
  EXPECT_EQ(w.finish(), expect_files);
  std::vector<std::string> listing = expect_files;
  listing.push_back("model.safetensors.index.json");
  EXPECT_EQ(dir_listing(dir), listing);  // no temporary files left behind

  const nlohmann::json index = read_json(dir + "/model.safetensors.index.json");
  const nlohmann::json expect_index = {{"metadata", {{"total_size", 324}}},
                                       {"weight_map",
                                        {{"a", expect_files[0]},
                                         {"b", expect_files[0]},
                                         {"c", expect_files[1]},
                                         {"d", expect_files[2]},
                                         {"e", expect_files[3]}}}};
  EXPECT_EQ(index, expect_index);

  io::ModelWeights mw(dir);
  EXPECT_EQ(mw.names(), (std::vector<std::string>{"a", "b", "c", "d", "e"}));
  for (const auto& [n, t] : five_tensors()) {
    if (n == "d") continue;  // random: checked below by shape
    EXPECT_TRUE(at::equal(mw.get(n), t)) << n;
  }
  EXPECT_EQ(mw.get("d").sizes(), (at::IntArrayRef{5, 10}));
  auto shard = io::SafetensorsFile::open(dir + "/" + expect_files[0]);
  EXPECT_EQ(shard->metadata().at("format"), "pt");
}

TEST(ShardedWriter, OneShardIsModelSafetensorsWithoutIndex) {
  test::TempDir tmp;
  const std::string dir = tmp / "one";
  io::ShardedWriter w(dir, io::parse_size("5GB"));
  for (const auto& [n, t] : five_tensors()) w.add(n, t);
  EXPECT_EQ(w.finish(), std::vector<std::string>{"model.safetensors"});
  EXPECT_EQ(dir_listing(dir), std::vector<std::string>{"model.safetensors"});
  EXPECT_EQ(io::ModelWeights(dir).names().size(), 5u);
}

TEST(ShardedWriter, DuplicateNameIsInputError) {
  test::TempDir tmp;
  io::ShardedWriter w(tmp / "m", 100);
  w.add("x", at::zeros({2}));
  EXPECT_THROW(w.add("x", at::zeros({2})), InputError);
}

TEST(ShardedWriter, AbandonedWriterLeavesNoTemporaryShards) {
  test::TempDir tmp;
  {
    io::ShardedWriter w(tmp / "m", 10);
    w.add("x", at::zeros({4}));
    w.add("y", at::zeros({4}));  // closes the first shard
  }
  EXPECT_TRUE(dir_listing(tmp / "m").empty());
}

// Memory held is one tensor: add() copies the bytes out at once (to the shard's spill file), so
// the caller's tensor may change or be freed right after; the file is the same as one written by
// write_safetensors from the original tensors, and no spill file is left.
TEST(ShardedWriter, TakesItsCopyAtAddAndMatchesTheOneFileWriter) {
  test::TempDir tmp;
  const std::string dir = tmp / "spill";
  io::ShardedWriter w(dir, io::parse_size("5GB"));
  std::vector<io::TensorToWrite> originals;
  for (auto& [n, t] : five_tensors()) {
    originals.push_back({n, t.clone(), {}});
    w.add(n, t);
    t.zero_();  // after add(): must not reach the file
  }
  EXPECT_EQ(w.finish(), std::vector<std::string>{"model.safetensors"});
  EXPECT_EQ(dir_listing(dir), std::vector<std::string>{"model.safetensors"});
  io::write_safetensors(tmp / "ref.safetensors", originals, {{"format", "pt"}});
  auto slurp = [](const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  EXPECT_EQ(slurp(dir + "/model.safetensors"), slurp(tmp / "ref.safetensors"));
}

TEST(ShardedWriter, AbandonedWriterLeavesNoSpillFile) {
  test::TempDir tmp;
  {
    io::ShardedWriter w(tmp / "m", 1000);
    w.add("x", at::zeros({4}));  // spilled, shard still open
  }
  EXPECT_TRUE(dir_listing(tmp / "m").empty());
}

TEST(ShardedReader, MissingShard) {
  test::TempDir tmp;
  const std::string dir = write_five(tmp);
  fs::remove(dir + "/model-00002-of-00004.safetensors");
  const std::string msg = weights_error(dir);
  EXPECT_TRUE(has(msg, "model.safetensors.index.json") &&
              has(msg, "model-00002-of-00004.safetensors") && has(msg, "missing"))
      << msg;
}

TEST(ShardedReader, TensorInIndexButAbsentFromShard) {
  test::TempDir tmp;
  const std::string dir = write_five(tmp);
  auto index = read_json(dir + "/model.safetensors.index.json");
  index["weight_map"]["ghost"] = "model-00001-of-00004.safetensors";
  write_json(dir + "/model.safetensors.index.json", index);
  const std::string msg = weights_error(dir);
  EXPECT_TRUE(has(msg, "\"ghost\"") && has(msg, "model-00001-of-00004.safetensors")) << msg;
}

TEST(ShardedReader, DuplicateTensorAcrossShards) {
  test::TempDir tmp;
  const std::string dir = tmp / "dup";
  fs::create_directories(dir);
  io::write_safetensors(dir + "/part-1.safetensors", {{"x", at::zeros({2}), {}}});
  io::write_safetensors(dir + "/part-2.safetensors",
                        {{"x", at::ones({2}), {}}, {"y", at::ones({2}), {}}});
  std::string msg = weights_error(dir);
  EXPECT_TRUE(has(msg, "\"x\"") && has(msg, "part-1.safetensors") && has(msg, "part-2.safetensors"))
      << msg;
  // Same with an index that assigns x to one of them.
  write_json(dir + "/model.safetensors.index.json",
             {{"metadata", {{"total_size", 24}}},
              {"weight_map", {{"x", "part-1.safetensors"}, {"y", "part-2.safetensors"}}}});
  msg = weights_error(dir);
  EXPECT_TRUE(has(msg, "\"x\"") && has(msg, "part-2.safetensors")) << msg;
}

TEST(ParseSize, HuggingFaceSemantics) {
  EXPECT_EQ(io::parse_size("5GB"), 5000000000ull);
  EXPECT_EQ(io::parse_size("500MB"), 500000000ull);
  EXPECT_EQ(io::parse_size("2GiB"), 2147483648ull);
  EXPECT_EQ(io::parse_size("64KiB"), 65536ull);
  EXPECT_EQ(io::parse_size("100kb"), 12500ull);  // lower-case b: kilobits
  EXPECT_EQ(io::parse_size("5Gb"), 625000000ull);
  EXPECT_EQ(io::parse_size("1.5GB"), 1500000000ull);
  EXPECT_EQ(io::parse_size("123"), 123ull);
  EXPECT_EQ(io::parse_size("123B"), 123ull);
  EXPECT_EQ(io::parse_size("1TB"), 1000000000000ull);
  for (const char* bad : {"", "GB", "5XB", "abc", "0", "1.2.3GB", "-5GB"}) {
    try {
      io::parse_size(bad);
      ADD_FAILURE() << "no error for \"" << bad << "\"";
    } catch (const InputError& e) {
      EXPECT_TRUE(has(e.what(), std::string("\"") + bad + "\"")) << e.what();
    }
  }
}
