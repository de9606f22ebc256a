// NFC = canonical decomposition, canonical ordering, canonical composition (UAX #15). Text
// made only of code points below U+0300 is already NFC (no combining marks, and every
// precomposed Latin-1/Latin Extended letter is its own NFC form), which keeps ASCII fast.
#include <algorithm>
#include <vector>

#include "io/tokenizer/unicode.h"
#include "io/tokenizer/unicode_nfc_data.h"

namespace sq::io::unicode {

namespace {

namespace d = nfc_data;

constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr int kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount,
              kSCount = kLCount * kNCount;

int ccc(char32_t cp) {
  if (cp < 0x300) return 0;
  auto it = std::lower_bound(d::kCcc, d::kCcc + d::kCccCount, cp,
                             [](const d::CccRow& r, char32_t c) { return r.cp < c; });
  return (it != d::kCcc + d::kCccCount && it->cp == cp) ? it->ccc : 0;
}

void decompose(char32_t cp, std::vector<char32_t>& out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    int s = cp - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount) out.push_back(kTBase + s % kTCount);
    return;
  }
  auto it = std::lower_bound(d::kDecomp, d::kDecomp + d::kDecompCount, cp,
                             [](const d::DecompRow& r, char32_t c) { return r.cp < c; });
  if (cp < 0xC0 || it == d::kDecomp + d::kDecompCount || it->cp != cp) {
    out.push_back(cp);
    return;
  }
  decompose(it->first, out);
  if (it->second) decompose(it->second, out);
}

// Composite of (a, b), or 0 when the pair does not compose.
char32_t compose(char32_t a, char32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount)
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase &&
      b < kTBase + kTCount)
    return a + (b - kTBase);
  auto it = std::lower_bound(d::kComp, d::kComp + d::kCompCount, std::make_pair(a, b),
                             [](const d::CompRow& r, const std::pair<char32_t, char32_t>& k) {
                               return r.first != k.first ? r.first < k.first : r.second < k.second;
                             });
  if (it != d::kComp + d::kCompCount && it->first == a && it->second == b) return it->composite;
  return 0;
}

}  // namespace

std::string nfc(std::string_view s) {
  bool simple = true;
  for (size_t i = 0; i < s.size() && simple;) {
    unsigned char b = static_cast<unsigned char>(s[i]);
    if (b < 0x80) {
      ++i;
      continue;
    }
    simple = next_cp(s, i) < 0x300;
  }
  if (simple) return std::string(s);

  std::vector<char32_t> buf;
  buf.reserve(s.size());
  for (size_t i = 0; i < s.size();) decompose(next_cp(s, i), buf);
  // Canonical ordering: stable sort of each run of non-starters by combining class.
  for (size_t i = 0; i < buf.size();) {
    if (ccc(buf[i]) == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < buf.size() && ccc(buf[j]) != 0) ++j;
    std::stable_sort(buf.begin() + i, buf.begin() + j,
                     [](char32_t a, char32_t b) { return ccc(a) < ccc(b); });
    i = j;
  }
  std::vector<char32_t> out;
  out.reserve(buf.size());
  long starter = -1;
  int last_cc = -1;  // class of the last kept char after the starter; -1 = none
  for (char32_t c : buf) {
    int cc = ccc(c);
    if (starter >= 0 && !(last_cc != -1 && (last_cc == 0 || last_cc >= cc))) {
      if (char32_t comp = compose(out[starter], c)) {
        out[starter] = comp;
        continue;
      }
    }
    if (cc == 0) {
      starter = static_cast<long>(out.size());
      last_cc = -1;
    } else {
      last_cc = cc;
    }
    out.push_back(c);
  }
  std::string r;
  r.reserve(s.size());
  for (char32_t c : out) append_utf8(r, c);
  return r;
}

}  // namespace sq::io::unicode
