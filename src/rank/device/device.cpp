#include "rank/device/device.h"

#include <ATen/Context.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <unistd.h>

#ifdef SQ_WITH_CUDA
#include <cuda_runtime_api.h>
#endif
#if defined(SQ_WITH_CUDA) && __has_include(<c10/cuda/CUDACachingAllocator.h>)
#include <c10/cuda/CUDACachingAllocator.h>
#define SQ_HAVE_CUDA_ALLOCATOR 1
#endif

namespace sq::rank {

bool cuda_available() {
  return at::hasCUDA() && at::detail::getCUDAHooks().getNumGPUs() > 0;
}

int64_t cuda_device_count() {
  return cuda_available() ? static_cast<int64_t>(at::detail::getCUDAHooks().getNumGPUs()) : 0;
}

at::Device pick_device(bool force_cpu, int local_rank) {
  if (force_cpu || !cuda_available()) return at::Device(at::kCPU);
  const int n = static_cast<int>(at::detail::getCUDAHooks().getNumGPUs());
  return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(local_rank % n));
}

std::string describe_device(const at::Device& d) {
  return d.str();
}

uint64_t device_total_memory(const at::Device& d) {
  if (d.is_cuda()) {
#ifdef SQ_WITH_CUDA
    int prev = 0;
    if (cudaGetDevice(&prev) != cudaSuccess) return 0;
    size_t free_b = 0, total_b = 0;
    const bool ok = cudaSetDevice(d.index() < 0 ? prev : d.index()) == cudaSuccess &&
                    cudaMemGetInfo(&free_b, &total_b) == cudaSuccess;
    cudaSetDevice(prev);
    return ok ? static_cast<uint64_t>(total_b) : 0;
#else
    return 0;
#endif
  }
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) : 0;
}

void release_device_cache(const at::Device& dev) {
#ifdef SQ_HAVE_CUDA_ALLOCATOR
  if (dev.is_cuda()) c10::cuda::CUDACachingAllocator::emptyCache();
#endif
}

uint64_t device_peak_allocated(const at::Device& dev) {
#ifdef SQ_HAVE_CUDA_ALLOCATOR
  if (dev.is_cuda()) {
    const auto stats =
        c10::cuda::CUDACachingAllocator::getDeviceStats(dev.has_index() ? dev.index() : 0);
    return static_cast<uint64_t>(stats.allocated_bytes[0].peak);  // [0]: all pools together
  }
#endif
  (void)dev;
  return 0;
}

void synchronize_device(const at::Device& dev) {
  if (!dev.is_cpu()) at::zeros({1}, at::TensorOptions().device(dev)).cpu();  // D2H copy waits
}

}  // namespace sq::rank
