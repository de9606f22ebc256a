// Quantized-linear packers: the canonical unpacked form <-> the on-disk formats
// (REFERENCE.md §3.1-3.3).
//
// Canonical unpacked form (shared with the solvers; N = out_features, K = in_features,
// G = group size, n_groups = ceil(K / G)):
//   codes  int32 [N, K]          values in 0 .. 2^bits - 1
//   zeros  int32 [n_groups, N]   true zero points (2^(bits-1) for symmetric)
//   scales f32 or f16 [n_groups, N]
//   g_idx  int32 [K]             group of each input column (k / G without act order)
//   W[n, k] = (codes[n, k] - zeros[g_idx[k], n]) * scales[g_idx[k], n]
//
// Packed form: a PackedLinear holds the format's tensors by suffix ("qweight", "qzeros",
// "scales", "g_idx" for AWQ/GPTQ; "weight_packed", "weight_scale", "weight_shape",
// "weight_zero_point", "weight_g_idx" for compressed-tensors); the writer stores each as
// `<module prefix>.<suffix>`. All tensors are CPU and contiguous.
//
// Each format's packer, unpacker and accepted schemes are its row in io/format/format_registry.h;
// pack() and unpack() check the canonical form and dispatch on the row.
//
// Errors: a scheme the format cannot hold (format_registry.h scheme_error: bits, act order) and
// shapes it cannot hold (AWQ: N % 8, K % G, a permuted g_idx; GPTQ: K·b or N·b not a multiple of
// 32; v1 with a zero of 0) are InputErrors naming the format, the tensor and the expected and
// actual sizes. Codes or zeros outside 0 .. 2^bits-1 are InternalErrors (a solver bug).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "common/quant_scheme.h"
#include "io/format/format.h"

namespace sq::io {

struct QuantLinear {
  at::Tensor codes;    // int32 [N, K]
  at::Tensor zeros;    // int32 [n_groups, N]
  at::Tensor scales;   // f32 or f16 [n_groups, N]
  at::Tensor g_idx;    // int32 [K]
  QuantScheme scheme;  // bits and group size (−1 = one group per row, G = K) of the codes

  int64_t out_features() const { return codes.size(0); }
  int64_t in_features() const { return codes.size(1); }
};

struct PackedLinear {
  Format format = Format::kGptqV1;
  QuantScheme scheme;  // bits and group size (−1 = one group per row)
  std::map<std::string, at::Tensor> tensors;

  // The tensor stored under `suffix`; InputError naming the format and suffix when absent.
  const at::Tensor& get(const std::string& suffix) const;
  bool has(const std::string& suffix) const { return tensors.count(suffix) != 0; }
};

struct PackOptions {
  // compressed-tensors only: emit weight_zero_point (asymmetric). Unset: asymmetric unless every
  // zero equals 2^(bits-1).
  std::optional<bool> symmetric;
  // compressed-tensors weight_scale dtype (the model dtype). AWQ/GPTQ always store fp16.
  at::ScalarType scale_dtype = at::kHalf;
  // compressed-tensors only: emit weight_g_idx (the config's actorder "group" makes loaders expect
  // it even when an act-order permutation happens to leave every column in its group). Unset:
  // when g_idx is not the trivial k / G. false with a non-trivial g_idx is an InternalError.
  std::optional<bool> g_idx;
};

// g_idx without act order: g_idx[k] = k / G (G = K when group_size <= 0).
at::Tensor default_g_idx(int64_t in_features, int64_t group_size);
// n_groups = ceil(K / G).
int64_t num_groups(int64_t in_features, int64_t group_size);
// True when g_idx equals default_g_idx (no act-order permutation).
bool is_trivial_g_idx(const at::Tensor& g_idx, int64_t group_size);

// Validates shapes and value ranges of a canonical linear; throws as described above —
// InternalError for a linear of our own making, InputError when `from_file` (unpack() of a
// checkpoint's tensors: a bad g_idx, shape or code there is the file's fault).
void check_quant_linear(const QuantLinear& q, const char* context, bool from_file = false);

PackedLinear pack(const QuantLinear& q, Format format, const PackOptions& opts = {});
// Inverse of pack for AWQ and GPTQ (v1: stored + 1, masked). Scales come back as stored (fp16).
// compressed-tensors unpacking is supported too (zero point unpacked along N).
QuantLinear unpack(const PackedLinear& p);

// fp32 [N, K] dequantized weight of the canonical form / of a packed linear.
at::Tensor dequantize(const QuantLinear& q);
at::Tensor dequantize(const PackedLinear& p);

// Low-level bit packing of the last dimension of an int tensor [R, L] into int32 words
// (exposed for tests and other formats).
//   kStream:      an LSB-first bit stream, value i at stream bits [b·i, b·i+b); words = L·b/32,
//                 which must be whole (GPTQ, including its 3-bit layout).
//   kWordAligned: floor(32/b) values per word, value j of a word at bits [b·j, b·j+b),
//                 words = ceil(L / floor(32/b)), zero padded (compressed-tensors).
// CUDA values with b dividing 32 (2, 4, 8 bits) are packed on the GPU as whole-tensor shifts and
// sums, the words staying there (the export path of GPU runs); everything else goes through
// pack_bits_reference on the CPU. pack_bits_vectorized is that tensor path on any device. A value
// outside 0..2^b−1 is an InternalError naming its row and column.
enum class BitLayout { kStream, kWordAligned };
at::Tensor pack_bits(const at::Tensor& values, int bits, BitLayout layout);
// The plain per-row loop on the CPU for every b (the reference the fast path is tested against).
at::Tensor pack_bits_reference(const at::Tensor& values, int bits, BitLayout layout);
at::Tensor pack_bits_vectorized(const at::Tensor& values, int bits, BitLayout layout);
// Inverse: int32 [R, W] -> int32 [R, L].
at::Tensor unpack_bits(const at::Tensor& words, int bits, int64_t length, BitLayout layout);

}  // namespace sq::io
