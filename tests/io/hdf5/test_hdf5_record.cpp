// io::write_record / read_record (issue 22): the checkpoint record's meta grows with the done
// blocks' per-linear entries (about 0.3 KB per linear: 70 KB at the last block of Llama-3-8B,
// megabytes for a many-expert MoE), past the 64 KB an HDF5 attribute may hold in an object header
// by default; and its tensors come back bit for bit whatever their dtype.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <hdf5.h>

#include "io/hdf5/hdf5_check.h"
#include "io/hdf5/hdf5_record.h"
#include "test_paths.h"

using namespace sq;

TEST(Hdf5Record, MetaBeyondTheCompactAttributeLimitRoundTrips) {
  test::TempDir dir;
  for (const size_t n : {size_t{10}, size_t{65535}, size_t{70000}, size_t{5} << 20}) {
    SCOPED_TRACE(n);
    io::Record r;
    r.meta["blocks"] = std::string(n, 'x');
    const std::string path = dir / "rank-0.h5";
    io::write_record(path, r);
    const auto back = io::read_record(path);
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(back->meta.at("blocks").get<std::string>().size(), n);
  }
}

TEST(Hdf5Record, TensorsRoundTripBitForBit) {
  test::TempDir dir;
  io::Record r;
  r.tensors["x"] = at::randn({3, 5, 7}).to(at::kBFloat16);
  r.tensors["mask"] = at::rand({3, 5}) > 0.5;
  const std::string path = dir / "gen.h5";
  io::write_record(path, r);
  const auto back = io::read_record(path);
  ASSERT_TRUE(back.has_value());
  for (const auto& [name, t] : r.tensors) {
    SCOPED_TRACE(name);
    const at::Tensor& u = back->tensors.at(name);
    EXPECT_EQ(u.scalar_type(), t.scalar_type());
    EXPECT_TRUE(at::equal(u, t));
  }
}

// Records written before session 14 hold the meta as a root string attribute; they still read.
TEST(Hdf5Record, MetaAsARootAttributeStillReads) {
  test::TempDir dir;
  const std::string path = dir / "old.h5";
  {
    io::hdf5_silence_errors();
    io::H5Handle file(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
    ASSERT_GE(file.get(), 0);
    io::write_string_attribute(file.get(), "meta", R"({"next": 3, "tensors": {}})");
  }
  const auto back = io::read_record(path);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->meta.at("next").get<int>(), 3);
}

// A dataset whose size disagrees with the shape the meta gives it (a damaged or hand-edited
// record) is refused with the dataset and both sizes named, never read past its buffer.
TEST(Hdf5Record, DatasetSizeDisagreeingWithItsShapeIsRefused) {
  test::TempDir dir;
  const std::string path = dir / "damaged.h5";
  {
    io::hdf5_silence_errors();
    io::H5Handle file(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
    ASSERT_GE(file.get(), 0);
    const std::string meta = R"({"tensors": {"x": {"dtype": "Float", "shape": [4, 5]}}})";
    io::write_bytes_dataset(file.get(), "meta", meta.data(), meta.size());
    const std::vector<float> x(3 * 5, 1.0f);  // 60 bytes where the shape needs 80
    io::write_bytes_dataset(file.get(), "x", x.data(), x.size() * sizeof(float));
  }
  try {
    io::read_record(path);
    FAIL() << "read a 60-byte dataset into an 80-byte tensor";
  } catch (const BackendError& e) {
    EXPECT_NE(std::string(e.what()).find("dataset /x holds 60 bytes, its shape needs 80"),
              std::string::npos)
        << e.what();
  }
}
