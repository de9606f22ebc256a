// Sampling one calibration source into fixed-length token rows (the two modes of calib.h).
// Deterministic: the only randomness is SplitMix64 (calib_prng.h) seeded by the caller.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/calib/calib_prng.h"
#include "io/calib/corpus.h"

namespace sq::io {

class Tokenizer;

struct SourceSamples {
  std::vector<std::vector<int64_t>> rows;  // each exactly seq_len ids
  std::vector<int64_t> valid;              // per row: leading real tokens (rest is padding)
  std::string warning;                     // non-empty when the source fell short
};

// AutoAWQ: units in shuffled order, each stripped and encoded with special tokens; units longer
// than seq_len or encoding to nothing are skipped; the rest concatenated until want·seq_len ids,
// cut into blocks. Short sources: the leftover tail becomes one padded row.
SourceSamples sample_awq(const CorpusSource& src, const Tokenizer& tok, int64_t want,
                         int64_t seq_len, int32_t pad_id, SplitMix64& rng);

// GPTQ: the units joined by src.joiner, encoded without special tokens (in chunks that end at a
// joiner), `want` windows whose starts are uniform in [0, T − seq_len]. T < seq_len: one padded
// row of all T ids.
SourceSamples sample_gptq(const CorpusSource& src, const Tokenizer& tok, int64_t want,
                          int64_t seq_len, int32_t pad_id, SplitMix64& rng);

}  // namespace sq::io
