#include "rank/device.h"

#include <ATen/Context.h>
#include <ATen/detail/CUDAHooksInterface.h>

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

}  // namespace sq::rank
