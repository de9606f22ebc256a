// Host emulation of the fused GPTQ block kernel (gptq_cuda_kernel.h): the same per-row column
// loop with the same scalar helpers, so the CPU can check the fused driver's bookkeeping
// (groups, act order, shared Hessians) against the reference solver.
#include <cmath>

#include "solvers/gptq_cuda_kernel.h"

namespace sq::solvers::kernel {

void gptq_block_host(const GptqBlockArgs& a) {
  const int c = a.count;
  for (int r = 0; r < a.n_rows; ++r) {
    float* w = a.w + static_cast<int64_t>(r) * c;
    const int64_t o = static_cast<int64_t>(r) * c;
    float scale = 0, zero = 0, loss = 0;
    for (int i = 0; i < c; ++i) {
      const int64_t t = static_cast<int64_t>(a.col_group[i]) * a.n_rows + r;
      if (a.col_end[i] > 0) {
        float mn = w[i], mx = w[i];
        for (int j = i + 1; j < a.col_end[i]; ++j) {
          mn = std::fmin(mn, w[j]);
          mx = std::fmax(mx, w[j]);
        }
        gptq_params(mn, mx, a, scale, zero);
        a.scale[t] = scale;
        a.zero[t] = zero;
      } else {
        scale = a.scale[t];
        zero = a.zero[t];
      }
      const float q = gptq_code(w[i], scale, zero, a.max_q);
      const float dq = (q - zero) * scale;
      const float e = div_scalar(w[i] - dq, a.hinv[i * c + i], a.recip_div);
      a.codes[o + i] = q;
      a.deq[o + i] = dq;
      a.err[o + i] = e;
      loss += e * e * 0.5f;
      const float* h = a.hinv + static_cast<int64_t>(i) * c;
      for (int j = i; j < c; ++j) w[j] -= e * h[j];
    }
    a.loss[r] += loss;
  }
}

}  // namespace sq::solvers::kernel
