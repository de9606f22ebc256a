// HDF5 error descriptions and handle management (contract in hdf5_check.h).
#include "io/hdf5/hdf5_check.h"

#include <algorithm>
#include <string>

namespace sq::detail {
namespace {

herr_t collect(unsigned n, const H5E_error2_t* err, void* data) {
  auto* out = static_cast<std::string*>(data);
  if (!out->empty()) *out += "; ";
  *out += err->func_name ? err->func_name : "?";
  *out += ": ";
  *out += err->desc ? err->desc : "(no description)";
  return n < 3 ? 0 : 1;  // the innermost few entries say what went wrong; stop after them
}

}  // namespace

std::string BackendTraits<Hdf5>::describe(long long rc) {
  std::string out;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, collect, &out);
  H5Eclear2(H5E_DEFAULT);
  if (out.empty()) out = "returned " + std::to_string(rc);
  return out;
}

}  // namespace sq::detail

namespace sq::io {

void hdf5_silence_errors() {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
}

H5Handle& H5Handle::operator=(H5Handle&& o) noexcept {
  if (this != &o) {
    reset();
    id_ = o.id_;
    close_ = o.close_;
    o.id_ = -1;
  }
  return *this;
}

void H5Handle::reset() {
  if (id_ >= 0 && close_) close_(id_);
  id_ = -1;
}

std::string read_string_attribute(hid_t obj, const char* name, const std::string& what) {
  hid_t id;
  SQ_CALL(Hdf5, id = H5Aopen(obj, name, H5P_DEFAULT));
  H5Handle attr(id, H5Aclose);
  SQ_CALL(Hdf5, id = H5Aget_type(attr.get()));
  H5Handle ftype(id, H5Tclose);
  // A variable-length string would be read as a pointer into memory HDF5 allocated: refuse it
  // rather than read it as characters.
  htri_t variable;
  SQ_CALL(Hdf5, variable = H5Tis_variable_str(ftype.get()));
  if (H5Tget_class(ftype.get()) != H5T_STRING || variable > 0) {
    SQ_THROW(BackendError, what << ": attribute " << name << " is not a fixed-length string");
  }
  const size_t size = H5Tget_size(ftype.get());
  std::string text(size, '\0');
  SQ_CALL(Hdf5, id = H5Tcopy(H5T_C_S1));
  H5Handle mtype(id, H5Tclose);
  SQ_CALL(Hdf5, H5Tset_size(mtype.get(), size));
  // HDF5 converts no strings between character sets: read in the file's own.
  H5T_cset_t cset;
  SQ_CALL(Hdf5, cset = H5Tget_cset(ftype.get()));
  SQ_CALL(Hdf5, H5Tset_cset(mtype.get(), cset));
  SQ_CALL(Hdf5, H5Aread(attr.get(), mtype.get(), text.data()));
  while (!text.empty() && text.back() == '\0') text.pop_back();
  return text;
}

void write_string_attribute(hid_t obj, const char* name, const std::string& text) {
  hid_t id;
  SQ_CALL(Hdf5, id = H5Tcopy(H5T_C_S1));
  H5Handle type(id, H5Tclose);
  SQ_CALL(Hdf5, H5Tset_size(type.get(), std::max<size_t>(1, text.size())));
  SQ_CALL(Hdf5, H5Tset_cset(type.get(), H5T_CSET_UTF8));
  SQ_CALL(Hdf5, id = H5Screate(H5S_SCALAR));
  H5Handle scalar(id, H5Sclose);
  SQ_CALL(Hdf5, id = H5Acreate2(obj, name, type.get(), scalar.get(), H5P_DEFAULT, H5P_DEFAULT));
  H5Handle attr(id, H5Aclose);
  // An empty text is written as one NUL (the type's one byte), which the reader strips.
  const std::string bytes = text.empty() ? std::string(1, '\0') : text;
  SQ_CALL(Hdf5, H5Awrite(attr.get(), type.get(), bytes.data()));
}

void write_bytes_dataset(hid_t file, const char* name, const void* data, size_t bytes) {
  const hsize_t n = static_cast<hsize_t>(bytes);
  hid_t id;
  SQ_CALL(Hdf5, id = H5Screate_simple(1, &n, nullptr));
  H5Handle space(id, H5Sclose);
  SQ_CALL(Hdf5, id = H5Dcreate2(file, name, H5T_STD_U8LE, space.get(), H5P_DEFAULT, H5P_DEFAULT,
                                H5P_DEFAULT));
  H5Handle ds(id, H5Dclose);
  if (n > 0)
    SQ_CALL(Hdf5, H5Dwrite(ds.get(), H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, data));
}

void read_bytes_dataset(hid_t file, const char* name, const std::function<void*(size_t)>& dest) {
  hid_t id;
  SQ_CALL(Hdf5, id = H5Dopen2(file, name, H5P_DEFAULT));
  H5Handle ds(id, H5Dclose);
  SQ_CALL(Hdf5, id = H5Dget_space(ds.get()));
  H5Handle space(id, H5Sclose);
  hssize_t n;
  SQ_CALL(Hdf5, n = H5Sget_simple_extent_npoints(space.get()));
  void* data = dest(static_cast<size_t>(n));
  if (n > 0)
    SQ_CALL(Hdf5, H5Dread(ds.get(), H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, data));
}

std::string read_text(hid_t file, const char* name, const std::string& what) {
  htri_t has;
  SQ_CALL(Hdf5, has = H5Lexists(file, name, H5P_DEFAULT));
  if (has <= 0) return read_string_attribute(file, name, what);
  std::string text;
  read_bytes_dataset(file, name, [&](size_t n) {
    text.resize(n);
    return static_cast<void*>(text.data());
  });
  return text;
}

}  // namespace sq::io
