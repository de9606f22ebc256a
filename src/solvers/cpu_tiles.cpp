// See cpu_tiles.h. Each tile writes its own rows of a preallocated result (the *_out calls take a
// contiguous row range of it), so the tiles need no synchronisation and no concatenation.
#include "solvers/cpu_tiles.h"

#include <utility>
#include <vector>

#include "common/check.h"
#include "solvers/cpu_threads.h"

namespace sq::solvers::tiles {
namespace {

using Bounds = std::vector<std::pair<int64_t, int64_t>>;

// Row tiles of x [..., F] flattened to [rows, F].
Bounds row_tiles(const at::Tensor& x) {
  const int64_t f = x.size(-1);
  return tile_bounds(f == 0 ? 0 : x.numel() / f, kRowTile);
}

std::vector<int64_t> with_last(const at::Tensor& x, int64_t last) {
  std::vector<int64_t> s(x.sizes().begin(), x.sizes().end());
  s.back() = last;
  return s;
}

at::Tensor map_rows_impl(const std::vector<at::Tensor>& in,
                         const std::function<at::Tensor(const std::vector<at::Tensor>&)>& fn) {
  const at::Tensor& x = in.front();
  const Bounds tiles = row_tiles(x);
  std::vector<at::Tensor> flat;
  for (const auto& t : in) flat.push_back(t.contiguous().view({-1, x.size(-1)}));
  std::vector<at::Tensor> parts(tiles.size());
  parallel_tiles(static_cast<int64_t>(tiles.size()), [&](int64_t i) {
    std::vector<at::Tensor> args;
    for (const auto& f : flat) args.push_back(f.slice(0, tiles[i].first, tiles[i].second));
    parts[i] = fn(args);
    SQ_CHECK(parts[i].dim() == 2 && parts[i].size(0) == tiles[i].second - tiles[i].first,
             "map_rows: the function changed the row count of a tile");
  });
  if (parts.empty()) return fn({x});
  at::Tensor out =
      at::empty({flat.front().size(0), parts.front().size(1)}, parts.front().options());
  parallel_tiles(static_cast<int64_t>(tiles.size()),
                 [&](int64_t i) { out.slice(0, tiles[i].first, tiles[i].second).copy_(parts[i]); });
  return out.view(with_last(x, out.size(1)));
}

}  // namespace

at::Tensor linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
  if (!x.is_cpu()) return at::linear(x, w, b);
  SQ_CHECK(x.dim() >= 1 && w.dim() == 2 && x.size(-1) == w.size(1),
           "tiles::linear: input " << x.sizes() << " vs weight " << w.sizes());
  const at::Tensor x2 = x.contiguous().view({-1, x.size(-1)});
  at::Tensor out = at::empty({x2.size(0), w.size(0)}, x.options());
  const Bounds rows = row_tiles(x), cols = tile_bounds(w.size(0), kColTile);
  const int64_t n_cols = static_cast<int64_t>(cols.size());
  parallel_tiles(static_cast<int64_t>(rows.size()) * n_cols, [&](int64_t i) {
    const auto [r0, r1] = rows[i / n_cols];
    const auto [c0, c1] = cols[i % n_cols];
    at::Tensor o = out.slice(0, r0, r1).slice(1, c0, c1);
    const at::Tensor wt = w.slice(0, c0, c1).t();
    if (b.defined())
      at::addmm_out(o, b.slice(0, c0, c1), x2.slice(0, r0, r1), wt);
    else
      at::mm_out(o, x2.slice(0, r0, r1), wt);
  });
  return out.view(with_last(x, w.size(0)));
}

at::Tensor bmm(const at::Tensor& a, const at::Tensor& b) {
  if (!a.is_cpu()) return at::bmm(a, b);
  SQ_CHECK(a.dim() == 3 && b.dim() == 3 && a.size(0) == b.size(0) && a.size(2) == b.size(1),
           "tiles::bmm: " << a.sizes() << " x " << b.sizes());
  at::Tensor out = at::empty({a.size(0), a.size(1), b.size(2)}, a.options());
  const Bounds rows = tile_bounds(a.size(1), kRowTile);
  const int64_t per_entry = static_cast<int64_t>(rows.size());
  parallel_tiles(a.size(0) * per_entry, [&](int64_t i) {
    const int64_t e = i / per_entry;
    const auto [r0, r1] = rows[i % per_entry];
    at::Tensor o = out.select(0, e).slice(0, r0, r1);
    at::mm_out(o, a.select(0, e).slice(0, r0, r1), b.select(0, e));
  });
  return out;
}

void addmm_rows_(at::Tensor& c, const at::Tensor& a, const at::Tensor& b, double alpha) {
  if (!c.is_cpu()) {
    c.addmm_(a, b, 1.0, alpha);
    return;
  }
  SQ_CHECK(c.dim() == 2 && a.dim() == 2 && b.dim() == 2 && c.size(0) == a.size(0) &&
               a.size(1) == b.size(0) && b.size(1) == c.size(1),
           "tiles::addmm_rows_: " << c.sizes() << " += " << a.sizes() << " x " << b.sizes());
  const Bounds rows = tile_bounds(c.size(0), kRowTile);
  parallel_tiles(static_cast<int64_t>(rows.size()), [&](int64_t i) {
    const auto [r0, r1] = rows[i];
    c.slice(0, r0, r1).addmm_(a.slice(0, r0, r1), b, 1.0, alpha);
  });
}

void gram_add_(at::Tensor& sum, const at::Tensor& x) {
  if (!sum.is_cpu()) {
    sum.addmm_(x.t(), x);
    return;
  }
  SQ_CHECK(sum.dim() == 2 && sum.size(0) == sum.size(1) && x.dim() == 2 &&
               x.size(1) == sum.size(0) && sum.is_contiguous(),
           "tiles::gram_add_: " << sum.sizes() << " += xᵀx of " << x.sizes());
  const Bounds rows = tile_bounds(sum.size(0), kGramTile);
  parallel_tiles(static_cast<int64_t>(rows.size()), [&](int64_t i) {
    const auto [r0, r1] = rows[i];
    sum.slice(0, r0, r1).addmm_(x.slice(1, r0, r1).t(), x);
  });
}

at::Tensor map_rows(const at::Tensor& x, const std::function<at::Tensor(const at::Tensor&)>& fn) {
  if (!x.is_cpu() || in_tile()) return fn(x);
  return map_rows_impl({x}, [&](const std::vector<at::Tensor>& t) { return fn(t[0]); });
}

at::Tensor map_rows2(const at::Tensor& x, const at::Tensor& y,
                     const std::function<at::Tensor(const at::Tensor&, const at::Tensor&)>& fn) {
  if (!x.is_cpu() || in_tile()) return fn(x, y);
  SQ_CHECK(x.sizes() == y.sizes(), "tiles::map_rows2: " << x.sizes() << " vs " << y.sizes());
  return map_rows_impl({x, y}, [&](const std::vector<at::Tensor>& t) { return fn(t[0], t[1]); });
}

}  // namespace sq::solvers::tiles
