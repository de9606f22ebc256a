// Per-phase wall time inside a block solve (for the summary's timing table and the GPU
// benchmarks' "where the time goes").
//
// CONTRACT
//   lap(phase) synchronises the device (so queued GPU work is charged to the phase that queued
//   it) and adds the time since the previous lap (or construction) to out[phase].
#pragma once

#include <chrono>
#include <map>
#include <string>

#include <ATen/ATen.h>

#include "rank/device/device.h"

namespace sq::rank {

class PhaseClock {
 public:
  PhaseClock(const at::Device& dev, std::map<std::string, double>& out)
      : dev_(dev), out_(out), t_(std::chrono::steady_clock::now()) {}
  void lap(const std::string& phase) {
    synchronize_device(dev_);
    const auto now = std::chrono::steady_clock::now();
    out_[phase] += std::chrono::duration<double>(now - t_).count();
    t_ = now;
  }

 private:
  at::Device dev_;
  std::map<std::string, double>& out_;
  std::chrono::steady_clock::time_point t_;
};

}  // namespace sq::rank
