// HDF5 error descriptions and handle management (contract in hdf5_check.h).
#include "io/hdf5_check.h"

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

}  // namespace sq::io
