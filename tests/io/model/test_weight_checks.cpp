// Bad weights (issue 24 point 3): NaN/Inf in a source tensor, all-zero rows, integer linear
// weights, a shard truncated after its header was read, and the final finiteness check of every
// written tensor. Expected values are counted by hand from the tensors built here.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "common/errors.h"
#include "io/model/model_weights.h"
#include "io/model/weight_checks.h"
#include "io/output/safetensors_writer.h"
#include "io/safetensors/safetensors.h"
#include "test_paths.h"

namespace {

namespace fs = std::filesystem;
using sq::io::scan_rows;

template <typename Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

TEST(ScanRows, CountsNonFiniteValuesAndZeroRows) {
  // 4 × 3: row 1 all zero, row 2 holds NaN at [2, 1] and +Inf at [2, 2], row 3 -Inf at [3, 0].
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> v = {1, 2, 3, 0, 0, 0, 4, nan, inf, -inf, 5, 6};
  at::Tensor t = at::from_blob(v.data(), {4, 3}, at::kFloat).clone();
  for (auto dtype : {at::kFloat, at::kBFloat16, at::kHalf, at::kDouble}) {
    const auto s = scan_rows(t.to(dtype));
    EXPECT_EQ(s.rows, 4);
    EXPECT_EQ(s.zero_rows, 1);
    EXPECT_EQ(s.nan, 1);
    EXPECT_EQ(s.inf, 2);
    EXPECT_EQ(s.first_bad, 7);  // [2, 1]
  }
  const auto ints = scan_rows(at::zeros({4, 3}, at::kInt));  // not scanned
  EXPECT_EQ(ints.rows, 0);
}

TEST(ScanRows, FindsANaNInTheLastElement) {
  at::Tensor t = at::ones({3, 5}, at::kFloat);
  t[2][4] = std::numeric_limits<float>::quiet_NaN();
  const auto s = scan_rows(t);
  EXPECT_EQ(s.nan, 1);
  EXPECT_EQ(s.first_bad, 14);
}

TEST(CheckSource, NonFiniteIsAnInputErrorNamingFileTensorAndIndex) {
  at::Tensor t = at::ones({2, 4}, at::kBFloat16);
  t[1][3] = std::numeric_limits<float>::infinity();
  const std::string msg = error_of([&] { sq::io::check_source_tensor("s.safetensors", "w", t); });
  EXPECT_NE(msg.find("s.safetensors"), std::string::npos) << msg;
  EXPECT_NE(msg.find("\"w\""), std::string::npos) << msg;
  EXPECT_NE(msg.find("0 NaN and 1 infinite"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[1, 3]"), std::string::npos) << msg;
  EXPECT_THROW(sq::io::check_source_tensor("s.safetensors", "w", t), sq::InputError);
  // All-zero rows are accepted (a warning is logged).
  EXPECT_NO_THROW(sq::io::check_source_tensor("s", "l.weight", at::zeros({3, 4})));
}

TEST(CheckOutput, NonFiniteScaleIsRefusedAndNothingIsWritten) {
  sq::test::TempDir dir;
  at::Tensor scales = at::ones({2, 2}, at::kHalf);
  scales[0][1] = std::numeric_limits<float>::quiet_NaN();
  const std::string path = dir / "out.safetensors";
  std::string msg;
  try {
    sq::io::write_safetensors(
        path, {{"l.scales", scales, {}}, {"l.qweight", at::zeros({2}, at::kInt), {}}});
  } catch (const sq::InternalError& e) {
    msg = e.what();
  }
  EXPECT_NE(msg.find("l.scales"), std::string::npos) << msg;
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(path));
  EXPECT_FALSE(fs::exists(path + ".tmp"));
}

// A model directory of one shard with tensors "a.weight" (F32 [3, 4]) and "b.weight".
class BadShard : public ::testing::Test {
 protected:
  void write(const at::Tensor& a, const at::Tensor& b) {
    sq::io::write_safetensors(dir_ / "model.safetensors",
                              {{"a.weight", a, {}}, {"b.weight", b, {}}});
  }
  // Overwrites element `flat` of float32 tensor `name` with `value` (the writer refuses to write
  // a non-finite value itself).
  void poke(const std::string& name, int64_t flat, float value) {
    auto f = sq::io::SafetensorsFile::open(dir_ / "model.safetensors");
    // header = file size − data size (tensors are contiguous up to the last one's end).
    const uint64_t at = (f->file_size() - f->tensors().back().end) + f->at(name).begin + flat * 4;
    f.reset();
    std::fstream io(dir_ / "model.safetensors", std::ios::in | std::ios::out | std::ios::binary);
    io.seekp(static_cast<std::streamoff>(at));
    io.write(reinterpret_cast<const char*>(&value), 4);
  }
  sq::test::TempDir dir_;
};

TEST_F(BadShard, NaNInASourceTensorIsNamedWhenRead) {
  write(at::ones({3, 4}), at::ones({2, 2}));
  poke("a.weight", 6, std::numeric_limits<float>::quiet_NaN());
  sq::io::ModelWeights w(dir_.path());
  EXPECT_NO_THROW(w.get("b.weight"));
  const std::string msg = error_of([&] { w.get("a.weight"); });
  EXPECT_NE(msg.find(dir_ / "model.safetensors"), std::string::npos) << msg;
  EXPECT_NE(msg.find("\"a.weight\" holds 1 NaN and 0 infinite values (first at [1, 2])"),
            std::string::npos)
      << msg;
}

TEST_F(BadShard, IntegerLinearWeightIsAnInputError) {
  write(at::ones({3, 4}), at::ones({2, 2}, at::kInt));
  sq::io::ModelWeights w(dir_.path());
  const std::string msg = error_of([&] {
    sq::io::check_weight_dtypes(w, "bfloat16", {"a.weight", "b.weight"});
  });
  EXPECT_NE(msg.find("\"b.weight\" is stored as I32"), std::string::npos) << msg;
  EXPECT_NE(msg.find("bfloat16"), std::string::npos) << msg;
}

TEST_F(BadShard, FloatTensorsOfAnotherDtypeAreCounted) {
  write(at::ones({3, 4}, at::kBFloat16), at::ones({2, 2}, at::kFloat));
  sq::io::ModelWeights w(dir_.path());
  const std::string line = sq::io::check_weight_dtypes(w, "bfloat16", {"a.weight"});
  EXPECT_NE(line.find("1 floating tensor(s) are not stored as BF16"), std::string::npos) << line;
  EXPECT_NE(line.find("b.weight (F32"), std::string::npos) << line;
  EXPECT_EQ(sq::io::check_weight_dtypes(w, "", {"a.weight"}), "");
}

TEST_F(BadShard, PermissionDeniedIsAnInputErrorNamingTheShard) {
  if (geteuid() == 0) GTEST_SKIP() << "root reads files whatever their mode";
  write(at::ones({3, 4}), at::ones({2, 2}));
  ::chmod((dir_ / "model.safetensors").c_str(), 0);
  const std::string msg = error_of([&] { sq::io::ModelWeights w(dir_.path()); });
  EXPECT_NE(msg.find("permission denied"), std::string::npos) << msg;
  EXPECT_NE(msg.find(dir_ / "model.safetensors"), std::string::npos) << msg;
}

// The shard shrinks after ModelWeights mapped it: reading the lost pages is SIGBUS, which the
// watch turns into exit 3 naming file and tensor.
TEST_F(BadShard, ShardTruncatedAfterItsHeaderWasReadExitsWith3NamingFileAndTensor) {
  // 2 MB tensor so that its last pages lie beyond the truncation point.
  write(at::ones({2, 4}), at::ones({512, 1024}));
  const std::string path = dir_ / "model.safetensors";
  EXPECT_EXIT(
      {
        sq::io::ModelWeights w(dir_.path());
        ::truncate(path.c_str(), 4096);
        (void)w.get("b.weight");
      },
      ::testing::ExitedWithCode(3),
      "input file shrank while being read \\(tensor \"b.weight\", byte [0-9]+ of the data "
      "section\\)");
}

}  // namespace
