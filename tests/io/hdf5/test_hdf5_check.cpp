// read_string_attribute: the fixed-length string attribute read shared by the checkpoint records
// and the calibration cache (trailing NULs dropped, bytes kept as stored, other types refused).
#include <gtest/gtest.h>

#include <hdf5.h>

#include <string>

#include "common/errors.h"
#include "io/hdf5/hdf5_check.h"
#include "test_paths.h"

using namespace sq;

namespace {

// A new HDF5 file at `path` (closed by the handle).
io::H5Handle create_file(const std::string& path) {
  io::hdf5_silence_errors();
  return io::H5Handle(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
}

// Writes a scalar string attribute of `size` bytes (fixed) or variable length (size 0).
void write_attr(hid_t file, const char* name, const std::string& bytes, size_t size) {
  io::H5Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type.get(), size == 0 ? H5T_VARIABLE : size);
  H5Tset_cset(type.get(), H5T_CSET_UTF8);
  io::H5Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  io::H5Handle attr(H5Acreate2(file, name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT),
                    H5Aclose);
  if (size == 0) {
    const char* p = bytes.c_str();
    ASSERT_GE(H5Awrite(attr.get(), type.get(), &p), 0);
  } else {
    std::string buf = bytes;
    buf.resize(size, '\0');
    ASSERT_GE(H5Awrite(attr.get(), type.get(), buf.data()), 0);
  }
}

}  // namespace

TEST(Hdf5Check, ReadsFixedStringWithoutTrailingNuls) {
  test::TempDir dir;
  auto file = create_file(dir / "a.h5");
  ASSERT_GE(file.get(), 0);
  const std::string text = "{\"k\":\"ünïcode ✓\"}";  // UTF-8 bytes, kept as stored
  write_attr(file.get(), "exact", text, text.size());
  write_attr(file.get(), "padded", text, text.size() + 5);
  EXPECT_EQ(io::read_string_attribute(file.get(), "exact", "test file"), text);
  EXPECT_EQ(io::read_string_attribute(file.get(), "padded", "test file"), text);
}

TEST(Hdf5Check, VariableLengthStringIsRefusedNamingFileAndAttribute) {
  test::TempDir dir;
  auto file = create_file(dir / "v.h5");
  ASSERT_GE(file.get(), 0);
  write_attr(file.get(), "meta", "{}", 0);
  try {
    io::read_string_attribute(file.get(), "meta", "checkpoint x.h5");
    FAIL() << "no error";
  } catch (const BackendError& e) {
    EXPECT_STREQ(e.what(), "checkpoint x.h5: attribute meta is not a fixed-length string");
  }
}

TEST(Hdf5Check, MissingAttributeIsBackendError) {
  test::TempDir dir;
  auto file = create_file(dir / "m.h5");
  ASSERT_GE(file.get(), 0);
  EXPECT_THROW(io::read_string_attribute(file.get(), "absent", "test file"), BackendError);
}

TEST(Hdf5Check, WrittenStringAttributeIsFixedUtf8AndReadsBack) {
  test::TempDir dir;
  auto file = create_file(dir / "w.h5");
  ASSERT_GE(file.get(), 0);
  const std::string text = "{\"k\":\"ünïcode ✓\"}";
  io::write_string_attribute(file.get(), "meta", text);
  io::write_string_attribute(file.get(), "empty", "");
  EXPECT_EQ(io::read_string_attribute(file.get(), "meta", "test file"), text);
  EXPECT_EQ(io::read_string_attribute(file.get(), "empty", "test file"), "");
  // Stored as the reader requires: a fixed-length UTF-8 string of exactly the text's bytes.
  io::H5Handle attr(H5Aopen(file.get(), "meta", H5P_DEFAULT), H5Aclose);
  io::H5Handle type(H5Aget_type(attr.get()), H5Tclose);
  EXPECT_EQ(H5Tis_variable_str(type.get()), 0);
  EXPECT_EQ(H5Tget_cset(type.get()), H5T_CSET_UTF8);
  EXPECT_EQ(H5Tget_size(type.get()), text.size());
  // A second attribute of the same name is HDF5's error, reported as BackendError.
  EXPECT_THROW(io::write_string_attribute(file.get(), "meta", "x"), BackendError);
}
