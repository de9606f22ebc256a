// Unicode normalization tables (generated into unicode_nfc_data.cpp), sorted by code point
// (kComp by (first, second)) for binary search.
#pragma once

#include <cstddef>
#include <cstdint>

namespace sq::io::unicode::nfc_data {

struct CccRow {
  uint32_t cp;
  uint8_t ccc;
};
struct DecompRow {
  uint32_t cp, first, second;  // second == 0: singleton decomposition
};
struct CompRow {
  uint32_t first, second, composite;
};

extern const CccRow kCcc[];
extern const size_t kCccCount;
extern const DecompRow kDecomp[];
extern const size_t kDecompCount;
extern const CompRow kComp[];
extern const size_t kCompCount;

}  // namespace sq::io::unicode::nfc_data
