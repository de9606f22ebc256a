// The fused GPTQ driver + kernel against the reference solver (gptq_quantize). On the CPU the
// kernel's host emulation runs (same arithmetic); on CUDA the real kernel (skipped without a
// GPU). Float summation order differs between the paths, so a rounding tie can flip a code and
// GPTQ's error feedback carries the difference on: the comparison allows kMaxCodeMismatch of
// the codes to differ and the reconstruction errors to agree within kErrorRelTol.
#include <gtest/gtest.h>

#include "solver_test_util.h"
#include "solvers/gptq.h"
#include "solvers/gptq_cuda.h"

namespace sq::solvers {
namespace {

constexpr double kMaxCodeMismatch = 0.01;  // fraction of codes
constexpr double kErrorRelTol = 0.02;      // |err_fused − err_ref| / err_ref (output error)

struct Case {
  const char* name;
  QuantScheme scheme;
  GptqOptions opts;
};

at::Tensor hessian_of(const at::Tensor& x) {
  HessianAccumulator acc(x.size(1), x.device());
  acc.add(x);
  return acc.finalize();
}

// ‖(W − Q) Xᵀ‖² — the output error GPTQ minimizes.
double output_error(const at::Tensor& w, const at::Tensor& q, const at::Tensor& x) {
  return (w - q).to(at::kDouble).mm(x.to(at::kDouble).t()).pow(2).sum().item<double>();
}

void compare(const Case& c, const at::Device& dev) {
  SCOPED_TRACE(c.name);
  const int64_t k = 512;  // g256 over blocks of 128: dynamic boundaries at block starts
  auto x = test::correlated_inputs(1024, k, 7).to(dev);
  auto gen = test::rng(11);
  std::vector<at::Tensor> ws = {at::randn({96, k}, gen).to(dev), at::randn({32, k}, gen).to(dev)};
  auto h = hessian_of(x);
  ASSERT_TRUE(gptq_fused_supported(k, c.scheme, c.opts));
  auto fused = gptq_quantize_fused(ws, h, c.scheme, c.opts, {"a", "b"});
  ASSERT_EQ(fused.size(), 2u);
  for (size_t i = 0; i < ws.size(); ++i) {
    auto ref = gptq_quantize(ws[i], h, c.scheme, c.opts, "ref");
    const auto& f = fused[i];
    ASSERT_EQ(f.codes.sizes(), ref.codes.sizes());
    ASSERT_EQ(f.scales.sizes(), ref.scales.sizes());
    EXPECT_TRUE(at::equal(f.g_idx.cpu(), ref.g_idx.cpu()));
    const double mismatch = (f.codes != ref.codes).to(at::kDouble).mean().item<double>();
    EXPECT_LE(mismatch, kMaxCodeMismatch);
    // The canonical tensors reproduce the dequantized weight exactly.
    auto rebuilt =
        dequantize_canonical(f.codes.cpu(), f.zeros.cpu(), f.scales.cpu(), f.g_idx.cpu());
    EXPECT_TRUE(at::equal(rebuilt, f.dequant.cpu()));
    const double ef = output_error(ws[i], f.dequant, x), er = output_error(ws[i], ref.dequant, x);
    EXPECT_NEAR(ef, er, kErrorRelTol * er);
    EXPECT_NEAR(f.stats.error, ref.stats.error, kErrorRelTol * ref.stats.error);
    EXPECT_EQ(f.stats.dead_columns, ref.stats.dead_columns);
    // And GPTQ beats RTN on the same grid, so a broken feedback path cannot pass.
    auto rtn = quantize_rtn(ws[i], c.scheme, GridKind::kGptq);
    EXPECT_LT(ef, output_error(ws[i], rtn.dequant, x));
  }
}

const Case kCases[] = {
    {"w4 g128 asym", {4, 128, true}, {}},
    {"w4 g64 sym", {4, 64, false}, {}},
    {"w3 g128 act order", {3, 128, true, true}, {0.01, 128, false}},
    {"w4 g128 act order static", {4, 128, true, true}, {0.01, 128, true}},
    {"w4 per-row", {4, -1, true}, {}},
    {"w8 g256 block 128", {8, 256, true}, {}},
    {"w4 g32 block 64", {4, 32, true, false}, {0.01, 64, false}},
    // The range search (--mse) with groups found up front: the kernel path stays in use.
    {"w4 g128 act order static mse", {4, 128, true, true, 2.4}, {0.01, 128, true}},
    {"w3 per-row mse", {3, -1, true, false, 2.4}, {}},
};

TEST(GptqFused, HostEmulationMatchesReference) {
  for (const auto& c : kCases) compare(c, at::kCPU);
}

TEST(GptqFused, CudaKernelMatchesReference) {
  if (!gptq_cuda_built() || !at::hasCUDA()) GTEST_SKIP() << "no CUDA device in this build/machine";
  for (const auto& c : kCases) compare(c, at::Device(at::kCUDA));
}

TEST(GptqFused, DeadColumnsAndUnsupportedFallback) {
  const int64_t k = 256;
  auto x = test::correlated_inputs(512, k, 3);
  x.select(1, 5).zero_();
  auto h = hessian_of(x);
  auto w = at::randn({16, k}, test::rng(5));
  auto f = gptq_quantize_fused({w}, h, {4, 128, true}, {}, {"w"});
  EXPECT_EQ(f[0].stats.dead_columns, 1);
  EXPECT_TRUE((f[0].dequant.select(1, 5) == 0).all().item<bool>());
  GptqOptions big;
  big.block_size = 256;  // beyond the kernel's 128: the reference runs
  EXPECT_FALSE(gptq_fused_supported(k, {4, 128, true}, big));
  auto g = gptq_quantize_fused({w}, h, {4, 128, true}, big, {"w"});
  auto ref = gptq_quantize(w, h, {4, 128, true}, big, "w");
  EXPECT_TRUE(at::equal(g[0].codes, ref.codes));
  // g192 over blocks of 128: the boundary at 192 opens a group that ends past its block.
  EXPECT_FALSE(gptq_fused_supported(384, {4, 192, true}, {}));
  EXPECT_TRUE(gptq_fused_supported(384, {4, 128, true}, {}));
  // Dynamic groups with the range search: the kernel finds those from min/max itself.
  EXPECT_FALSE(gptq_fused_supported(384, {4, 128, true, false, 2.4}, {}));
  auto m = gptq_quantize_fused({w}, h, {4, 128, true, false, 2.4}, {}, {"w"});
  auto mref = gptq_quantize(w, h, {4, 128, true, false, 2.4}, {}, "w");
  EXPECT_TRUE(at::equal(m[0].codes, mref.codes));
}

}  // namespace
}  // namespace sq::solvers
