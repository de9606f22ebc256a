// The Gram-form AWQ clip search (awq_clip_search, awq_clip.h) against the direct-form reference
// (awq_clip_search_reference) on random weights with outlier rows and columns: the minimum
// errors agree to a relative tolerance, the chosen shrink factors agree almost everywhere, and
// where they differ the fast choice is a near-tie under an independently computed direct error.
// Also the GPU path against the CPU reference (skipped without CUDA) and a CPU timing.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <string>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include "solver_test_util.h"
#include "solvers/awq.h"
#include "solvers/awq_clip.h"
#include "solvers/gptq_cuda.h"
#include "solvers/quant_grid.h"

namespace sq::solvers {
namespace {

// Relative difference allowed between the Gram and direct minimum errors (rounding only).
constexpr double kErrRelTolF32 = 1e-4;
constexpr double kErrRelTolF64 = 1e-10;
// Fraction of (row, group) whose chosen shrink factor must be identical.
constexpr double kShrinkAgreeF32 = 0.995;
constexpr double kShrinkAgreeF64 = 1.0;
// GPU vs CPU: fraction of (row, group) whose errors may differ by more than kErrRelTolF32
// because the quantizer's fp32 scale rounds differently on the two devices (see below).
constexpr double kCrossDeviceOutliers = 0.005;

struct Tolerance {
  double err_rel;
  double agree;
};
Tolerance tolerance_for(at::ScalarType dt) {
  return dt == at::kDouble ? Tolerance{kErrRelTolF64, kShrinkAgreeF64}
                           : Tolerance{kErrRelTolF32, kShrinkAgreeF32};
}

// N(0, 0.02²) weights with a few outlier input columns (×8), outlier output rows (×4) and single
// large entries: the groups where clipping pays.
at::Tensor outlier_weight(int64_t n, int64_t k, uint64_t seed, at::ScalarType dt) {
  auto gen = test::rng(seed);
  auto w = at::randn({n, k}, gen, at::kDouble) * 0.02;
  auto cols = at::randint(k, {std::max<int64_t>(2, k / 64)}, gen, at::kLong);
  w.index_copy_(1, cols, w.index_select(1, cols) * 8.0);
  auto rows = at::randint(n, {std::max<int64_t>(1, n / 16)}, gen, at::kLong);
  w.index_copy_(0, rows, w.index_select(0, rows) * 4.0);
  auto spikes = at::randint(n * k, {n / 2}, gen, at::kLong);
  w.view({-1}).index_fill_(0, spikes, 0.3);
  return w.to(dt);
}

// The direct-form error of clamping W to [min_val, max_val] per (row, group), on the search's
// sample, in the work dtype, written independently of awq_clip.cpp (pseudo_quantize is the
// shared grid).
at::Tensor direct_error(const at::Tensor& w, const at::Tensor& x_sampled, const at::Tensor& min_val,
                        const at::Tensor& max_val, const QuantScheme& scheme) {
  const int64_t n = w.size(0), k = w.size(1), groups = max_val.size(1), g = k / groups;
  auto hi = max_val.unsqueeze(-1), lo = min_val.unsqueeze(-1);
  auto wg = w.reshape({n, groups, g});
  auto cur = at::max(at::min(wg, hi), lo).reshape({n, k});
  auto d = (pseudo_quantize(cur, scheme, GridKind::kAwq).to(w.scalar_type()) - w)
               .reshape({n, groups, g});
  auto parts = at::einsum("tgj,ngj->ntg", {x_sampled.reshape({-1, groups, g}), d});
  return parts.pow(2).mean(1);  // [n, groups]
}

struct Comparison {
  double max_err_rel = 0;     // max relative difference of min_error
  double agree = 0;           // fraction of identical shrink factors
  double worst_near_tie = 0;  // max relative excess of the fast choice's direct error
  int64_t differing = 0;
  double within = 0;  // fraction of (row, group) whose min_error is within the tolerance
};

// `fast`, `ref`, `w` and x_sampled (the search's sample) on one device, in the work dtype.
Comparison compare(const AwqClipResult& fast, const AwqClipResult& ref, const at::Tensor& w,
                   const at::Tensor& x_sampled, const QuantScheme& scheme, double tol_rel) {
  Comparison c;
  auto fe = fast.min_error.to(at::kDouble), re = ref.min_error.to(at::kDouble);
  auto rel = (fe - re).abs() / re.abs().clamp_min(1e-30);
  c.max_err_rel = rel.max().item<double>();
  c.within = (rel <= tol_rel).to(at::kDouble).mean().item<double>();
  auto same = fast.shrink.eq(ref.shrink) & fast.shrink_lower.eq(ref.shrink_lower);
  c.agree = same.to(at::kDouble).mean().item<double>();
  c.differing = (~same).sum().item<int64_t>();
  if (c.differing > 0) {
    auto e_fast = direct_error(w, x_sampled, fast.min_val.to(w.scalar_type()),
                               fast.max_val.to(w.scalar_type()), scheme)
                      .to(at::kDouble);
    auto excess = ((e_fast - re) / re.abs().clamp_min(1e-30)).masked_select(~same);
    c.worst_near_tie = excess.abs().max().item<double>();
  }
  return c;
}

void expect_close(const Comparison& c, const Tolerance& tol, const std::string& what) {
  EXPECT_LE(c.max_err_rel, tol.err_rel) << what;
  EXPECT_GE(c.agree, tol.agree) << what << ": " << c.differing << " choices differ";
  EXPECT_LE(c.worst_near_tie, tol.err_rel) << what << ": a differing choice is no near-tie";
}

struct Case {
  int64_t n, k, group;
  int bits;
  bool zero_point;
  at::ScalarType dtype;
  int64_t tokens;     // before the stride-max(1, tokens/512) sampling
  int64_t max_chunk;  // AwqClipOptions::max_chunk_elements (small values force row chunks)
};

const Case kCases[] = {
    {96, 256, 64, 4, true, at::kFloat, 700, int64_t{1} << 26},
    {80, 512, 128, 3, true, at::kFloat, 1100, 40000},
    {64, 1024, 128, 4, false, at::kFloat, 600, int64_t{1} << 26},
    {72, 768, 64, 3, false, at::kFloat, 1536, 100000},
    {64, 1024, 64, 4, true, at::kFloat, 512, int64_t{1} << 26},
    {64, 256, 64, 4, true, at::kDouble, 700, 20000},
    {48, 512, 128, 3, false, at::kDouble, 1100, int64_t{1} << 26},
    {32, 1024, 128, 4, true, at::kDouble, 512, int64_t{1} << 26},
    {40, 768, 64, 3, true, at::kDouble, 600, int64_t{1} << 26},
};

std::string describe(const Case& c) {
  return "N=" + std::to_string(c.n) + " K=" + std::to_string(c.k) + " g" + std::to_string(c.group) +
         " w" + std::to_string(c.bits) + (c.zero_point ? " zp" : " sym") +
         (c.dtype == at::kDouble ? " f64" : " f32");
}

at::Tensor sample_of(const at::Tensor& x, const AwqClipOptions& opts) {
  return awq_clip_sample(x, 0, x.size(0), opts);
}

TEST(AwqClipFast, GramFormMatchesTheDirectReference) {
  uint64_t seed = 100;
  for (const Case& c : kCases) {
    const QuantScheme scheme{c.bits, c.group, c.zero_point};
    const at::Tensor w = outlier_weight(c.n, c.k, seed++, c.dtype);
    const at::Tensor x = test::correlated_inputs(c.tokens, c.k, seed++, c.dtype);
    AwqClipOptions opts;
    opts.max_chunk_elements = c.max_chunk;
    const AwqClipResult fast = awq_clip_search(w, x, scheme, opts);
    const AwqClipResult ref = awq_clip_search_reference(w, x, scheme, opts);
    ASSERT_EQ(fast.min_error.sizes(), (at::IntArrayRef{c.n, c.k / c.group})) << describe(c);
    EXPECT_EQ(fast.min_error.scalar_type(), c.dtype) << describe(c);
    // Non-vacuous: some groups are clipped (the outliers) and some are not.
    const double clipped = (ref.shrink < 1.0).to(at::kDouble).mean().item<double>();
    EXPECT_GT(clipped, 0.0) << describe(c);
    EXPECT_LT(clipped, 1.0) << describe(c);
    const Comparison cmp =
        compare(fast, ref, w, sample_of(x, opts), scheme, tolerance_for(c.dtype).err_rel);
    expect_close(cmp, tolerance_for(c.dtype), describe(c));
    std::printf("[ measured ] %s: clipped %.3f, max rel err diff %.2e, agree %.4f\n",
                describe(c).c_str(), clipped, cmp.max_err_rel, cmp.agree);
    EXPECT_TRUE(
        at::equal(fast.max_val, (w.abs().reshape({c.n, -1, c.group}).amax(-1) * fast.shrink)))
        << describe(c);
  }
}

// --clip-asym: the same agreement for the (upper, lower) pairs, on a subset of the cases.
TEST(AwqClipFast, AsymGramFormMatchesTheDirectReference) {
  uint64_t seed = 500;
  for (const Case& c : {kCases[0], kCases[1], kCases[5], kCases[6]}) {
    const QuantScheme scheme{c.bits, c.group, c.zero_point};
    const at::Tensor w = outlier_weight(c.n, c.k, seed++, c.dtype);
    const at::Tensor x = test::correlated_inputs(c.tokens, c.k, seed++, c.dtype);
    AwqClipOptions opts;
    opts.max_chunk_elements = c.max_chunk;
    opts.asym = true;
    const AwqClipResult fast = awq_clip_search(w, x, scheme, opts);
    const AwqClipResult ref = awq_clip_search_reference(w, x, scheme, opts);
    const double lopsided = fast.shrink.ne(fast.shrink_lower).to(at::kDouble).mean().item<double>();
    EXPECT_GT(lopsided, 0.0) << describe(c) << ": no group took different bounds";
    const Comparison cmp =
        compare(fast, ref, w, sample_of(x, opts), scheme, tolerance_for(c.dtype).err_rel);
    expect_close(cmp, tolerance_for(c.dtype), "asym " + describe(c));
    std::printf("[ measured ] asym %s: different bounds %.3f, max rel err diff %.2e, agree %.4f\n",
                describe(c).c_str(), lopsided, cmp.max_err_rel, cmp.agree);
  }
}

TEST(AwqClipFast, SearchIsTheSumsThenThePick) {
  const QuantScheme scheme{4, 64, true};
  const at::Tensor w = outlier_weight(40, 256, 7, at::kFloat);
  const at::Tensor x = test::correlated_inputs(1200, 256, 8);
  AwqClipOptions opts;
  opts.max_chunk_elements = 30000;  // several row chunks
  const at::Tensor xs = sample_of(x, opts);
  const AwqClipResult whole = awq_clip_search(w, x, scheme, opts);
  const AwqClipResult parts =
      awq_clip_pick(w, awq_clip_error_sums(w, xs, scheme, opts), xs.size(0), scheme, opts);
  EXPECT_TRUE(at::equal(whole.min_error, parts.min_error));
  EXPECT_TRUE(at::equal(whole.shrink, parts.shrink));
  EXPECT_TRUE(at::equal(whole.max_val, parts.max_val));
}

// --clip-tokens 0: every token is measured. The Gram matrix is then summed over token chunks
// (awq_clip.cpp's kGramChunkTokens = 16384); the float64 reference over the same tokens is the
// truth. 40000 tokens make three chunks.
TEST(AwqClipFast, EveryTokenMatchesTheReferenceAcrossGramChunks) {
  const QuantScheme scheme{4, 64, true};
  const at::Tensor w = outlier_weight(24, 128, 11, at::kDouble);
  const at::Tensor x = test::correlated_inputs(40000, 128, 12, at::kDouble);
  AwqClipOptions all;
  all.n_sample_tokens = 0;
  EXPECT_EQ(awq_clip_stride(40000, all), 1);
  EXPECT_EQ(awq_clip_sample(x, 0, x.size(0), all).size(0), 40000);
  const AwqClipResult fast = awq_clip_search(w, x, scheme, all);
  const AwqClipResult ref = awq_clip_search_reference(w, x, scheme, all);
  const Comparison cmp = compare(fast, ref, w, x, scheme, tolerance_for(at::kDouble).err_rel);
  expect_close(cmp, tolerance_for(at::kDouble), "every token, f64");
  // The default still samples: 40000 / 512 = stride 78 → 513 tokens.
  EXPECT_EQ(awq_clip_stride(40000, AwqClipOptions{}), 78);
  EXPECT_EQ(sample_of(x, AwqClipOptions{}).size(0), 513);
}

// On the GPU both forms use the same Q (the fused kernel), so the Gram form must match the GPU
// reference as tightly as on the CPU. Against the CPU reference, Q itself differs in rare groups
// (CUDA divides a tensor by a host scalar as a multiplication by its reciprocal, so the AWQ
// scale (max − min) / max_q can differ by an ulp and round to another fp16 scale), so there the
// tolerances must hold for all but kCrossDeviceOutliers of the (row, group) pairs.
void expect_gpu_matches(const at::Tensor& w, const at::Tensor& x, const QuantScheme& scheme,
                        const AwqClipOptions& opts, const std::string& what) {
  const at::Device dev(at::kCUDA, 0);
  const at::Tensor wd = w.to(dev), xd = x.to(dev), xs = sample_of(x, opts);
  const AwqClipResult gpu = awq_clip_search(wd, xd, scheme, opts);
  EXPECT_TRUE(gpu.min_error.is_cuda()) << what;
  const AwqClipResult gpu_ref = awq_clip_search_reference(wd, xd, scheme, opts);
  const Comparison same_q = compare(gpu, gpu_ref, wd, xs.to(dev), scheme, kErrRelTolF32);
  expect_close(same_q, tolerance_for(at::kFloat), "GPU Gram vs GPU reference, " + what);
  const AwqClipResult cpu_ref = awq_clip_search_reference(w, x, scheme, opts);
  const AwqClipResult host{gpu.max_val.cpu(), gpu.shrink.cpu(), gpu.min_error.cpu(),
                           gpu.min_val.cpu(), gpu.shrink_lower.cpu()};
  const Comparison cross = compare(host, cpu_ref, w, xs, scheme, kErrRelTolF32);
  EXPECT_GE(cross.within, 1.0 - kCrossDeviceOutliers) << "GPU Gram vs CPU reference, " << what;
  EXPECT_GE(cross.agree, kShrinkAgreeF32) << "GPU Gram vs CPU reference, " << what;
  std::printf(
      "[ measured ] GPU %s: vs GPU reference max rel err diff %.2e, agree %.4f; vs CPU "
      "reference within tol %.4f, agree %.4f, max rel err diff %.2e\n",
      what.c_str(), same_q.max_err_rel, same_q.agree, cross.within, cross.agree, cross.max_err_rel);
}

TEST(AwqClipFast, GpuGramFormMatchesTheReferences) {
  if (!gptq_cuda_built() || !at::hasCUDA()) GTEST_SKIP() << "no CUDA device in this build/machine";
  uint64_t seed = 300;
  for (const Case& c : kCases) {
    if (c.dtype != at::kFloat) continue;
    const at::Tensor w = outlier_weight(c.n, c.k, seed++, at::kFloat);
    const at::Tensor x = test::correlated_inputs(c.tokens, c.k, seed++);
    AwqClipOptions opts;
    opts.max_chunk_elements = c.max_chunk;
    expect_gpu_matches(w, x, QuantScheme{c.bits, c.group, c.zero_point}, opts, describe(c));
    if (&c == &kCases[0] || &c == &kCases[1]) {  // --clip-asym: the same kernels, 10× the trials
      opts.asym = true;
      expect_gpu_matches(w, x, QuantScheme{c.bits, c.group, c.zero_point}, opts,
                         "asym " + describe(c));
    }
  }
}

// GPU time of the reference and of the Gram form on the clipped linears of a llama-1b block
// (v, o, gate/up, down), 512 sampled tokens; reported, not asserted.
TEST(AwqClipFast, GpuMeasuredTime) {
  if (!gptq_cuda_built() || !at::hasCUDA()) GTEST_SKIP() << "no CUDA device in this build/machine";
  const at::Device dev(at::kCUDA, 0);
  const QuantScheme scheme{4, 128, true};
  struct Shape {
    const char* name;
    int64_t n, k;
    int per_block;  // linears of this shape in one block
  };
  const Shape shapes[] = {{"v", 512, 2048, 1},
                          {"o", 2048, 2048, 1},
                          {"gate/up", 8192, 2048, 2},
                          {"down", 2048, 8192, 1}};
  using clock = std::chrono::steady_clock;
  // A device result read back to the host: the host waits for the whole search.
  auto timed = [&](auto&& search, const at::Tensor& w, const at::Tensor& x) {
    search(w, x).min_error.sum().template item<double>();  // warm-up (allocator, handles)
    const int reps = 5;
    auto t0 = clock::now();
    for (int r = 0; r < reps; ++r) search(w, x).min_error.sum().template item<double>();
    return std::chrono::duration<double>(clock::now() - t0).count() / reps;
  };
  double ref_total = 0, fast_total = 0;
  uint64_t seed = 500;
  for (const Shape& sh : shapes) {
    const at::Tensor w = outlier_weight(sh.n, sh.k, seed++, at::kFloat).to(dev);
    const at::Tensor x = test::correlated_inputs(512, sh.k, seed++).to(dev);
    auto ref_fn = [&](const at::Tensor& a, const at::Tensor& b) {
      return awq_clip_search_reference(a, b, scheme);
    };
    auto fast_fn = [&](const at::Tensor& a, const at::Tensor& b) {
      return awq_clip_search(a, b, scheme);
    };
    const double ref_s = timed(ref_fn, w, x), fast_s = timed(fast_fn, w, x);
    ref_total += ref_s * sh.per_block;
    fast_total += fast_s * sh.per_block;
    std::printf("[ measured ] GPU AWQ clip %s %lldx%lld: reference %.2f ms, Gram %.2f ms (%.1fx)\n",
                sh.name, static_cast<long long>(sh.n), static_cast<long long>(sh.k), ref_s * 1e3,
                fast_s * 1e3, ref_s / fast_s);
    expect_gpu_matches(w.cpu(), x.cpu(), scheme, AwqClipOptions{}, sh.name);
  }
  std::printf(
      "[ measured ] GPU AWQ clip per llama-1b block (v, o, gate, up, down): reference "
      "%.2f ms, Gram %.2f ms\n",
      ref_total * 1e3, fast_total * 1e3);
}

// CPU time of the reference and of the Gram form on a llama-1b-like MLP weight; reported, not
// asserted (the machine is shared). The results must still agree.
TEST(AwqClipFast, MeasuredCpuTime) {
  const int64_t n = 2048, k = 8192, tokens = 512;
  const QuantScheme scheme{4, 128, true};
  const at::Tensor w = outlier_weight(n, k, 11, at::kFloat);
  const at::Tensor x = test::correlated_inputs(tokens, k, 12);
  using clock = std::chrono::steady_clock;
  auto t0 = clock::now();
  const AwqClipResult ref = awq_clip_search_reference(w, x, scheme);
  auto t1 = clock::now();
  const AwqClipResult fast = awq_clip_search(w, x, scheme);
  auto t2 = clock::now();
  const double ref_s = std::chrono::duration<double>(t1 - t0).count();
  const double fast_s = std::chrono::duration<double>(t2 - t1).count();
  std::printf(
      "[ measured ] AWQ clip %lldx%lld, %lld tokens, w4g128, %d threads: reference %.2f s, "
      "Gram %.2f s (%.1fx)\n",
      static_cast<long long>(n), static_cast<long long>(k), static_cast<long long>(tokens),
      at::get_num_threads(), ref_s, fast_s, ref_s / fast_s);
  const Comparison cmp = compare(fast, ref, w, x, scheme, kErrRelTolF32);
  expect_close(cmp, tolerance_for(at::kFloat), "2048x8192");
}

}  // namespace
}  // namespace sq::solvers
