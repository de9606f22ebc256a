// CPU threads that do not change the results (solvers/cpu_threads.h, cpu_tiles.h; issue 19).
// Every tiled operation gives the same bits on 1 and 3 tile threads (where ATen's own split at
// numel/3 moves silu's scalar tail: one of the causes of issue 19) and matches the plain ATen
// call within kTileRelTol (float32 sums over up to a few hundred terms in another order; float64
// for the Hessian sums: 1e-12).
#include <gtest/gtest.h>

#include <ATen/Parallel.h>
#include <dlfcn.h>

#include <atomic>
#include <stdexcept>
#include <vector>

#include "common/errors.h"
#include "solvers/cpu_threads.h"
#include "solvers/cpu_tiles.h"

namespace {

using namespace sq::solvers;

constexpr double kTileRelTol = 1e-5;
constexpr double kTileRelTol64 = 1e-12;

double rel_err(const at::Tensor& got, const at::Tensor& ref) {
  return (got.to(at::kDouble) - ref.to(at::kDouble)).norm().item<double>() /
         ref.to(at::kDouble).norm().item<double>();
}

// Restores ATen's intra-op thread count (fix_cpu_threads sets it to 1) for the other tests.
class CpuTiles : public ::testing::Test {
 protected:
  void SetUp() override { saved_ = at::get_num_threads(); }
  void TearDown() override {
    fix_cpu_threads(1);
    at::set_num_threads(saved_);
  }
  // fn's result with the tile threads (after fix_cpu_threads) at 1 and at 3: must be equal.
  template <class F>
  at::Tensor same_on_1_and_3_threads(F fn, const char* what) {
    fix_cpu_threads(1);
    const at::Tensor one = fn();
    fix_cpu_threads(3);
    const at::Tensor three = fn();
    EXPECT_TRUE(at::equal(one, three)) << what << ": 1 vs 3 threads differ";
    return one;
  }
  int saved_ = 1;
};

TEST_F(CpuTiles, FixPinsTheBlasAndAtenToOneThread) {
  const std::string line = fix_cpu_threads(3);
  EXPECT_EQ(cpu_threads(), 3);
  EXPECT_EQ(at::get_num_threads(), 1);
  EXPECT_NE(line.find("CPU threads: 3"), std::string::npos) << line;
  using GetFn = int (*)();
  if (auto* get = reinterpret_cast<GetFn>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"))) {
    EXPECT_EQ(get(), 1) << line;
    EXPECT_NE(line.find("OpenBLAS at 1 thread"), std::string::npos) << line;
  }
}

TEST_F(CpuTiles, ParallelTilesRunsEveryTileOnceAndRethrows) {
  fix_cpu_threads(3);
  std::vector<std::atomic<int>> calls(1000);
  parallel_tiles(1000, [&](int64_t i) {
    ++calls[i];
    EXPECT_TRUE(in_tile());
    // A nested call runs inline, in order, in this thread.
    std::vector<int64_t> order;
    parallel_tiles(3, [&](int64_t j) { order.push_back(j); });
    EXPECT_EQ(order, (std::vector<int64_t>{0, 1, 2}));
  });
  for (const auto& c : calls) EXPECT_EQ(c.load(), 1);
  EXPECT_FALSE(in_tile());
  try {
    parallel_tiles(100, [](int64_t i) {
      if (i == 37) throw sq::InputError("tile 37 failed");
    });
    ADD_FAILURE() << "no exception";
  } catch (const sq::InputError& e) {
    EXPECT_STREQ(e.what(), "tile 37 failed");
  }
  parallel_tiles(0, [](int64_t) { ADD_FAILURE() << "called for an empty range"; });
}

TEST_F(CpuTiles, TileBounds) {
  using B = std::vector<std::pair<int64_t, int64_t>>;
  EXPECT_EQ(tile_bounds(10, 4), (B{{0, 4}, {4, 7}, {7, 10}}));
  EXPECT_EQ(tile_bounds(8, 4), (B{{0, 4}, {4, 8}}));
  EXPECT_EQ(tile_bounds(10, 0), (B{{0, 10}}));
  EXPECT_EQ(tile_bounds(3, 8), (B{{0, 3}}));
  EXPECT_TRUE(tile_bounds(0, 8).empty());
}

TEST_F(CpuTiles, LinearAnyThreadsNearAten) {
  at::manual_seed(3);
  // 1300 rows: three row tiles; 1100 outputs: three column tiles.
  const at::Tensor x = at::randn({2, 650, 96}), w = at::randn({1100, 96}), b = at::randn({1100});
  for (const bool bias : {false, true}) {
    SCOPED_TRACE(bias ? "with bias" : "no bias");
    const at::Tensor bb = bias ? b : at::Tensor();
    const at::Tensor y = same_on_1_and_3_threads([&] { return tiles::linear(x, w, bb); }, "linear");
    EXPECT_EQ(y.sizes(), (std::vector<int64_t>{2, 650, 1100}));
    EXPECT_TRUE(y.is_contiguous());
    EXPECT_LT(rel_err(y, at::linear(x, w, bb)), kTileRelTol);
  }
}

TEST_F(CpuTiles, BmmAddmmGramAnyThreadsNearAten) {
  at::manual_seed(4);
  const at::Tensor a = at::randn({5, 300, 64}), b = at::randn({5, 64, 48});
  const at::Tensor got = same_on_1_and_3_threads([&] { return tiles::bmm(a, b); }, "bmm");
  EXPECT_LT(rel_err(got, at::bmm(a, b)), kTileRelTol);
  // Transposed operands (the clip search's Gram products).
  const at::Tensor at_ = a.transpose(1, 2);
  EXPECT_LT(rel_err(tiles::bmm(at_, a), at::bmm(at_, a)), kTileRelTol);

  const at::Tensor c0 = at::randn({300, 200}), m1 = at::randn({300, 64}), m2 = at::randn({64, 200});
  const at::Tensor upd = same_on_1_and_3_threads(
      [&] {
        at::Tensor c = c0.clone();
        tiles::addmm_rows_(c, m1, m2, -1.0);
        return c;
      },
      "addmm_rows_");
  EXPECT_LT(rel_err(upd, c0 - at::mm(m1, m2)), kTileRelTol);
  // In place on a strided view (GPTQ updates the columns right of a block).
  at::Tensor wide = at::zeros({300, 264});
  at::Tensor right = wide.slice(1, 64);
  right.copy_(c0);
  tiles::addmm_rows_(right, m1, m2, -1.0);
  EXPECT_TRUE(at::equal(right, upd));

  const at::Tensor x = at::randn({1000, 300}, at::kDouble);
  const at::Tensor h = same_on_1_and_3_threads(
      [&] {
        at::Tensor s = at::ones({300, 300}, at::kDouble);
        tiles::gram_add_(s, x);
        return s;
      },
      "gram_add_");
  EXPECT_LT(rel_err(h, at::mm(x.t(), x) + 1.0), kTileRelTol64);
}

TEST_F(CpuTiles, MapRowsSiluAnyThreadsOneSampleAlone) {
  at::manual_seed(5);
  // [8, 128, 1024]: ATen's own split of silu at numel/3 changes bits (see the file comment).
  const at::Tensor g = at::randn({8, 128, 1024}), u = at::randn({8, 128, 1024});
  auto fn = [](const at::Tensor& a, const at::Tensor& b) { return at::silu(a) * b; };
  const at::Tensor y =
      same_on_1_and_3_threads([&] { return tiles::map_rows2(g, u, fn); }, "map_rows2");
  // One ATen thread computes exactly this (ATen serial; row tiles start on vector boundaries).
  at::set_num_threads(1);
  EXPECT_TRUE(at::equal(y, fn(g, u)));
  EXPECT_TRUE(
      at::equal(tiles::map_rows(g, [](const at::Tensor& t) { return at::silu(t); }), at::silu(g)));
  EXPECT_TRUE(
      at::equal(tiles::map_rows2(g.narrow(0, 5, 1), u.narrow(0, 5, 1), fn), y.narrow(0, 5, 1)));
}

}  // namespace
