#include "io/output/safetensors_writer.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include <unistd.h>

#include "common/check.h"
#include "io/model/weight_checks.h"
#include "io/safetensors/tensor.h"

namespace fs = std::filesystem;

namespace sq::io {
namespace {

DType dtype_of(const TensorToWrite& t) {
  return t.dtype ? *t.dtype : from_scalar_type(t.tensor.scalar_type());
}

// The tensor as contiguous CPU bytes of the stored dtype; validates what the caller passed.
at::Tensor storable(const TensorToWrite& t) {
  SQ_REQUIRE(t.tensor.defined(), "tensor \"" << t.name << "\" is undefined");
  SQ_REQUIRE(t.tensor.device().is_cpu(),
             "tensor \"" << t.name << "\" must be on the CPU to be written, it is on "
                         << t.tensor.device());
  const DType d = dtype_of(t);
  if (d == DType::F8_E4M3 || d == DType::F8_E5M2)
    SQ_REQUIRE(t.tensor.scalar_type() == at::kByte, "tensor \""
                                                        << t.name << "\": " << dtype_name(d)
                                                        << " is written from uint8 raw bytes, got "
                                                        << c10::toString(t.tensor.scalar_type()));
  else
    SQ_REQUIRE(to_scalar_type(d) == t.tensor.scalar_type(),
               "tensor \"" << t.name << "\": requested dtype " << dtype_name(d)
                           << " but the tensor is " << c10::toString(t.tensor.scalar_type()));
  return t.tensor.contiguous();
}

void write_all(std::FILE* f, const void* data, size_t n, const std::string& path) {
  if (n == 0) return;
  if (std::fwrite(data, 1, n, f) != n)
    SQ_THROW(BackendError, path << ": write failed: " << std::strerror(errno));
}

void rename_into_place(const std::string& from, const std::string& to) {
  std::error_code ec;
  fs::rename(from, to, ec);
  if (ec) SQ_THROW(BackendError, "cannot rename " << from << " to " << to << ": " << ec.message());
}

// Writes `text` to `path` through `<path>.tmp`.
void write_text_file(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) SQ_THROW(BackendError, tmp << ": cannot create: " << std::strerror(errno));
  try {
    write_all(f, text.data(), text.size(), tmp);
  } catch (...) {
    std::fclose(f);
    throw;
  }
  if (std::fclose(f) != 0)
    SQ_THROW(BackendError, tmp << ": close failed: " << std::strerror(errno));
  rename_into_place(tmp, path);
}

struct Unit {
  const char* suffix;  // upper case
  double bytes;
  bool decimal;  // a lower-case trailing "b" means bits
};
constexpr Unit kUnits[] = {
    {"TIB", 1099511627776.0, false},
    {"GIB", 1073741824.0, false},
    {"MIB", 1048576.0, false},
    {"KIB", 1024.0, false},
    {"TB", 1e12, true},
    {"GB", 1e9, true},
    {"MB", 1e6, true},
    {"KB", 1e3, true},
    {"B", 1.0, false},
    {"", 1.0, false},
};

std::string shard_name(const std::string& stem, size_t i, size_t n) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "-%05zu-of-%05zu.safetensors", i + 1, n);
  return stem + buf;
}

}  // namespace

uint64_t stored_bytes(const TensorToWrite& t) {
  return static_cast<uint64_t>(t.tensor.numel()) * dtype_size(dtype_of(t));
}

namespace {

// The JSON header of a file holding `entries` (name, dtype, shape, bytes) in this order, padded
// with spaces to a multiple of 8.
struct HeaderEntry {
  const std::string* name;
  DType dtype;
  const std::vector<int64_t>* shape;
  uint64_t bytes;
};
std::string header_text(const std::vector<HeaderEntry>& entries,
                        const std::map<std::string, std::string>& metadata) {
  std::string header = "{";
  if (!metadata.empty()) header += "\"__metadata__\":" + nlohmann::json(metadata).dump();
  uint64_t offset = 0;
  for (const auto& e : entries) {
    nlohmann::json shape = nlohmann::json::array();
    for (auto d : *e.shape) shape.push_back(d);
    if (header.size() > 1) header += ",";
    header += nlohmann::json(*e.name).dump() + ":{\"dtype\":\"" + dtype_name(e.dtype) +
              "\",\"shape\":" + shape.dump() + ",\"data_offsets\":[" + std::to_string(offset) +
              "," + std::to_string(offset + e.bytes) + "]}";
    offset += e.bytes;
  }
  header += "}";
  header.append((8 - header.size() % 8) % 8, ' ');
  return header;
}

void write_header(std::FILE* f, const std::string& header, const std::string& path) {
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(header.size() >> (8 * i));
  write_all(f, len, 8, path);
  write_all(f, header.data(), header.size(), path);
}

void close_file(std::FILE* f, const std::string& path) {
  if (std::fclose(f) != 0)
    SQ_THROW(BackendError, path << ": close failed: " << std::strerror(errno));
}

// The one way a shard file is written: `<path>.tmp` gets the header and then what `body` writes
// to it; a failure removes it, success renames it into place.
template <class Body>
void write_shard_file(const std::string& path, const std::string& header, Body body) {
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) SQ_THROW(BackendError, tmp << ": cannot create: " << std::strerror(errno));
  try {
    write_header(f, header, tmp);
    body(f, tmp);
  } catch (...) {
    std::fclose(f);
    std::remove(tmp.c_str());
    throw;
  }
  close_file(f, tmp);
  rename_into_place(tmp, path);
}

}  // namespace

void write_safetensors(const std::string& path, std::vector<TensorToWrite> tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::sort(tensors.begin(), tensors.end(),
            [](const TensorToWrite& a, const TensorToWrite& b) { return a.name < b.name; });
  for (size_t i = 1; i < tensors.size(); ++i)
    SQ_REQUIRE(tensors[i].name != tensors[i - 1].name,
               path << ": tensor \"" << tensors[i].name << "\" given twice");
  std::vector<at::Tensor> data;
  std::vector<std::vector<int64_t>> shapes;
  shapes.reserve(tensors.size());
  std::vector<HeaderEntry> entries;
  for (const auto& t : tensors) {
    SQ_REQUIRE(t.name != "__metadata__", path << ": \"__metadata__\" is not a tensor name");
    data.push_back(storable(t));
    check_output_tensor(path, t.name, data.back());  // every written scale/weight is finite
    shapes.push_back(t.tensor.sizes().vec());
    entries.push_back({&t.name, dtype_of(t), &shapes.back(), stored_bytes(t)});
  }
  const std::string header = header_text(entries, metadata);

  write_shard_file(path, header, [&](std::FILE* f, const std::string& tmp) {
    for (size_t i = 0; i < data.size(); ++i)
      write_all(f, data[i].data_ptr(), stored_bytes(tensors[i]), tmp);
  });
}

uint64_t parse_size(const std::string& text) {
  size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.'))
    ++i;
  std::string num = text.substr(0, i), unit = text.substr(i);
  while (!unit.empty() && unit.front() == ' ') unit.erase(0, 1);
  std::string upper = unit;
  for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  double value = 0;
  bool ok = !num.empty() && std::count(num.begin(), num.end(), '.') <= 1 && num != ".";
  if (ok) value = std::stod(num);
  for (const auto& u : kUnits) {
    if (!ok || upper != u.suffix) continue;
    double bytes = value * u.bytes;
    if (u.decimal && unit.back() == 'b') bytes /= 8;  // "5Gb": gigabits
    SQ_REQUIRE(bytes >= 1, "size \"" << text << "\" must be at least one byte");
    return static_cast<uint64_t>(bytes);
  }
  SQ_THROW(InputError, "cannot parse size \"" << text
                                              << "\": expected a number with an optional unit "
                                                 "B, KB, MB, GB, TB (powers of 1000) or KiB, MiB, "
                                                 "GiB, TiB (powers of 1024), e.g. 5GB");
}

ShardedWriter::ShardedWriter(std::string dir, uint64_t max_shard_bytes,
                             std::map<std::string, std::string> metadata, std::string stem)
    : dir_(std::move(dir)),
      max_(max_shard_bytes),
      metadata_(std::move(metadata)),
      stem_(std::move(stem)) {
  SQ_REQUIRE(max_ > 0, dir_ << ": max shard size must be positive");
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) SQ_THROW(BackendError, dir_ << ": cannot create directory: " << ec.message());
}

ShardedWriter::~ShardedWriter() {
  std::error_code ec;
  if (spill_) {
    std::fclose(spill_);
    fs::remove(spill_path_, ec);
  }
  if (finished_ || keep_) return;
  for (const auto& f : temp_files_) fs::remove(f, ec);
}

std::string ShardedWriter::shard_path() const {
  return temp_name(shard_names_.size());
}

void ShardedWriter::add(TensorToWrite t) {
  SQ_REQUIRE(!finished_, dir_ << ": tensor \"" << t.name << "\" added after finish()");
  SQ_REQUIRE(!seen_.count(t.name), dir_ << ": tensor \"" << t.name << "\" added twice");
  SQ_REQUIRE(t.name != "__metadata__", dir_ << ": \"__metadata__\" is not a tensor name");
  const at::Tensor data = storable(t);  // validate now, not at flush time
  const uint64_t n = stored_bytes(t);
  if (!pending_.empty() && pending_bytes_ + n > max_) flush();
  check_output_tensor(shard_path(), t.name, data);  // every written scale/weight is finite
  if (!spill_) {
    spill_path_ = shard_path() + ".spill";
    spill_ = std::fopen(spill_path_.c_str(), "wb+");
    if (!spill_) SQ_THROW(BackendError, spill_path_ << ": cannot create: " << std::strerror(errno));
  }
  write_all(spill_, data.data_ptr(), n, spill_path_);
  seen_[t.name] = shard_names_.size();
  pending_.push_back({t.name, dtype_of(t), t.tensor.sizes().vec(), pending_bytes_, n});
  pending_bytes_ += n;
  total_ += n;
}

std::string ShardedWriter::temp_name(size_t index) const {
  char buf[64];
  std::snprintf(buf, sizeof buf, "model-%05zu.safetensors.partial", index + 1);
  return (fs::path(dir_) / buf).string();
}

void ShardedWriter::flush() {
  const std::string path = shard_path();
  std::vector<Spilled> sorted = pending_;
  std::sort(sorted.begin(), sorted.end(),
            [](const Spilled& a, const Spilled& b) { return a.name < b.name; });
  std::vector<HeaderEntry> entries;
  for (const auto& p : sorted) entries.push_back({&p.name, p.dtype, &p.shape, p.bytes});
  const std::string header = header_text(entries, metadata_);
  if (spill_ && std::fflush(spill_) != 0)
    SQ_THROW(BackendError, spill_path_ << ": write failed: " << std::strerror(errno));

  write_shard_file(path, header, [&](std::FILE* f, const std::string& tmp) {
    // Copied in name order through one bounded buffer (not the whole shard).
    std::vector<char> buf(size_t{8} << 20);
    for (const auto& p : sorted) {
      for (uint64_t done = 0; done < p.bytes;) {
        const size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), p.bytes - done));
        const ssize_t got =
            ::pread(fileno(spill_), buf.data(), want, static_cast<off_t>(p.offset + done));
        if (got <= 0)
          SQ_THROW(BackendError,
                   spill_path_ << ": read failed: "
                               << (got == 0 ? "unexpected end of file" : std::strerror(errno)));
        write_all(f, buf.data(), static_cast<size_t>(got), tmp);
        done += static_cast<uint64_t>(got);
      }
    }
  });
  if (spill_) {
    std::fclose(spill_);
    spill_ = nullptr;
    std::remove(spill_path_.c_str());
  }
  temp_files_.push_back(path);
  std::vector<std::string> names;
  for (const auto& p : pending_) names.push_back(p.name);
  shard_names_.push_back(std::move(names));
  pending_.clear();
  pending_bytes_ = 0;
}

nlohmann::json ShardedWriter::closed_state() const {
  return {{"shards", shard_names_}, {"bytes", total_ - pending_bytes_}};
}

void ShardedWriter::restore(const nlohmann::json& state) {
  SQ_CHECK(seen_.empty() && shard_names_.empty() && !finished_,
           dir_ << ": restore() on a writer that was used");
  shard_names_ = state.at("shards").get<std::vector<std::vector<std::string>>>();
  total_ = state.at("bytes").get<uint64_t>();
  for (size_t i = 0; i < shard_names_.size(); ++i) {
    const std::string tmp = temp_name(i);
    temp_files_.push_back(tmp);
    for (const auto& name : shard_names_[i]) seen_[name] = i;
    if (fs::exists(tmp)) continue;
    // An interrupted finish() renamed it already: <stem>-0000i-of-0000N.safetensors for some N.
    char prefix[64];
    std::snprintf(prefix, sizeof prefix, "-%05zu-of-", i + 1);
    std::string found;
    for (const auto& e : fs::directory_iterator(dir_)) {
      const std::string f = e.path().filename().string();
      if (f.rfind(stem_ + prefix, 0) == 0 && f.size() > 12 &&
          f.compare(f.size() - 12, 12, ".safetensors") == 0)
        found = e.path().string();
    }
    SQ_CHECK(!found.empty(),
             dir_ << ": shard " << i + 1 << " of the checkpoint (" << tmp << ") is missing");
    rename_into_place(found, tmp);
  }
}

bool ShardedWriter::is_closed(const std::string& name) const {
  const auto it = seen_.find(name);
  return it != seen_.end() && it->second < shard_names_.size();
}

std::vector<std::string> ShardedWriter::finish() {
  SQ_REQUIRE(!finished_, dir_ << ": finish() called twice");
  if (!pending_.empty() || shard_names_.empty()) flush();
  const size_t n = shard_names_.size();
  std::vector<std::string> files;
  for (size_t i = 0; i < n; ++i) {
    files.push_back(n == 1 ? stem_ + ".safetensors" : shard_name(stem_, i, n));
    rename_into_place(temp_files_[i], (fs::path(dir_) / files.back()).string());
  }
  finished_ = true;
  if (n > 1) {
    nlohmann::json index;
    index["metadata"]["total_size"] = total_;
    index["weight_map"] = nlohmann::json::object();
    for (size_t i = 0; i < n; ++i)
      for (const auto& name : shard_names_[i]) index["weight_map"][name] = files[i];
    write_text_file((fs::path(dir_) / (stem_ + ".safetensors.index.json")).string(),
                    index.dump(2) + "\n");
  }
  return files;
}

}  // namespace sq::io
