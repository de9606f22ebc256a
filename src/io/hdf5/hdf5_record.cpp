// Checkpoint records (contract in hdf5_record.h). Tensors are stored as bytes rather than typed
// HDF5 datasets: bf16 and fp16 activations have no portable HDF5 type, and a resume must feed
// the next block the very bits the interrupted run would have.
#include "io/hdf5/hdf5_record.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "io/hdf5/hdf5_check.h"

namespace fs = std::filesystem;

namespace sq::io {
namespace {

constexpr const char* kMeta = "meta";

void fsync_path(const std::string& path, bool directory) {
  const int fd = ::open(path.c_str(), directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
  if (fd < 0) SQ_THROW(BackendError, path << ": cannot open to sync: " << std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) SQ_THROW(BackendError, path << ": fsync failed: " << std::strerror(err));
}

at::ScalarType dtype_from_name(const std::string& path, const std::string& name) {
  for (auto t : {at::kFloat, at::kBFloat16, at::kHalf, at::kDouble, at::kLong, at::kInt, at::kByte,
                 at::kBool, at::kChar, at::kShort})
    if (name == c10::toString(t)) return t;
  SQ_THROW(BackendError, "checkpoint " << path << ": unknown tensor dtype " << name);
}

uint64_t fnv1a(uint64_t h, const char* p, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    h ^= static_cast<unsigned char>(p[i]);
    h *= 1099511628211ull;
  }
  return h;
}

std::string hex(uint64_t h) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

}  // namespace

void write_record(const std::string& path, const Record& r) {
  hdf5_silence_errors();
  nlohmann::json meta = r.meta;
  meta["tensors"] = nlohmann::json::object();
  std::vector<std::pair<std::string, at::Tensor>> data;
  for (const auto& [name, t] : r.tensors) {
    SQ_CHECK(name != kMeta, "write_record " << path << ": a tensor may not be named " << kMeta);
    const at::Tensor c = t.cpu().contiguous();
    meta["tensors"][name] = {{"dtype", c10::toString(c.scalar_type())}, {"shape", c.sizes().vec()}};
    data.emplace_back(name, c);
  }
  // The file is assembled in memory (HDF5's core driver) and written by us: a failed write
  // (disk full, ulimit -f) is then an error naming the file, and HDF5 never holds a
  // half-written file open (it crashed at exit in that state).
  std::vector<char> image;
  {
    size_t bytes = 1 << 20;
    for (const auto& [name, c] : data) bytes += c.nbytes();
    hid_t id;
    SQ_CALL(Hdf5, id = H5Pcreate(H5P_FILE_ACCESS));
    H5Handle fapl(id, H5Pclose);
    SQ_CALL(Hdf5, H5Pset_fapl_core(fapl.get(), bytes, /*backing_store=*/0));
    SQ_CALL(Hdf5, id = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()));
    H5Handle file(id, H5Fclose);
    for (auto& [name, c] : data) {
      write_bytes_dataset(file.get(), name.c_str(), c.data_ptr(), c.nbytes());
      c = at::Tensor();  // its bytes are in the image now
    }
    // A dataset, not an attribute: an attribute in the object header may not exceed 64 KB, and
    // the meta grows by ~0.3 KB per quantized linear (session 14: 200 000 bytes failed with
    // "object header message is too large").
    const std::string text = meta.dump();
    write_bytes_dataset(file.get(), kMeta, text.data(), text.size());
    SQ_CALL(Hdf5, H5Fflush(file.get(), H5F_SCOPE_GLOBAL));
    ssize_t size;
    SQ_CALL(Hdf5, size = H5Fget_file_image(file.get(), nullptr, 0));
    image.resize(static_cast<size_t>(size));
    SQ_CALL(Hdf5, H5Fget_file_image(file.get(), image.data(), image.size()));
  }
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) SQ_THROW(BackendError, tmp << ": cannot create: " << std::strerror(errno));
  size_t done = 0;
  while (done < image.size()) {
    const ssize_t w = ::write(fd, image.data() + done, image.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      const int err = errno;
      ::close(fd);
      std::remove(tmp.c_str());
      SQ_THROW(BackendError, tmp << ": write failed: " << std::strerror(err));
    }
    done += static_cast<size_t>(w);
  }
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) {
    std::remove(tmp.c_str());
    SQ_THROW(BackendError, tmp << ": fsync failed: " << std::strerror(err));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    std::remove(tmp.c_str());
    SQ_THROW(BackendError, "rename " << tmp << " -> " << path << ": " << std::strerror(e));
  }
  const fs::path parent = fs::path(path).parent_path();
  fsync_path(parent.empty() ? "." : parent.string(), true);
}

bool concurrent_records_safe() {
  hbool_t safe = 0;
  return H5is_library_threadsafe(&safe) >= 0 && safe;
}

std::optional<Record> read_record(const std::string& path, bool tensors) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return std::nullopt;
  hdf5_silence_errors();
  htri_t is_hdf5;
  SQ_CALL(Hdf5, is_hdf5 = H5Fis_hdf5(path.c_str()));
  if (is_hdf5 <= 0) SQ_THROW(BackendError, "checkpoint " << path << " is not an HDF5 file");
  hid_t id;
  SQ_CALL(Hdf5, id = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
  H5Handle file(id, H5Fclose);
  const std::string text = read_text(file.get(), kMeta, "checkpoint " + path);
  Record r;
  try {
    r.meta = nlohmann::json::parse(text);
    if (!tensors) return r;
    for (const auto& [name, info] : r.meta.at("tensors").items()) {
      const auto shape = info.at("shape").get<std::vector<int64_t>>();
      at::Tensor t =
          at::empty(shape, at::TensorOptions().dtype(dtype_from_name(path, info.at("dtype"))));
      const std::string& ds = name;  // clang 14 cannot capture a structured binding
      read_bytes_dataset(file.get(), ds.c_str(), [&](size_t n) {
        if (n != t.nbytes())
          SQ_THROW(BackendError, "checkpoint " << path << ": dataset /" << ds << " holds " << n
                                               << " bytes, its shape needs " << t.nbytes());
        return t.data_ptr();
      });
      r.tensors[name] = t;
    }
  } catch (const nlohmann::json::exception& e) {
    SQ_THROW(BackendError, "checkpoint " << path << ": bad meta (" << e.what() << ")");
  }
  return r;
}

std::string file_digest(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) SQ_THROW(InputError, path << ": cannot open");
  uint64_t h = 14695981039346656037ull;
  std::vector<char> buf(1 << 16);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    h = fnv1a(h, buf.data(), static_cast<size_t>(in.gcount()));
  }
  return hex(h);
}

std::string header_digest(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) SQ_THROW(InputError, path << ": cannot open");
  char len[8] = {};
  in.read(len, 8);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i)
    n |= static_cast<uint64_t>(static_cast<unsigned char>(len[i])) << (8 * i);
  SQ_REQUIRE(in && n < (1ull << 30),
             path << ": not a safetensors file (header length " << n << ")");
  std::string header(n, '\0');
  in.read(header.data(), static_cast<std::streamsize>(n));
  SQ_REQUIRE(static_cast<uint64_t>(in.gcount()) == n, path << ": truncated safetensors header");
  return hex(fnv1a(fnv1a(14695981039346656037ull, len, 8), header.data(), n));
}

}  // namespace sq::io
