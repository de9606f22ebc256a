// HDF5 C API calls go through SQ_CALL(Hdf5, expr) (common/check.h): every HDF5 return value
// (herr_t, hid_t, htri_t, hssize_t) is negative on failure. The BackendError message carries the
// innermost descriptions of HDF5's error stack. Also: an RAII handle for hid_t and the read and
// write of a fixed-length string attribute.
#pragma once

#include <hdf5.h>

#include <functional>
#include <string>

#include "common/check.h"

namespace sq::detail {

struct Hdf5 {};
template <>
struct BackendTraits<Hdf5> {
  static constexpr const char* name = "HDF5";
  static bool ok(long long rc) { return rc >= 0; }
  static std::string describe(long long rc);  // walks the current HDF5 error stack
};

}  // namespace sq::detail

namespace sq::io {

// Turns off HDF5's default printing of its error stack to stderr (we report errors ourselves).
// Idempotent; call before a series of HDF5 calls.
void hdf5_silence_errors();

// Owns one hid_t and closes it with the matching H5*close on destruction.
class H5Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  H5Handle() = default;
  H5Handle(hid_t id, Closer close) : id_(id), close_(close) {}
  H5Handle(const H5Handle&) = delete;
  H5Handle& operator=(const H5Handle&) = delete;
  H5Handle(H5Handle&& o) noexcept : id_(o.id_), close_(o.close_) { o.id_ = -1; }
  H5Handle& operator=(H5Handle&& o) noexcept;
  ~H5Handle() { reset(); }
  hid_t get() const { return id_; }
  void reset();  // closes now (errors while closing are ignored: nothing to recover)

 private:
  hid_t id_ = -1;
  Closer close_ = nullptr;
};

// Reads the fixed-length string attribute `name` of the HDF5 object `obj` (a file, group or
// dataset) in the character set it was stored in, without its trailing NULs. `what` names the
// file for messages (e.g. "checkpoint /x/block_3.h5"). Throws BackendError
// "<what>: attribute <name> is not a fixed-length string" when it has another type (a
// variable-length string included), and BackendError with HDF5's error stack when it is missing
// or unreadable.
std::string read_string_attribute(hid_t obj, const char* name, const std::string& what);

// Creates the fixed-length UTF-8 string attribute `name` on `obj` holding `text` (at least one
// byte long: HDF5 refuses a zero-size string type, and the reader above strips the NUL).
// BackendError with HDF5's error stack on failure (e.g. the attribute exists).
void write_string_attribute(hid_t obj, const char* name, const std::string& text);

// Bytes as a 1-D uint8 dataset `name` of `file` (any size, unlike an attribute in the object
// header: at most 64 KB there). BackendError with HDF5's error stack on failure.
void write_bytes_dataset(hid_t file, const char* name, const void* data, size_t bytes);
// Reads the dataset `name` of `file` as raw bytes: `dest(n)` is called once with its size in bytes
// and returns where to put them (it may throw to refuse that size); nothing is read when n is 0.
// BackendError with HDF5's error stack when the dataset is missing or unreadable.
void read_bytes_dataset(hid_t file, const char* name, const std::function<void*(size_t)>& dest);
// A text stored by write_bytes_dataset under `name`; where `file` has no such dataset, the
// fixed-length string attribute of that name that files of earlier builds hold
// (read_string_attribute, same errors, `what` naming the file).
std::string read_text(hid_t file, const char* name, const std::string& what);

}  // namespace sq::io
