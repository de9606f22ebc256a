// cuBLAS's TF32 switch is process-wide state (at::globalContext()). Code that needs it one way
// for a few products sets it through this scope so that it is always restored.
//
// CONTRACT
//   CublasTf32 s(allow): TF32 for cuBLAS float32 GEMMs is `allow` while s lives; the previous
//   setting comes back when s goes out of scope, also when an exception leaves it.
#pragma once

#include <ATen/ATen.h>

namespace sq::solvers {

class CublasTf32 {
 public:
  explicit CublasTf32(bool allow) : saved_(at::globalContext().allowTF32CuBLAS()) {
    at::globalContext().setAllowTF32CuBLAS(allow);
  }
  ~CublasTf32() { at::globalContext().setAllowTF32CuBLAS(saved_); }
  CublasTf32(const CublasTf32&) = delete;
  CublasTf32& operator=(const CublasTf32&) = delete;

 private:
  bool saved_;
};

}  // namespace sq::solvers
