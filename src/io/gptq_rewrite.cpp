#include "io/gptq_rewrite.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <set>

#include "common/check.h"
#include "io/pack.h"
#include "io/safetensors.h"
#include "io/tensor.h"

namespace sq::io {

int rewrite_qzeros_v1_to_v2(const std::string& path, const std::vector<std::string>& names,
                            int bits) {
  const std::set<std::string> wanted(names.begin(), names.end());
  struct Patch {
    uint64_t offset;
    at::Tensor bytes;
  };
  std::vector<Patch> patches;
  {
    auto f = SafetensorsFile::open(path);
    // The data section ends the file (the reader verified that), so it starts at
    // file_size − (end of the last tensor).
    uint64_t data_end = 0;
    for (const auto& u : f->tensors()) data_end = std::max<uint64_t>(data_end, u.end);
    const uint64_t data_start = f->file_size() - data_end;
    for (const auto& t : f->tensors()) {
      if (!wanted.count(t.name)) continue;
      SQ_CHECK(t.dtype == DType::I32 && t.shape.size() == 2,
               path << ": " << t.name << " is not int32 2-D");
      at::Tensor words = view(f, t).clone();
      const int64_t n_vals = t.shape[1] * 32 / bits;
      at::Tensor stored = unpack_bits(words, bits, n_vals, BitLayout::kStream);
      at::Tensor truth = (stored + 1).bitwise_and((1 << bits) - 1);
      at::Tensor repacked = pack_bits(truth, bits, BitLayout::kStream).contiguous();
      SQ_CHECK(repacked.numel() == words.numel(), "qzeros repack changed size for " << t.name);
      patches.push_back({data_start + t.begin, repacked});
    }
  }
  if (patches.empty()) return 0;
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    SQ_THROW(BackendError, path << ": cannot open for rewriting: " << std::strerror(errno));
  for (const auto& p : patches) {
    const size_t n = p.bytes.numel() * sizeof(int32_t);
    ssize_t wr = ::pwrite(fd, p.bytes.data_ptr<int32_t>(), n, static_cast<off_t>(p.offset));
    if (wr != static_cast<ssize_t>(n)) {
      int e = errno;
      ::close(fd);
      SQ_THROW(BackendError, path << ": rewrite of qzeros failed: " << std::strerror(e));
    }
  }
  ::close(fd);
  return static_cast<int>(patches.size());
}

}  // namespace sq::io
