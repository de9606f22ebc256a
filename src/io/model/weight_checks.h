// Checks of the numbers shardquant reads and writes (issue 24: bad weights never become a
// silent NaN in the output).
//
// CONTRACT
// - check_source_tensor(file, name, t): called by ModelWeights::get() the first time each tensor
//   is read in this process (check_source_once). A floating tensor holding NaN or ±Inf is an
//   InputError naming the file, the tensor, how many of each and the first bad element's index.
//   A 2-D "*.weight" (not an embedding or lm_head) with all-zero rows is accepted and counted:
//   one warning per tensor ("N of R rows are all zero") — such rows quantize to exact zeros (the
//   grids clamp a zero range, REFERENCE.md §2), so the output stays finite. Integer, bool and
//   FP8 tensors are not scanned.
// - check_output_tensor(file, name, t): called by write_safetensors() for every tensor it writes;
//   a floating tensor with a non-finite value (a scale, a kept weight) is an InternalError naming
//   file and tensor — sources are checked, so only a bug can produce one. Nothing is written.
// A shard truncated after its header was read is reported by io/safetensors/shard_watch.h (SIGBUS).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

namespace sq::io {

// Counts over the rows of a floating tensor ([d0, rest...] → d0 rows; 0-d and 1-d: one row).
struct RowScan {
  int64_t rows = 0;
  int64_t zero_rows = 0;
  int64_t nan = 0;
  int64_t inf = 0;
  int64_t first_bad = -1;  // flat index of the first non-finite element, -1 when none
};
RowScan scan_rows(const at::Tensor& t);

void check_source_tensor(const std::string& file, const std::string& name, const at::Tensor& t);
// check_source_tensor the first time (file, name) is seen in this process; thread-safe.
void check_source_once(const std::string& file, const std::string& name, const at::Tensor& t);
void check_output_tensor(const std::string& file, const std::string& name, const at::Tensor& t);

class ModelWeights;
// Stored dtypes against config.json's torch_dtype ("bfloat16", "float16", "float32"; "" = not
// given). Each of `linear_weights` must be stored as F16, BF16, F32 or F64 (FP8 is left to the
// FP8 reader): an integer or bool weight is an InputError naming file, tensor and both dtypes.
// Floating tensors stored in another type than torch_dtype are accepted — each is converted to
// the compute dtype when read and a kept one is written in its stored type — and counted: the
// return value is one warning line (count and the first names), empty when all agree.
std::string check_weight_dtypes(const ModelWeights& w, const std::string& torch_dtype,
                                const std::vector<std::string>& linear_weights);

}  // namespace sq::io
