// See gram.h. The half-precision GEMM with a float32 result (at::mm's out_dtype overload, newer
// LibTorch) is found at compile time by overload resolution and tried at run time: a build or a
// GPU without it falls back to TF32, which needs a float32 copy of x and runs at about half the
// tensor-core rate (and accumulates more tightly, which is why the Hessians keep it).
#include "solvers/gram.h"

#include <exception>
#include <string>

#include "solvers/tf32.h"

namespace sq::solvers {
namespace {

// at::mm(a, b, out_dtype) when this ATen declares it; an undefined tensor otherwise.
template <class T>
auto mm_f32_out(const T& a, const T& b, int) -> decltype(at::mm(a, b, at::kFloat)) {
  return at::mm(a, b, at::kFloat);
}
template <class T>
at::Tensor mm_f32_out(const T&, const T&, long) {
  return at::Tensor();
}

const char* g_path = "none yet";
bool g_half_out_works = true;  // until a call fails

}  // namespace

at::Tensor gram_f32(const at::Tensor& x, bool fast) {
  const bool half = x.scalar_type() == at::kBFloat16 || x.scalar_type() == at::kHalf;
  if (x.is_cuda() && half) {
    if (fast && g_half_out_works) {
      try {
        at::Tensor h = mm_f32_out(x.t(), x, 0);
        if (h.defined() && h.scalar_type() == at::kFloat) {
          g_path = "bf16 GEMM, fp32 out";
          return h;
        }
      } catch (const std::exception& e) {
        // Out of memory is the caller's to handle (the OOM back-off), not a missing kernel.
        if (std::string(e.what()).find("out of memory") != std::string::npos) throw;
        // This LibTorch declares the overload but has no kernel for it here: TF32 from now on.
      }
      g_half_out_works = false;
    }
    g_path = "TF32";
    const at::Tensor xf = x.to(at::kFloat);
    const CublasTf32 tf32(true);
    return at::mm(xf.t(), xf);
  }
  const at::Tensor xf = x.to(at::kFloat);
  return at::mm(xf.t(), xf);
}

const char* gram_f32_path() {
  return g_path;
}

}  // namespace sq::solvers
