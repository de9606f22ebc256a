// Device selection for a rank: CUDA when this build and the machine have it (and --force_cpu is
// off), else CPU.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <string>

namespace sq::rank {

bool cuda_available();
// Number of CUDA devices visible to this process (0 without CUDA).
int64_t cuda_device_count();
// local_rank selects the GPU on multi-GPU hosts.
at::Device pick_device(bool force_cpu, int local_rank = 0);
std::string describe_device(const at::Device& d);
// Total memory of a CUDA device, or of the host (physical RAM) for the CPU; 0 when unknown.
uint64_t device_total_memory(const at::Device& d);
// Returns cached device memory to the driver (no-op on CPU or without CUDA).
void release_device_cache(const at::Device& dev);
// Waits for the work queued on dev's current stream (for honest phase timings).
void synchronize_device(const at::Device& dev);
// Peak bytes held by the CUDA caching allocator's tensors on dev since the process started
// (what torch.cuda.max_memory_allocated reports); 0 on CPU or without CUDA.
uint64_t device_peak_allocated(const at::Device& dev);

// Whether a block's solved codes (uint8, one byte per quantized weight: `code_bytes`) wait for
// the export in host memory rather than on a GPU of `device_bytes` total memory
// (ResultStore::kCompactHost, block_quant.h): when they would take more than a sixteenth of it.
// The planner's host estimate counts them then (coordinator/plan/plan.h).
inline bool codes_wait_on_host(uint64_t code_bytes, uint64_t device_bytes) {
  return code_bytes > device_bytes / 16;
}

}  // namespace sq::rank
