// Regression tests for hostile input files (issue 24): every case here crashed, was silently
// accepted, or ended as an internal error (exit 4) before; each must now be an InputError (exit
// 2) whose message names the file or key and the value found. The tokenizer cases edit one
// vocab entry of the house model's tokenizer.json ("clinic": 6821), as the issue's black-box
// mutator did; the config cases edit one key of the house model's config.json.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/errors.h"
#include "io/calib/corpus.h"
#include "io/format/pack.h"
#include "io/format/quantized_view.h"
#include "io/model/model_config.h"
#include "io/model/model_weights.h"
#include "io/output/safetensors_writer.h"
#include "io/safetensors/safetensors.h"
#include "io/safetensors/tensor.h"
#include "io/tokenizer/tokenizer.h"
#include "test_paths.h"

namespace {

using sq::io::Tokenizer;
const char* kHouse = "models/house-llama-13m";

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The message of the InputError `fn` throws ("" and a test failure when it throws nothing or
// another type).
template <typename Fn>
std::string input_error_of(Fn&& fn) {
  try {
    fn();
  } catch (const sq::InputError& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected an InputError, got: " << e.what();
    return "";
  }
  ADD_FAILURE() << "expected an InputError, nothing was thrown";
  return "";
}

// {value written, the value as the message shows it (JSON's dump)}.
using IdCase = std::pair<const char*, const char*>;
class HostileTokenizer : public ::testing::TestWithParam<IdCase> {};

// The house tokenizer.json with `"clinic": 6821` replaced by `"clinic": <value>`.
TEST_P(HostileTokenizer, BadVocabIdIsAnInputErrorNamingTheToken) {
  if (!sq::test::have_shared(kHouse)) GTEST_SKIP() << "house model absent";
  std::string text = slurp(sq::test::shared(kHouse) + "/tokenizer.json");
  const std::string entry = "\"clinic\": 6821";
  const size_t at = text.find(entry);
  ASSERT_NE(at, std::string::npos) << "house tokenizer.json changed: no " << entry;
  text.replace(at, entry.size(), std::string("\"clinic\": ") + GetParam().first);
  sq::test::TempDir dir;
  std::ofstream(dir / "tokenizer.json") << text;
  const std::string msg = input_error_of([&] { Tokenizer::load(dir / "tokenizer.json"); });
  EXPECT_NE(msg.find("clinic"), std::string::npos) << msg;
  EXPECT_NE(msg.find(GetParam().second), std::string::npos) << msg;
}

// -1 and 1e308 crashed `shardquant tokenize` (SIGSEGV); true and 2^40 were accepted silently.
INSTANTIATE_TEST_SUITE_P(Ids, HostileTokenizer,
                         ::testing::Values(IdCase{"-1", "-1"}, IdCase{"1e308", "1e+308"},
                                           IdCase{"0.5", "0.5"}, IdCase{"true", "true"},
                                           IdCase{"1099511627776", "1099511627776"},
                                           IdCase{"16777216", "16777216"}, IdCase{"\"7\"", "\"7\""},
                                           IdCase{"null", "null"}));

TEST(HostileTokenizerAdded, BadAddedTokenIdIsNamed) {
  sq::test::TempDir dir;
  std::ofstream(dir / "tokenizer.json") << R"({"added_tokens": [{"id": -5, "content": "<x>"}],
      "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}})";
  const std::string msg = input_error_of([&] { Tokenizer::load(dir / "tokenizer.json"); });
  EXPECT_NE(msg.find("added_tokens[0].id"), std::string::npos) << msg;
}

TEST(HostileTokenizerAdded, LargestAllowedIdLoads) {
  // The bound is on the id, not a change of behaviour for real files: a sparse id at the bound
  // still loads (and sizes the table to it).
  sq::test::TempDir dir;
  std::ofstream(dir / "tokenizer.json") << R"({"model": {"type": "BPE",
      "vocab": {"a": 0, "b": 1000}, "merges": []}})";
  auto tok = Tokenizer::load(dir / "tokenizer.json");
  EXPECT_EQ(tok->vocab_size(), 1001);
  EXPECT_EQ(tok->encode("ab", false), (std::vector<int32_t>{0, 1000}));
}

nlohmann::json house_config() {
  return nlohmann::json::parse(slurp(sq::test::shared(kHouse) + "/config.json"));
}

struct ConfigCase {
  const char* name;
  const char* pointer;                // JSON pointer of the key to set
  const char* value;                  // JSON
  const char* named;                  // the message must contain this
  bool drop_rope_parameters = false;  // transformers-4 keys are read only without them
};

class HostileConfig : public ::testing::TestWithParam<ConfigCase> {};

TEST_P(HostileConfig, WrongTypeIsAnInputErrorNamingTheKey) {
  if (!sq::test::have_shared(kHouse)) GTEST_SKIP() << "house model absent";
  const ConfigCase& c = GetParam();
  nlohmann::json j = house_config();
  if (c.drop_rope_parameters) j.erase("rope_parameters");
  j[nlohmann::json::json_pointer(c.pointer)] = nlohmann::json::parse(c.value);
  const std::string msg = input_error_of([&] { sq::io::parse_model_config(j, "cfg.json"); });
  EXPECT_NE(msg.find("cfg.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find(c.named), std::string::npos) << msg;
}

// "rope_type": -1 ended as "internal error … type must be string" (exit 4).
INSTANTIATE_TEST_SUITE_P(
    Keys, HostileConfig,
    ::testing::Values(
        ConfigCase{"rope_type", "/rope_parameters/rope_type", "-1", "rope_type"},
        ConfigCase{"rope_theta", "/rope_parameters/rope_theta", "\"big\"", "rope_theta"},
        ConfigCase{"partial", "/rope_parameters/partial_rotary_factor", "[1]",
                   "partial_rotary_factor"},
        ConfigCase{"by_layer_type", "/rope_parameters",
                   R"({"sliding_attention": {"rope_type": 3}})",
                   "rope_parameters.sliding_attention.rope_type"},
        ConfigCase{"scaling_type", "/rope_scaling", R"({"type": 3})", "rope_scaling.type", true},
        ConfigCase{"layer_types", "/layer_types", R"(["full_attention", 1])", "layer_types"}),
    [](const auto& info) { return std::string(info.param.name); });

// Found by fuzz_calib: a number too large for a double ended as an out_of_range JSON exception
// (exit 4) instead of the "not valid JSON" input error naming file and line.
TEST(HostileCalib, JsonlNumberOverflowIsAnInputErrorNamingTheLine) {
  sq::test::TempDir dir;
  std::ofstream(dir / "c.jsonl") << "{\"text\": \"fine\"}\n{\"text\": \"x\", \"n\": 5e999999}\n";
  const std::string msg = input_error_of([&] { sq::io::load_text_file(dir / "c.jsonl"); });
  EXPECT_NE(msg.find(dir / "c.jsonl:2: not valid JSON"), std::string::npos) << msg;
}

// Found by fuzz_quantized (UBSan): a header whose length is not a multiple of the element size
// leaves I32 data misaligned; typed reads through it were undefined behaviour. The view is now
// an aligned copy with the same values.
TEST(HostileSafetensors, MisalignedDataIsReadThroughAnAlignedCopy) {
  std::string header = R"({"a":{"dtype":"I32","shape":[3],"data_offsets":[0,12]}})";
  while (header.size() % 4 != 1) header += ' ';
  std::string bytes(8, '\0');
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>(n >> (8 * i));
  bytes += header;
  for (int32_t v : {7, -2, 1 << 30}) bytes.append(reinterpret_cast<const char*>(&v), 4);
  sq::test::TempDir dir;
  std::ofstream(dir / "m.safetensors", std::ios::binary) << bytes;
  auto f = sq::io::SafetensorsFile::open(dir / "m.safetensors");
  ASSERT_NE(reinterpret_cast<uintptr_t>(f->data(f->at("a"))) % 4, 0u)
      << "test needs misaligned data";
  const at::Tensor t = sq::io::view(f, f->at("a"));
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data_ptr()) % 4, 0u);
  EXPECT_EQ(t[0].item<int32_t>(), 7);
  EXPECT_EQ(t[1].item<int32_t>(), -2);
  EXPECT_EQ(t[2].item<int32_t>(), 1 << 30);
}

// Found by fuzz_quantized: a GPTQ checkpoint whose g_idx names a group that does not exist ended
// as an internal error (exit 4: "check ... failed"); it is the file's fault, an InputError.
TEST(HostileQuantized, GIdxOutOfRangeIsAnInputError) {
  const int64_t k = 64, n = 16, g = 32;
  sq::io::PackedLinear p;
  p.format = sq::io::Format::kGptqV2;
  p.scheme.bits = 4;
  p.scheme.group_size = g;
  p.tensors["qweight"] = at::zeros({k / 8, n}, at::kInt);
  p.tensors["qzeros"] = at::zeros({k / g, n / 8}, at::kInt);
  p.tensors["scales"] = at::ones({k / g, n}, at::kHalf);
  at::Tensor g_idx = at::zeros({k}, at::kInt);
  g_idx[5] = 7;  // only groups 0 and 1 exist
  p.tensors["g_idx"] = g_idx;
  const std::string msg = input_error_of([&] { sq::io::dequantize(p); });
  EXPECT_NE(msg.find("g_idx values must lie in 0..1"), std::string::npos) << msg;
  p.tensors["g_idx"] = at::arange(k, at::kInt).div(g, "floor").to(at::kInt);
  EXPECT_EQ(sq::io::dequantize(p).sizes(), (std::vector<int64_t>{n, k}));
}

// Found by fuzz_quantized (UBSan: signed overflow in TensorInfo::numel): a shape whose element
// count does not fit 64 bits, and a dimension above INT64_MAX, are input errors naming it.
TEST(HostileSafetensors, ShapeTooLargeIsAnInputError) {
  for (const char* shape : {"[2251799813685248,65472]", "[9223372036854775809]"}) {
    const std::string header =
        std::string(R"({"a":{"dtype":"F16","shape":)") + shape + R"(,"data_offsets":[0,0]}})";
    std::string bytes(8, '\0');
    for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>(uint64_t(header.size()) >> (8 * i));
    bytes += header;
    sq::test::TempDir dir;
    std::ofstream(dir / "m.safetensors", std::ios::binary) << bytes;
    const std::string msg =
        input_error_of([&] { sq::io::SafetensorsFile::open(dir / "m.safetensors"); });
    EXPECT_NE(msg.find(std::string("shape ") + shape + " is too large"), std::string::npos) << msg;
  }
}

// Found by fuzz_quantized (UBSan: numel() overflow of the virtual weight): compressed-tensors'
// weight_shape is data and must agree with weight_packed.
TEST(HostileQuantized, WeightShapeDisagreeingWithThePackedTensorIsAnInputError) {
  const auto lookup_with = [](std::vector<int64_t> shape) {
    return [shape](const std::string& name) -> at::Tensor {
      if (name == "l.weight_packed") return at::zeros({16, 8}, at::kInt);  // N 16, K 64 at 4 bits
      if (name == "l.weight_scale") return at::ones({16, 2}, at::kHalf);
      if (name == "l.weight_shape") return at::tensor(shape, at::kLong);
      return at::Tensor();
    };
  };
  sq::io::QuantizedLayout l;
  l.format = sq::io::Format::kCompressedPack;
  l.scheme.bits = 4;
  l.scheme.group_size = 32;
  EXPECT_EQ(sq::io::dequantized_shape(l, "l", lookup_with({16, 64})),
            (std::vector<int64_t>{16, 64}));
  for (const auto& bad :
       std::vector<std::vector<int64_t>>{{int64_t(1) << 58, 192}, {16, -64}, {16, 0}, {15, 64}}) {
    const std::string msg =
        input_error_of([&] { sq::io::dequantized_shape(l, "l", lookup_with(bad)); });
    EXPECT_NE(msg.find("does not match weight_packed"), std::string::npos) << msg;
  }
}

// Found by fuzz_index: a shard name longer than the file system allows made fs::exists throw
// filesystem_error (ENAMETOOLONG), an internal error; it is the index's fault.
TEST(HostileIndex, ShardNameTheFileSystemRefusesIsAnInputError) {
  sq::test::TempDir dir;
  const std::string name = std::string(300, 'A') + "-of-00003.safetensors";
  std::ofstream(dir / "model.safetensors.index.json")
      << nlohmann::json{{"weight_map", {{"x", name}}}}.dump();
  const std::string msg = input_error_of([&] { sq::io::ModelWeights w(dir.path()); });
  EXPECT_NE(msg.find("lists shard"), std::string::npos) << msg;
  EXPECT_NE(msg.find("cannot be looked up"), std::string::npos) << msg;
}

// Found by fuzz_index (session 14): {"weight_map": {"t": ""}} names the model directory itself
// as the shard; mmap refused it ("mmap failed: No such device", a system error, exit 3). Any
// listed shard that is not a regular file is the index's fault.
TEST(HostileIndex, ShardNamingADirectoryIsAnInputError) {
  sq::test::TempDir dir;
  std::filesystem::create_directory(dir / "sub");
  for (const std::string name : {"", ".", "sub"}) {
    SCOPED_TRACE("\"" + name + "\"");
    std::ofstream(dir / "model.safetensors.index.json")
        << nlohmann::json{{"weight_map", {{"t", name}}}}.dump();
    const std::string msg = input_error_of([&] { sq::io::ModelWeights w(dir.path()); });
    EXPECT_NE(msg.find("lists shard \"" + name + "\" which is not a file"), std::string::npos)
        << msg;
  }
}

// Found by fuzz_tokenizer_load (session 13): a byte-level vocab lacking the symbol of byte 62
// ('>') failed its encode with "check `byte_ids_[c] >= 0` failed" (an internal error, exit 4).
// Such a byte now takes the library's path for any unknown symbol (no unk token here: dropped;
// TokenizerOracleMissingBytes checks the ids against the library).
TEST(HostileTokenizerVocab, MissingByteSymbolIsDroppedNotAnInternalError) {
  const std::string path =
      sq::test::source_dir() + "/tests/fuzz/corpus/tokenizer_load/missing_byte_symbol";
  auto tok = Tokenizer::load(path);
  const std::vector<int32_t> with_gt = tok->encode("a>b", false);
  const std::vector<int32_t> without = tok->encode("ab", false);
  EXPECT_EQ(with_gt, without);  // '>' contributes nothing; the rest encodes as without it
  EXPECT_NO_THROW(tok->encode("Hello <|begin_of_text|> w\xc3\xb6rld >> \xff", true));
}

// Found by fuzz_quantized (session 13): a config.json that is valid JSON but not an object (here
// "9", then a NUL byte, where nlohmann ends the text) reached config.value(...) beside a
// safetensors file: "type_error.306: cannot use value() with number", an internal error.
TEST(HostileConfig, ConfigThatIsNotAnObjectIsAnInputErrorNamingTheFile) {
  sq::test::TempDir dir;
  sq::io::write_safetensors(dir / "model.safetensors", {{"x", at::zeros({2, 2})}});
  for (const std::string& text :
       {std::string("9"), std::string("9") + '\0' + "{\"model_type\": \"llama\"}",
        std::string("[1, 2]"), std::string("\"text\"")}) {
    std::ofstream(dir / "config.json", std::ios::binary) << text;
    const std::string msg = input_error_of([&] { sq::io::ModelWeights w(dir.path()); });
    EXPECT_NE(msg.find("config.json: expected a JSON object"), std::string::npos) << msg;
  }
}

}  // namespace
