// ATen side of rank/model/fused_kernels.cu: which tensors qualify, and the reference expressions
// for everything else. Kernels launch on the legacy default stream, where ATen queues its own work
// in this program (no other streams are set up), so ordering needs no extra synchronisation.
#include "rank/model/fused.h"

#include <cstdlib>

#include "common/check.h"
#include "solvers/cpu_tiles.h"
#ifdef SQ_WITH_CUDA
#include "rank/model/fused_kernels.h"
#endif

namespace sq::rank {
namespace {

#ifdef SQ_WITH_CUDA
// Kernel dtype codes (fused_kernels.h).
struct DtypeRow {
  at::ScalarType type;
  int code;
};
constexpr DtypeRow kDtypes[] = {{at::kFloat, 0}, {at::kBFloat16, 1}, {at::kHalf, 2}};

int dtype_code(const at::Tensor& t) {
  for (const auto& r : kDtypes)
    if (r.type == t.scalar_type()) return r.code;
  return -1;
}

void check_launch(int rc, const char* what) {
  if (rc != 0) SQ_THROW(BackendError, what << " kernel launch failed (cudaError " << rc << ")");
}
#endif

bool qualifies(const at::Tensor& a, const at::Tensor& b) {
  return fused_enabled() && a.is_cuda() && b.is_cuda() && a.scalar_type() == b.scalar_type() &&
         a.sizes() == b.sizes() && a.is_contiguous() && b.is_contiguous();
}

}  // namespace

bool fused_enabled() {
#ifdef SQ_WITH_CUDA
  static const bool off = std::getenv("SQ_NO_FUSED") != nullptr;
  return !off;
#else
  return false;
#endif
}

at::Tensor gated_act(const at::Tensor& g, const at::Tensor& u, Activation act) {
#ifdef SQ_WITH_CUDA
  if (act == Activation::Silu && qualifies(g, u) && dtype_code(g) >= 0) {
    at::Tensor out = at::empty_like(g);
    check_launch(kernel::gated_silu_cuda(g.data_ptr(), u.data_ptr(), out.data_ptr(), g.numel(),
                                         dtype_code(g), nullptr),
                 "gated SiLU");
    return out;
  }
#endif
  return solvers::tiles::map_rows2(g, u, [act](const at::Tensor& a, const at::Tensor& b) {
    return layers::activate(a, act) * b;
  });
}

bool rotary_half_fused(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                       at::Tensor& out) {
#ifdef SQ_WITH_CUDA
  if (!fused_enabled() || !x.is_cuda() || x.dim() != 4 || x.size(3) % 2 != 0 || dtype_code(x) < 0 ||
      cos.scalar_type() != x.scalar_type() || sin.scalar_type() != x.scalar_type() ||
      cos.device() != x.device())
    return false;
  const int64_t B = x.size(0), T = x.size(2), D = x.size(3);
  const at::Tensor c = cos.expand({B, T, D}), s = sin.expand({B, T, D});
  if (c.strides() != s.strides()) return false;
  at::Tensor o = at::empty_like(x);  // preserve_format: x's strides when x is dense
  kernel::RotaryArgs a;
  a.x = x.data_ptr();
  a.out = o.data_ptr();
  a.cos = c.data_ptr();
  a.sin = s.data_ptr();
  a.B = B;
  a.H = x.size(1);
  a.T = T;
  a.D = D;
  for (int i = 0; i < 4; ++i) {
    a.xs[i] = x.stride(i);
    a.os[i] = o.stride(i);
  }
  for (int i = 0; i < 3; ++i) a.cs[i] = c.stride(i);
  a.dtype = dtype_code(x);
  check_launch(kernel::rotary_half_cuda(a, nullptr), "rotary");
  out = o;
  return true;
#else
  (void)x, (void)cos, (void)sin, (void)out;
  return false;
#endif
}

at::Tensor sum_sq_diff(const at::Tensor& a, const at::Tensor& b) {
  SQ_CHECK(a.sizes() == b.sizes() && a.scalar_type() == b.scalar_type(),
           "sum_sq_diff: " << a.sizes() << " " << a.scalar_type() << " vs " << b.sizes() << " "
                           << b.scalar_type());
#ifdef SQ_WITH_CUDA
  if (qualifies(a, b) && dtype_code(a) >= 0) {
    const int64_t parts = kernel::sum_sq_diff_partials(a.numel());
    at::Tensor buf = at::empty({parts + 1}, a.options().dtype(at::kFloat));
    float* p = buf.data_ptr<float>();
    check_launch(kernel::sum_sq_diff_cuda(a.data_ptr(), b.data_ptr(), a.numel(), dtype_code(a),
                                          p + 1, p, nullptr),
                 "sum of squared differences");
    return buf[0];
  }
#endif
  return at::linalg_vector_norm(a - b, 2, c10::nullopt, false, at::kFloat).pow(2);
}

}  // namespace sq::rank
