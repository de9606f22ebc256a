// Driver of the fused GPTQ kernel (gptq_cuda.h). Everything that depends only on H — dead
// columns, act order, damping, H⁻¹'s Cholesky factor — is done once for the stacked rows of all
// linears sharing H; the column loop of each lazy block is one kernel call; the lazy update of
// the remaining columns is one matmul (cuBLAS on CUDA).
#include "solvers/gptq_cuda.h"

#include <cmath>

#include "common/check.h"
#include "solvers/gptq_cuda_kernel.h"

namespace sq::solvers {
namespace {

void run_block(kernel::GptqBlockArgs& a, const at::Device& dev) {
  if (dev.is_cpu()) {
    kernel::gptq_block_host(a);
    return;
  }
#ifdef SQ_WITH_CUDA
  const int rc = kernel::gptq_block_cuda(a, nullptr);
  if (rc != 0)
    SQ_THROW(BackendError, "GPTQ fused kernel launch failed (cudaError " << rc << ") for "
                                                                         << a.n_rows << " rows");
#else
  SQ_THROW(BackendError, "GPTQ fused kernel: this build has no CUDA (device " << dev.str() << ")");
#endif
}

}  // namespace

bool gptq_cuda_built() {
#ifdef SQ_WITH_CUDA
  return true;
#else
  return false;
#endif
}

bool gptq_fused_supported(int64_t k, const QuantScheme& scheme, const GptqOptions& opts) {
  if (opts.block_size <= 0 || opts.block_size > kernel::kMaxBlock) return false;
  const int64_t g = scheme.group_for(k);
  if (g <= 0 || k % g != 0) return false;  // the reference reports the bad group size
  if (opts.static_groups || k / g == 1) return true;
  // The kernel finds dynamic groups' parameters from min/max itself; the range search runs only
  // in find_group_params.
  if (scheme.mse_norm > 0) return false;
  // Every dynamic group boundary is either inside a block with its whole group (computed in the
  // kernel) or at a block start (computed here from the current weights).
  for (int64_t col = 0; col < k; col += g) {
    const int64_t i1 = col / opts.block_size * opts.block_size;
    const int64_t i2 = std::min(i1 + opts.block_size, k);
    if (col + g > i2 && col != i1) return false;
  }
  return true;
}

std::vector<QuantizedLinear> gptq_quantize_fused(const std::vector<at::Tensor>& ws,
                                                 const at::Tensor& h_in, const QuantScheme& scheme,
                                                 const GptqOptions& opts,
                                                 const std::vector<std::string>& names) {
  SQ_CHECK(!ws.empty() && ws.size() == names.size(), "gptq_quantize_fused: one name per weight");
  validate_scheme(scheme, names[0]);
  const int64_t k = ws[0].size(1);
  std::vector<int64_t> rows;
  for (size_t i = 0; i < ws.size(); ++i) {
    SQ_REQUIRE(ws[i].dim() == 2 && ws[i].size(1) == k,
               names[i] << ": expected a [N, " << k << "] weight sharing the Hessian, got "
                        << ws[i].sizes());
    rows.push_back(ws[i].size(0));
  }
  if (!gptq_fused_supported(k, scheme, opts)) {
    std::vector<QuantizedLinear> out;
    for (size_t i = 0; i < ws.size(); ++i)
      out.push_back(gptq_quantize(ws[i], h_in, scheme, opts, names[i]));
    return out;
  }
  SQ_REQUIRE(h_in.dim() == 2 && h_in.size(0) == k && h_in.size(1) == k,
             names[0] << ": Hessian must be [" << k << ", " << k << "], got " << h_in.sizes());
  const int64_t group = scheme.group_for(k), n_groups = k / group;
  const at::Device dev = ws[0].device();
  std::vector<at::Tensor> w32;
  for (const auto& t : ws) w32.push_back(t.to(dev, at::kFloat));
  at::Tensor w = at::cat(w32, 0);
  SQ_REQUIRE(at::isfinite(w).all().item<bool>(), names[0] << ": weight contains non-finite values");
  const int64_t n = w.size(0);
  auto h = h_in.to(dev, h_in.scalar_type() == at::kDouble ? at::kDouble : at::kFloat).clone();

  SolveStats stats;
  auto dead = h.diagonal() == 0;
  stats.dead_columns = dead.sum().item<int64_t>();
  h.diagonal().masked_fill_(dead, 1.0);
  w.masked_fill_(dead.unsqueeze(0), 0.0);

  auto fopt = w.options();
  at::Tensor scale_tab = at::zeros({n_groups, n}, fopt), zero_tab = at::zeros({n_groups, n}, fopt);
  const bool upfront = opts.static_groups || n_groups == 1;
  if (upfront)
    for (int64_t g = 0; g < n_groups; ++g) {
      auto p = find_group_params(w.slice(1, g * group, (g + 1) * group), scheme, GridKind::kGptq);
      scale_tab[g].copy_(p.scale);
      zero_tab[g].copy_(p.zero);
    }

  at::Tensor perm = at::arange(k, w.options().dtype(at::kLong));
  if (scheme.act_order) {
    perm = std::get<1>(at::sort(h.diagonal(), /*stable=*/true, 0, /*descending=*/true));
    w = w.index_select(1, perm);
    h = h.index_select(0, perm).index_select(1, perm);
  }
  const auto invperm = at::argsort(perm);
  const auto perm_cpu = perm.to(at::kCPU);
  const int64_t* perm_p = perm_cpu.data_ptr<int64_t>();

  auto hinv_full = damped_inverse_factor(h, opts.damp_percent, stats);
  if (!hinv_full.defined()) {
    std::vector<QuantizedLinear> out;
    for (size_t i = 0; i < ws.size(); ++i) {
      auto q = quantize_rtn(ws[i].to(dev, at::kFloat).masked_fill(dead.unsqueeze(0), 0.0), scheme,
                            GridKind::kGptq, names[i]);
      SolveStats s = stats;
      s.rtn_fallback = true;
      s.error = q.stats.error;
      q.stats = s;
      out.push_back(std::move(q));
    }
    return out;
  }
  const auto hinv = hinv_full.to(at::kFloat);

  auto codes = at::empty_like(w), deq = at::empty_like(w);
  auto loss = at::zeros({n}, fopt);
  for (int64_t i1 = 0; i1 < k; i1 += opts.block_size) {
    const int64_t i2 = std::min(i1 + opts.block_size, k), count = i2 - i1;
    auto w1 = w.slice(1, i1, i2).contiguous();
    auto h1 = hinv.slice(0, i1, i2).slice(1, i1, i2).contiguous();
    auto c1 = at::empty({n, count}, fopt), d1 = at::empty({n, count}, fopt);
    auto e1 = at::empty({n, count}, fopt);
    kernel::GptqBlockArgs a;
    a.w = w1.data_ptr<float>();
    a.hinv = h1.data_ptr<float>();
    a.codes = c1.data_ptr<float>();
    a.deq = d1.data_ptr<float>();
    a.err = e1.data_ptr<float>();
    a.loss = loss.data_ptr<float>();
    a.scale = scale_tab.data_ptr<float>();
    a.zero = zero_tab.data_ptr<float>();
    a.n_rows = static_cast<int>(n);
    a.count = static_cast<int>(count);
    a.max_q = static_cast<int>(scheme.max_q());
    a.half_q = 1 << (scheme.bits - 1);
    a.zero_point = scheme.zero_point ? 1 : 0;
    a.recip_div = dev.is_cuda() ? 1 : 0;  // as ATen divides by a scalar on that device
    for (int64_t i = 0; i < count; ++i) {
      const int64_t col = i1 + i;
      a.col_group[i] = static_cast<int>(opts.static_groups ? perm_p[col] / group : col / group);
      a.col_end[i] = 0;
      if (upfront || col % group != 0) continue;
      const int64_t end = std::min(col + group, k);
      if (end <= i2) {
        a.col_end[i] = static_cast<int>(end - i1);
      } else {  // block start (gptq_fused_supported): w still holds the current weights here
        auto p = find_group_params(w.slice(1, col, end), scheme, GridKind::kGptq);
        scale_tab[col / group].copy_(p.scale);
        zero_tab[col / group].copy_(p.zero);
      }
    }
    run_block(a, dev);
    codes.slice(1, i1, i2).copy_(c1);
    deq.slice(1, i1, i2).copy_(d1);
    if (i2 < k) w.slice(1, i2).addmm_(e1, hinv.slice(0, i1, i2).slice(1, i2), 1.0, -1.0);
  }

  codes = codes.index_select(1, invperm);
  deq = deq.index_select(1, invperm);
  auto pos = (scheme.act_order && !opts.static_groups) ? invperm : at::arange(k, invperm.options());
  const auto g_idx = at::div(pos, group, "floor").to(at::kInt);
  std::vector<QuantizedLinear> out;
  int64_t r0 = 0;
  for (size_t i = 0; i < ws.size(); ++i) {
    const int64_t r1 = r0 + rows[i];
    QuantizedLinear q;
    q.codes = codes.slice(0, r0, r1).to(at::kInt);
    q.dequant = deq.slice(0, r0, r1).contiguous();
    q.scales = scale_tab.slice(1, r0, r1).contiguous();
    q.zeros = zero_tab.slice(1, r0, r1).to(at::kInt);
    q.g_idx = g_idx;
    q.stats = stats;
    q.stats.error = loss.slice(0, r0, r1).sum().item<double>();
    out.push_back(std::move(q));
    r0 = r1;
  }
  return out;
}

}  // namespace sq::solvers
