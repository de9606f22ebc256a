// Writer round trips and the reader's validation: every malformed file is an InputError (exit 2)
// whose message names the file and, where one is involved, the tensor.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/errors.h"
#include "io/output/safetensors_writer.h"
#include "io/safetensors/safetensors.h"
#include "io/safetensors/tensor.h"
#include "test_paths.h"

using namespace sq;

namespace {

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// A file built by hand: header JSON (unpadded) + `data` bytes, with an optional header-length
// override and extra bytes.
std::string raw_file(const std::string& header, const std::string& data,
                     int64_t length_override = -1) {
  const uint64_t n = length_override >= 0 ? length_override : header.size();
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xFF);
  return out + header + data;
}

// Opens `bytes` as a file; returns the InputError message ("" when no error, or a note when the
// error has the wrong class).
std::string open_error(const test::TempDir& dir, const std::string& bytes) {
  const std::string path = dir / "bad.safetensors";
  write_bytes(path, bytes);
  try {
    io::SafetensorsFile::open(path);
  } catch (const Error& e) {
    if (e.code() != ExitCode::kUser) return std::string("WRONG CLASS: ") + e.what();
    return e.what();
  }
  return "";
}

bool has(const std::string& msg, const std::string& part) {
  return msg.find(part) != std::string::npos;
}

const std::string kF32x2 = R"("w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";

}  // namespace

TEST(SafetensorsWriter, RoundTripsEveryDtypeAndShape) {
  test::TempDir dir;
  std::vector<io::TensorToWrite> in;
  for (io::DType d : io::all_dtypes()) {
    const std::string n = io::dtype_name(d);
    if (d == io::DType::F8_E4M3 || d == io::DType::F8_E5M2) {
      // 0x38 = 1.0 in E4M3 (bias 7); 0x3C = 1.0 in E5M2 (bias 15); 0xC0 = -2.0 in both.
      at::Tensor raw = at::tensor({0x38, 0xC0, 0x00, 0x3C}, at::kByte).reshape({2, 2});
      if (d == io::DType::F8_E5M2)
        raw = at::tensor({0x3C, 0xC0, 0x00, 0x38}, at::kByte).reshape({2, 2});
      in.push_back({n, raw, d});
      continue;
    }
    const at::ScalarType s = io::to_scalar_type(d);
    at::Tensor t = d == io::DType::BOOL ? at::rand({3, 4}) > 0.5 : (at::randn({3, 4}) * 100).to(s);
    in.push_back({n, t, {}});
    in.push_back({n + ".scalar", at::randn({}).mul(7).to(s), {}});
    in.push_back({n + ".empty", at::empty({0, 5}, s), {}});
  }
  in.push_back({"strided", at::arange(12, at::kLong).reshape({3, 4}).t(), {}});
  const std::map<std::string, std::string> meta = {{"format", "pt"}, {"note", "é \"quoted\""}};
  io::write_safetensors(dir / "a.safetensors", in, meta);
  EXPECT_FALSE(std::filesystem::exists(dir / "a.safetensors.tmp"));

  auto f = io::SafetensorsFile::open(dir / "a.safetensors");
  EXPECT_EQ(f->metadata(), meta);
  EXPECT_EQ(f->tensors().size(), in.size());
  for (const auto& t : in) {
    SCOPED_TRACE(t.name);
    const auto& info = f->at(t.name);
    EXPECT_EQ(info.shape, t.tensor.sizes().vec());
    if (t.dtype) {
      EXPECT_EQ(info.dtype, *t.dtype);
      EXPECT_EQ(std::memcmp(f->data(info), t.tensor.contiguous().data_ptr(), 4), 0);
      continue;
    }
    EXPECT_EQ(io::dtype_name(info.dtype),
              io::dtype_name(io::from_scalar_type(t.tensor.scalar_type())));
    EXPECT_TRUE(at::equal(io::view(f, info), t.tensor));
  }
  // F8 values decode to what the bit patterns mean.
  at::Tensor e4 = io::view(f, f->at("F8_E4M3"));
  EXPECT_EQ(e4[0][0].item<float>(), 1.0f);
  EXPECT_EQ(e4[0][1].item<float>(), -2.0f);
  at::Tensor e5 = io::view(f, f->at("F8_E5M2"));
  EXPECT_EQ(e5[0][0].item<float>(), 1.0f);
  EXPECT_EQ(e5[0][1].item<float>(), -2.0f);

  // Header length is a multiple of 8 and the bytes are deterministic.
  const std::string bytes = read_bytes(dir / "a.safetensors");
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; --i) hlen = (hlen << 8) | static_cast<uint8_t>(bytes[i]);
  EXPECT_EQ(hlen % 8, 0u);
  std::reverse(in.begin(), in.end());
  io::write_safetensors(dir / "b.safetensors", in, meta);
  EXPECT_EQ(read_bytes(dir / "b.safetensors"), bytes);
}

TEST(SafetensorsWriter, ReproducesRustLibraryFilesByteForByte) {
  // The format fixtures were written by the safetensors Rust library (no metadata).
  if (!test::have_shared("fixtures/formats/awq_w4_g64.safetensors")) GTEST_SKIP();
  test::TempDir dir;
  for (const char* name : {"awq_w4_g64", "gptq_w3_g64_sym", "gptq_w4_g64_asym"}) {
    const std::string src = test::shared(std::string("fixtures/formats/") + name + ".safetensors");
    auto f = io::SafetensorsFile::open(src);
    std::vector<io::TensorToWrite> ts;
    for (const auto& t : f->tensors()) ts.push_back({t.name, io::view(f, t), {}});
    io::write_safetensors(dir / "out.safetensors", ts);
    EXPECT_EQ(read_bytes(dir / "out.safetensors"), read_bytes(src)) << name;
  }
}

TEST(SafetensorsWriter, RejectsBadArguments) {
  test::TempDir dir;
  EXPECT_THROW(io::write_safetensors(dir / "x.safetensors",
                                     {{"a", at::zeros({2}), {}}, {"a", at::zeros({2}), {}}}),
               InputError);
  EXPECT_THROW(
      io::write_safetensors(dir / "x.safetensors", {{"f8", at::zeros({2}), io::DType::F8_E4M3}}),
      InputError);
  EXPECT_THROW(
      io::write_safetensors(dir / "x.safetensors", {{"f", at::zeros({2}), io::DType::F16}}),
      InputError);
}

TEST(SafetensorsReader, HeaderLengthLargerThanFile) {
  test::TempDir dir;
  const std::string msg = open_error(dir, raw_file("{}", "", 1000));
  EXPECT_TRUE(has(msg, "bad.safetensors") && has(msg, "header length")) << msg;
}

TEST(SafetensorsReader, TruncatedBeforeHeaderLength) {
  test::TempDir dir;
  const std::string msg = open_error(dir, std::string(5, '\0'));
  EXPECT_TRUE(has(msg, "bad.safetensors") && has(msg, "truncated")) << msg;
}

TEST(SafetensorsReader, InvalidJson) {
  test::TempDir dir;
  const std::string msg = open_error(dir, raw_file("{\"w\": [", ""));
  EXPECT_TRUE(has(msg, "bad.safetensors") && has(msg, "invalid JSON")) << msg;
}

TEST(SafetensorsReader, UnknownDtypeName) {
  test::TempDir dir;
  const std::string msg =
      open_error(dir, raw_file(R"({"w":{"dtype":"F4","shape":[2],"data_offsets":[0,1]}})", "x"));
  EXPECT_TRUE(has(msg, "bad.safetensors") && has(msg, "\"w\"") && has(msg, "F4")) << msg;
}

TEST(SafetensorsReader, ShapeTimesDtypeDiffersFromByteRange) {
  test::TempDir dir;
  const std::string msg = open_error(
      dir,
      raw_file(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", std::string(8, 'x')));
  EXPECT_TRUE(has(msg, "bad.safetensors") && has(msg, "\"w\"") && has(msg, "12")) << msg;
}

TEST(SafetensorsReader, OffsetsOutOfBounds) {
  test::TempDir dir;
  const std::string msg = open_error(
      dir,
      raw_file(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", std::string(8, 'x')));
  EXPECT_TRUE(has(msg, "bad.safetensors") && has(msg, "\"w\"") && has(msg, "out of bounds")) << msg;
}

TEST(SafetensorsReader, GapBetweenTensors) {
  test::TempDir dir;
  const std::string msg =
      open_error(dir, raw_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                               R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                               std::string(12, 'x')));
  EXPECT_TRUE(has(msg, "bad.safetensors") && has(msg, "\"b\"") && has(msg, "gap")) << msg;
}

TEST(SafetensorsReader, OverlappingTensors) {
  test::TempDir dir;
  const std::string msg =
      open_error(dir, raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                               R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                               std::string(12, 'x')));
  EXPECT_TRUE(has(msg, "bad.safetensors") && has(msg, "\"b\"") && has(msg, "overlap")) << msg;
}

TEST(SafetensorsReader, TrailingBytes) {
  test::TempDir dir;
  const std::string msg = open_error(dir, raw_file("{" + kF32x2 + "}", std::string(12, 'x')));
  EXPECT_TRUE(has(msg, "bad.safetensors") && has(msg, "trailing")) << msg;
}

TEST(SafetensorsReader, TruncatedData) {
  // A valid file cut short: the last tensor no longer fits.
  test::TempDir dir;
  io::write_safetensors(dir / "ok.safetensors",
                        {{"a", at::zeros({4}), {}}, {"z", at::ones({4}), {}}});
  std::string bytes = read_bytes(dir / "ok.safetensors");
  const std::string msg = open_error(dir, bytes.substr(0, bytes.size() - 3));
  EXPECT_TRUE(has(msg, "bad.safetensors") && has(msg, "\"z\"")) << msg;
}

TEST(SafetensorsReader, MissingTensorLookupNamesFileAndTensor) {
  test::TempDir dir;
  io::write_safetensors(dir / "ok.safetensors", {{"a", at::zeros({4}), {}}});
  auto f = io::SafetensorsFile::open(dir / "ok.safetensors");
  try {
    f->at("nope");
    FAIL() << "no exception";
  } catch (const InputError& e) {
    EXPECT_TRUE(has(e.what(), "ok.safetensors") && has(e.what(), "nope")) << e.what();
  }
}
