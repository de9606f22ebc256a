// A safetensors file (8-byte header length, JSON header, data) as the reader opens a shard:
// SafetensorsFile::open validates everything; then every tensor's first and last byte is read,
// so that an accepted range outside the mapping is caught.
#include "fuzz_util.h"
#include "io/safetensors/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = sq::fuzz::write_file("x.safetensors", data, size);
  sq::fuzz::expect_only_input_errors([&] {
    auto f = sq::io::SafetensorsFile::open(path);
    volatile uint8_t sink = 0;
    for (const auto& t : f->tensors()) {
      if (t.nbytes() == 0) continue;
      sink = sink + f->data(t)[0] + f->data(t)[t.nbytes() - 1];
      (void)f->at(t.name);
    }
    for (const auto& [k, v] : f->metadata())
      sink = sink + static_cast<uint8_t>(k.size() + v.size());
  });
  return 0;
}
