// model.safetensors.index.json: the fuzzed bytes are the index of a directory that holds two
// small valid shards (a.safetensors: "x", b.safetensors: "y"); ModelWeights opens the directory
// and every listed tensor is read.
#include <cstring>
#include <vector>

#include "fuzz_util.h"
#include "io/model/model_weights.h"

namespace {

// One F32 tensor `name` of 4 elements.
void write_shard(const std::string& file, const std::string& name) {
  const std::string header =
      "{\"" + name + "\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}";
  std::vector<uint8_t> bytes(8 + header.size() + 16, 0);
  uint64_t n = header.size();
  std::memcpy(bytes.data(), &n, 8);  // little-endian host (x86-64 / aarch64)
  std::memcpy(bytes.data() + 8, header.data(), header.size());
  sq::fuzz::write_file(file, bytes.data(), bytes.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool once = [] {
    write_shard("a.safetensors", "x");
    write_shard("b.safetensors", "y");
    return true;
  }();
  (void)once;
  sq::fuzz::write_file("model.safetensors.index.json", data, size);
  sq::fuzz::expect_only_input_errors([&] {
    sq::io::ModelWeights w(sq::fuzz::scratch_dir());
    // double: a float64 tensor may hold values beyond float range (a harness-only exception).
    for (const auto& n : w.names()) (void)w.get(n).sum().item<double>();
  });
  return 0;
}
