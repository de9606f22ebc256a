#include "io/safetensors/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <nlohmann/json.hpp>

#include "common/check.h"
#include "io/safetensors/shard_watch.h"

namespace sq::io {
namespace {

struct DTypeRow {
  DType dtype;
  const char* name;
  size_t size;
};
// The table of every dtype we read (REFERENCE.md §3.4).
constexpr DTypeRow kDTypes[] = {
    {DType::F64, "F64", 8},   {DType::F32, "F32", 4},         {DType::F16, "F16", 2},
    {DType::BF16, "BF16", 2}, {DType::I64, "I64", 8},         {DType::I32, "I32", 4},
    {DType::I16, "I16", 2},   {DType::I8, "I8", 1},           {DType::U8, "U8", 1},
    {DType::BOOL, "BOOL", 1}, {DType::F8_E4M3, "F8_E4M3", 1}, {DType::F8_E5M2, "F8_E5M2", 1},
};

const DTypeRow& row(DType d) {
  for (const auto& r : kDTypes)
    if (r.dtype == d) return r;
  SQ_CHECK(false, "unknown DType " << static_cast<int>(d));
}

// Header size cap: the Rust library refuses headers above 100 MB; so do we.
constexpr uint64_t kMaxHeader = 100ull << 20;

}  // namespace

size_t dtype_size(DType d) {
  return row(d).size;
}
const char* dtype_name(DType d) {
  return row(d).name;
}

const std::vector<DType>& all_dtypes() {
  static const std::vector<DType> v = [] {
    std::vector<DType> out;
    for (const auto& r : kDTypes) out.push_back(r.dtype);
    return out;
  }();
  return v;
}

DType parse_dtype(const std::string& name, const std::string& context) {
  for (const auto& r : kDTypes)
    if (name == r.name) return r.dtype;
  std::string known;
  for (const auto& r : kDTypes) known += std::string(known.empty() ? "" : " ") + r.name;
  SQ_THROW(InputError,
           context << ": unsupported dtype \"" << name << "\" (supported: " << known << ")");
}

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

std::shared_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  std::shared_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->path_ = path;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) SQ_THROW(InputError, path << ": file not found");
    if (errno == EACCES)
      SQ_THROW(InputError, path << ": permission denied (the shard must be readable by this user)");
    SQ_THROW(BackendError, path << ": cannot open: " << std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    SQ_THROW(BackendError, path << ": cannot stat: " << std::strerror(e));
  }
  f->size_ = static_cast<uint64_t>(st.st_size);
  if (f->size_ < 8) {
    ::close(fd);
    SQ_THROW(InputError, path << ": truncated safetensors file: " << f->size_
                              << " bytes, expected at least 8 (the header length)");
  }
  void* m = ::mmap(nullptr, f->size_, PROT_READ, MAP_SHARED, fd, 0);
  int e = errno;
  ::close(fd);
  if (m == MAP_FAILED) SQ_THROW(BackendError, path << ": mmap failed: " << std::strerror(e));
  f->map_ = m;
  const auto* base = static_cast<const uint8_t*>(m);

  uint64_t hlen = 0;
  for (int i = 7; i >= 0; --i) hlen = (hlen << 8) | base[i];  // little endian
  if (hlen > kMaxHeader || 8 + hlen > f->size_) {
    SQ_THROW(InputError, path << ": corrupted header: header length " << hlen
                              << " bytes does not fit in the file of " << f->size_ << " bytes");
  }
  f->data_start_ = base + 8 + hlen;
  const uint64_t data_size = f->size_ - 8 - hlen;

  nlohmann::json header;
  try {
    header = nlohmann::json::parse(reinterpret_cast<const char*>(base + 8),
                                   reinterpret_cast<const char*>(base + 8 + hlen));
  } catch (const nlohmann::json::exception& ex) {
    SQ_THROW(InputError, path << ": corrupted header: invalid JSON (" << ex.what() << ")");
  }
  if (!header.is_object()) SQ_THROW(InputError, path << ": corrupted header: not a JSON object");

  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const auto& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) SQ_THROW(InputError, path << ": __metadata__ is not an object");
      for (auto m2 = v.begin(); m2 != v.end(); ++m2) {
        if (!m2.value().is_string())
          SQ_THROW(InputError, path << ": __metadata__[\"" << m2.key() << "\"] is not a string");
        f->metadata_[m2.key()] = m2.value().get<std::string>();
      }
      continue;
    }
    const std::string ctx = path + ": tensor \"" + name + "\"";
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") ||
        !v.contains("data_offsets"))
      SQ_THROW(InputError, ctx << ": header entry needs dtype, shape and data_offsets");
    if (!v["dtype"].is_string()) SQ_THROW(InputError, ctx << ": dtype is not a string");
    TensorInfo t;
    t.name = name;
    t.dtype = parse_dtype(v["dtype"].get<std::string>(), ctx);
    if (!v["shape"].is_array()) SQ_THROW(InputError, ctx << ": shape is not an array");
    for (const auto& d : v["shape"]) {
      if (!d.is_number_unsigned() && !(d.is_number_integer() && d.get<int64_t>() >= 0))
        SQ_THROW(InputError, ctx << ": shape " << v["shape"].dump() << " has a non-integer entry");
      t.shape.push_back(d.get<int64_t>());
    }
    const auto& off = v["data_offsets"];
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() ||
        !off[1].is_number_unsigned())
      SQ_THROW(InputError,
               ctx << ": data_offsets must be two non-negative integers, got " << off.dump());
    t.begin = off[0].get<uint64_t>();
    t.end = off[1].get<uint64_t>();
    if (t.end < t.begin)
      SQ_THROW(InputError,
               ctx << ": data_offsets [" << t.begin << ", " << t.end << "] end before begin");
    // The element count and byte size must fit int64 before numel() multiplies (a hostile
    // shape like [2^51, 65472] overflowed it; found by fuzzing).
    uint64_t elems = 1;
    for (const auto& d : v["shape"]) {
      const uint64_t dim = d.get<uint64_t>();
      if (dim > uint64_t(INT64_MAX) || __builtin_mul_overflow(elems, dim, &elems) ||
          elems > uint64_t(INT64_MAX) / 8)
        SQ_THROW(InputError, ctx << ": shape " << v["shape"].dump() << " is too large");
    }
    const uint64_t expect = static_cast<uint64_t>(t.numel()) * dtype_size(t.dtype);
    if (t.nbytes() != expect)
      SQ_THROW(InputError, ctx << ": shape " << v["shape"].dump() << " × " << dtype_name(t.dtype)
                               << " needs " << expect << " bytes but data_offsets cover "
                               << t.nbytes());
    if (t.end > data_size)
      SQ_THROW(InputError, ctx << ": data_offsets [" << t.begin << ", " << t.end
                               << "] out of bounds: data section has " << data_size
                               << " bytes (file truncated?)");
    f->tensors_.push_back(std::move(t));
  }

  std::sort(f->tensors_.begin(), f->tensors_.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t cursor = 0;
  for (const auto& t : f->tensors_) {
    if (t.begin < cursor)
      SQ_THROW(InputError, path << ": tensor \"" << t.name << "\" bytes [" << t.begin << ", "
                                << t.end << ") overlap the previous tensor (ends at " << cursor
                                << ")");
    if (t.begin > cursor)
      SQ_THROW(InputError, path << ": gap of " << (t.begin - cursor) << " bytes before tensor \""
                                << t.name << "\" (tensors must be contiguous)");
    cursor = t.end;
  }
  if (cursor != data_size)
    SQ_THROW(InputError, path << ": file size " << f->size_ << " bytes, expected "
                              << (8 + hlen + cursor) << " (header + tensors): "
                              << (data_size > cursor ? "trailing bytes" : "truncated"));
  for (size_t i = 0; i < f->tensors_.size(); ++i) f->index_[f->tensors_[i].name] = i;
  watch_mapping(f->map_, f->size_, f->path_, f->tensors_, f->data_start_);
  return f;
}

SafetensorsFile::~SafetensorsFile() {
  if (map_) unwatch_mapping(map_);
  if (map_) ::munmap(map_, size_);
}

const TensorInfo* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

const TensorInfo& SafetensorsFile::at(const std::string& name) const {
  const TensorInfo* t = find(name);
  if (!t) SQ_THROW(InputError, path_ << ": tensor \"" << name << "\" not found");
  return *t;
}

}  // namespace sq::io
