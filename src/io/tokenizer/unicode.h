// UTF-8 and Unicode helpers for the tokenizer: code point decoding, lossy repair of invalid
// UTF-8 (as Rust's String::from_utf8_lossy), GPT-2's byte<->char table and NFC normalization.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace sq::io::unicode {

// Length in bytes of the UTF-8 sequence starting with lead byte `b` (1 for invalid leads).
inline int utf8_len(unsigned char b) {
  if (b < 0x80) return 1;
  if ((b >> 5) == 0x6) return 2;
  if ((b >> 4) == 0xE) return 3;
  if ((b >> 3) == 0x1E) return 4;
  return 1;
}

// Decodes the code point at s[i] (s must be valid UTF-8) and advances i.
char32_t next_cp(std::string_view s, size_t& i);
void append_utf8(std::string& out, char32_t cp);

// True when `s` is valid UTF-8 (no overlongs, surrogates or code points above U+10FFFF).
bool valid_utf8(std::string_view s);
// Replaces each maximal invalid subsequence with U+FFFD, exactly as Rust's from_utf8_lossy.
std::string utf8_lossy(std::string_view s);

// GPT-2 byte-level alphabet: byte -> code point, and the inverse (-1 for code points outside).
const std::array<char32_t, 256>& byte_to_cp();
int cp_to_byte(char32_t cp);

// Unicode canonical composition (NFC), tables from Unicode 14 (see unicode_nfc_data.cpp).
std::string nfc(std::string_view s);

}  // namespace sq::io::unicode
