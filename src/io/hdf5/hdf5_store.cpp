// HDF5 calibration cache I/O (contract in hdf5_store.h). Every HDF5 call is wrapped in
// SQ_CALL(Hdf5, ...); handles are RAII so a failure half-way closes everything it opened.
#include "io/hdf5/hdf5_store.h"

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <vector>

#include "io/hdf5/hdf5_check.h"

namespace fs = std::filesystem;

namespace sq::io {
namespace {

constexpr const char* kTokens = "tokens";
constexpr const char* kMask = "mask";
constexpr const char* kProvenance = "provenance";

void write_matrix(hid_t file, const char* name, hid_t file_type, hid_t mem_type, const void* data,
                  hsize_t rows, hsize_t cols) {
  const hsize_t dims[2] = {rows, cols};
  hid_t id;
  SQ_CALL(Hdf5, id = H5Screate_simple(2, dims, nullptr));
  H5Handle space(id, H5Sclose);
  SQ_CALL(Hdf5, id = H5Dcreate2(file, name, file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT,
                                H5P_DEFAULT));
  H5Handle ds(id, H5Dclose);
  if (rows * cols > 0) {
    SQ_CALL(Hdf5, H5Dwrite(ds.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data));
  }
}

// Reads a 2-D integer dataset into `out` (mem_type elements); returns its shape.
std::pair<hsize_t, hsize_t> read_matrix(const std::string& path, hid_t file, const char* name,
                                        hid_t mem_type, size_t elem, std::vector<char>& out) {
  hid_t id;
  SQ_CALL(Hdf5, id = H5Dopen2(file, name, H5P_DEFAULT));
  H5Handle ds(id, H5Dclose);
  SQ_CALL(Hdf5, id = H5Dget_type(ds.get()));
  H5Handle type(id, H5Tclose);
  H5T_class_t cls;
  SQ_CALL(Hdf5, cls = H5Tget_class(type.get()));
  SQ_CALL(Hdf5, id = H5Dget_space(ds.get()));
  H5Handle space(id, H5Sclose);
  int ndims;
  SQ_CALL(Hdf5, ndims = H5Sget_simple_extent_ndims(space.get()));
  if (cls != H5T_INTEGER || ndims != 2) {
    SQ_THROW(BackendError, "calibration cache " << path << ": dataset /" << name
                                                << " is not a 2-D integer matrix");
  }
  hsize_t dims[2];
  SQ_CALL(Hdf5, H5Sget_simple_extent_dims(space.get(), dims, nullptr));
  out.resize(static_cast<size_t>(dims[0] * dims[1]) * elem);
  if (!out.empty()) {
    SQ_CALL(Hdf5, H5Dread(ds.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()));
  }
  return {dims[0], dims[1]};
}

}  // namespace

void write_token_cache(const std::string& path, const TokenCache& cache) {
  hdf5_silence_errors();
  const at::Tensor tokens = cache.tokens.to(at::kLong).contiguous();
  const at::Tensor mask = cache.mask.to(at::kByte).contiguous();
  SQ_CHECK(tokens.dim() == 2 && mask.sizes() == tokens.sizes(),
           "token cache: tokens " << tokens.sizes() << " and mask " << mask.sizes()
                                  << " must be equal 2-D shapes");
  const fs::path dest(path);
  if (dest.has_parent_path()) {
    std::error_code ec;
    fs::create_directories(dest.parent_path(), ec);
  }
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  try {
    hid_t id;
    SQ_CALL(Hdf5, id = H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
    H5Handle file(id, H5Fclose);
    const auto rows = static_cast<hsize_t>(tokens.size(0));
    const auto cols = static_cast<hsize_t>(tokens.size(1));
    write_matrix(file.get(), kTokens, H5T_STD_I64LE, H5T_NATIVE_INT64, tokens.data_ptr(), rows,
                 cols);
    write_matrix(file.get(), kMask, H5T_STD_U8LE, H5T_NATIVE_UINT8, mask.data_ptr(), rows, cols);

    const std::string text = cache.provenance.dump();
    // A dataset: the provenance lists every calibration source's paths and the reader's
    // warnings, which may outgrow an attribute (64 KB).
    write_bytes_dataset(file.get(), kProvenance, text.data(), text.size());
    SQ_CALL(Hdf5, H5Fflush(file.get(), H5F_SCOPE_GLOBAL));
    file.reset();
    SQ_CALL(Posix, ::rename(tmp.c_str(), path.c_str()));
  } catch (...) {
    std::remove(tmp.c_str());
    throw;
  }
}

std::optional<TokenCache> read_token_cache(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return std::nullopt;
  hdf5_silence_errors();
  htri_t is_hdf5;
  SQ_CALL(Hdf5, is_hdf5 = H5Fis_hdf5(path.c_str()));
  if (is_hdf5 <= 0) SQ_THROW(BackendError, "calibration cache " << path << " is not an HDF5 file");
  hid_t id;
  SQ_CALL(Hdf5, id = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
  H5Handle file(id, H5Fclose);

  std::vector<char> tok_bytes, mask_bytes;
  const auto tshape = read_matrix(path, file.get(), kTokens, H5T_NATIVE_INT64, 8, tok_bytes);
  const auto mshape = read_matrix(path, file.get(), kMask, H5T_NATIVE_UINT8, 1, mask_bytes);
  if (tshape != mshape) {
    SQ_THROW(BackendError, "calibration cache " << path << ": /tokens is " << tshape.first << "x"
                                                << tshape.second << " but /mask is " << mshape.first
                                                << "x" << mshape.second);
  }

  const std::string text = read_text(file.get(), kProvenance, "calibration cache " + path);

  TokenCache out;
  try {
    out.provenance = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    SQ_THROW(BackendError,
             "calibration cache " << path << ": provenance is not JSON (" << e.what() << ")");
  }
  const auto rows = static_cast<int64_t>(tshape.first), cols = static_cast<int64_t>(tshape.second);
  out.tokens = at::empty({rows, cols}, at::kLong);
  if (!tok_bytes.empty()) std::memcpy(out.tokens.data_ptr(), tok_bytes.data(), tok_bytes.size());
  at::Tensor m = at::empty({rows, cols}, at::kByte);
  if (!mask_bytes.empty()) std::memcpy(m.data_ptr(), mask_bytes.data(), mask_bytes.size());
  out.mask = m.to(at::kBool);
  return out;
}

}  // namespace sq::io
