// Template part of oom.h (included at its end).
#pragma once

#include <sstream>

namespace sq::rank {

template <typename Result>
Result with_seq_len_backoff(
    CalibActivations& a, int64_t block_index, const at::Device& dev,
    const std::function<Result(const CalibActivations&)>& attempt,
    const std::function<void(int64_t, int64_t, const std::string&)>& on_halve) {
  for (;;) {
    std::string what;
    try {
      return attempt(a);
    } catch (const std::exception& e) {
      if (!is_out_of_memory(e)) throw;
      what = e.what();
    }
    release_device_cache(dev);
    const int64_t t = a.seq_len(), half = t / 2;
    if (half < kMinSeqLen) {
      std::ostringstream os;
      os << "block " << block_index << ": out of memory at calibration seq_len " << t
         << " and halving it would go below the minimum " << kMinSeqLen
         << " (use fewer samples, a larger --gpu-mem-limit, or a bigger GPU): "
         << what.substr(0, 400);
      throw BackendError(os.str());
    }
    on_halve(t, half, what.substr(0, 200));
    halve_sequences(a);
  }
}

}  // namespace sq::rank
