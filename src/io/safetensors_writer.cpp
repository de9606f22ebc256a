#include "io/safetensors_writer.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "common/check.h"
#include "io/tensor.h"
#include "io/weight_checks.h"

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

void write_safetensors(const std::string& path, std::vector<TensorToWrite> tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::sort(tensors.begin(), tensors.end(),
            [](const TensorToWrite& a, const TensorToWrite& b) { return a.name < b.name; });
  for (size_t i = 1; i < tensors.size(); ++i)
    SQ_REQUIRE(tensors[i].name != tensors[i - 1].name,
               path << ": tensor \"" << tensors[i].name << "\" given twice");
  std::vector<at::Tensor> data;
  std::string header = "{";
  if (!metadata.empty()) header += "\"__metadata__\":" + nlohmann::json(metadata).dump();
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    SQ_REQUIRE(t.name != "__metadata__", path << ": \"__metadata__\" is not a tensor name");
    data.push_back(storable(t));
    check_output_tensor(path, t.name, data.back());  // every written scale/weight is finite
    const uint64_t n = stored_bytes(t);
    nlohmann::json shape = nlohmann::json::array();
    for (auto d : t.tensor.sizes()) shape.push_back(d);
    if (header.size() > 1) header += ",";
    header += nlohmann::json(t.name).dump() + ":{\"dtype\":\"" + dtype_name(dtype_of(t)) +
              "\",\"shape\":" + shape.dump() + ",\"data_offsets\":[" + std::to_string(offset) +
              "," + std::to_string(offset + n) + "]}";
    offset += n;
  }
  header += "}";
  header.append((8 - header.size() % 8) % 8, ' ');

  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) SQ_THROW(BackendError, tmp << ": cannot create: " << std::strerror(errno));
  try {
    uint8_t len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(header.size() >> (8 * i));
    write_all(f, len, 8, tmp);
    write_all(f, header.data(), header.size(), tmp);
    for (size_t i = 0; i < data.size(); ++i)
      write_all(f, data[i].data_ptr(), stored_bytes(tensors[i]), tmp);
  } catch (...) {
    std::fclose(f);
    std::remove(tmp.c_str());
    throw;
  }
  if (std::fclose(f) != 0)
    SQ_THROW(BackendError, tmp << ": close failed: " << std::strerror(errno));
  rename_into_place(tmp, path);
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
  if (finished_ || keep_) return;
  std::error_code ec;
  for (const auto& f : temp_files_) fs::remove(f, ec);
}

void ShardedWriter::add(TensorToWrite t) {
  SQ_REQUIRE(!finished_, dir_ << ": tensor \"" << t.name << "\" added after finish()");
  SQ_REQUIRE(!seen_.count(t.name), dir_ << ": tensor \"" << t.name << "\" added twice");
  storable(t);  // validate now, not at flush time
  const uint64_t n = stored_bytes(t);
  if (!pending_.empty() && pending_bytes_ + n > max_) flush();
  seen_[t.name] = shard_names_.size();
  pending_bytes_ += n;
  total_ += n;
  pending_.push_back(std::move(t));
}

std::string ShardedWriter::temp_name(size_t index) const {
  char buf[64];
  std::snprintf(buf, sizeof buf, "model-%05zu.safetensors.partial", index + 1);
  return (fs::path(dir_) / buf).string();
}

void ShardedWriter::flush() {
  const std::string path = temp_name(shard_names_.size());
  std::vector<std::string> names;
  for (const auto& t : pending_) names.push_back(t.name);
  write_safetensors(path, std::move(pending_), metadata_);
  temp_files_.push_back(path);
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
