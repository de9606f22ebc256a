// The quantized-checkpoint reader `eval` uses: a model directory whose config.json has a
// quantization_config and whose model.safetensors holds packed linears. Input: 2-byte
// little-endian length L, L bytes of config.json, then the safetensors file. ModelWeights opens
// the directory (quantized_layout, dequantized_shape) and every visible tensor is read, the
// virtual dequantized weights included (unpack + dequantize).
#include "fuzz_util.h"
#include "io/model/model_weights.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const size_t n = std::min<size_t>(size - 2, data[0] | (data[1] << 8));
  sq::fuzz::write_file("config.json", data + 2, n);
  sq::fuzz::write_file("model.safetensors", data + 2 + n, size - 2 - n);
  sq::fuzz::expect_only_input_errors([&] {
    sq::io::ModelWeights w(sq::fuzz::scratch_dir());
    for (const auto& name : w.names()) {
      const auto& info = w.info(name);
      if (info.numel() > (int64_t(1) << 22)) continue;  // a legal but large read: not a finding
      // double: a float64 tensor may hold values beyond float range (a harness-only exception).
      (void)w.get(name).sum().item<double>();
    }
  });
  return 0;
}
