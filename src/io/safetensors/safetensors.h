// safetensors files: a zero-copy, strictly validated reader (mmap) and a writer.
//
// Format (REFERENCE.md §3.4): 8-byte little-endian header length N, N bytes of JSON
// {name: {dtype, shape, data_offsets:[begin,end]}, "__metadata__": {str: str}}, then the data.
// Offsets are relative to the start of the data. The reader rejects: a header length that does
// not fit the file, invalid JSON, unknown dtype names, shape × dtype size ≠ byte range, ranges out
// of bounds, gaps, overlaps, and a file whose size is not header + data. Every error is an
// InputError naming the file and the tensor.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace sq::io {

enum class DType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL, F8_E4M3, F8_E5M2 };

// Bytes per element.
size_t dtype_size(DType d);
// The safetensors spelling ("BF16", ...).
const char* dtype_name(DType d);
// Parses a safetensors dtype name; unknown names throw InputError naming `context`.
DType parse_dtype(const std::string& name, const std::string& context);
// All dtypes this reader accepts, in REFERENCE.md order.
const std::vector<DType>& all_dtypes();

struct TensorInfo {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // byte offset relative to the data section
  uint64_t end = 0;
  int64_t numel() const;
  uint64_t nbytes() const { return end - begin; }
};

// A read-only, memory-mapped safetensors file. The mapping lives as long as any shared_ptr to
// the file (tensor views made by io/safetensors/tensor.h keep it alive).
class SafetensorsFile {
 public:
  // Opens and validates `path`. Throws InputError (bad file) or BackendError (I/O failure).
  static std::shared_ptr<SafetensorsFile> open(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  // Tensors in data-offset order.
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  // nullptr when absent.
  const TensorInfo* find(const std::string& name) const;
  // Throws InputError naming file and tensor when absent.
  const TensorInfo& at(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // Pointer to the first byte of the tensor's data (read-only mapping).
  const uint8_t* data(const TensorInfo& t) const { return data_start_ + t.begin; }
  uint64_t file_size() const { return size_; }

 private:
  SafetensorsFile() = default;
  std::string path_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
  void* map_ = nullptr;
  uint64_t size_ = 0;
  const uint8_t* data_start_ = nullptr;
};

}  // namespace sq::io
