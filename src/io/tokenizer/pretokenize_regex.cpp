// PCRE2 wrapper. JIT-compiled; each thread keeps its own match data and a generous JIT stack
// so that long whitespace or letter runs never hit the default 32 KiB JIT stack limit.
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "common/check.h"
#include "io/tokenizer/pretokenize.h"

namespace sq::io::tok {

namespace {

struct ThreadMatchState {
  pcre2_match_data* md = pcre2_match_data_create(1, nullptr);
  pcre2_jit_stack* stack = pcre2_jit_stack_create(64 * 1024, 8 * 1024 * 1024, nullptr);
  pcre2_match_context* mctx = pcre2_match_context_create(nullptr);
  ThreadMatchState() { pcre2_jit_stack_assign(mctx, nullptr, stack); }
  ~ThreadMatchState() {
    pcre2_match_context_free(mctx);
    pcre2_jit_stack_free(stack);
    pcre2_match_data_free(md);
  }
};

ThreadMatchState& state() {
  thread_local ThreadMatchState s;
  return s;
}

}  // namespace

Regex::Regex(const std::string& pattern) : pattern_(pattern) {
  int err = 0;
  PCRE2_SIZE off = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   PCRE2_UTF | PCRE2_UCP, &err, &off, nullptr);
  if (!code) {
    PCRE2_UCHAR buf[256];
    pcre2_get_error_message(err, buf, sizeof(buf));
    SQ_THROW(InputError, "tokenizer.json: regex '" << pattern << "' does not compile at offset "
                                                   << off << ": " << reinterpret_cast<char*>(buf));
  }
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter if JIT is absent
  code_ = code;
}

Regex::~Regex() {
  pcre2_code_free(static_cast<pcre2_code*>(code_));
}

bool Regex::next(std::string_view text, size_t& pos, size_t& start, size_t& end) const {
  auto& st = state();
  auto* code = static_cast<pcre2_code*>(code_);
  while (pos <= text.size()) {
    int rc = pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), pos,
                         PCRE2_NO_UTF_CHECK, st.md, st.mctx);
    if (rc == PCRE2_ERROR_NOMATCH) return false;
    SQ_CHECK(rc >= 0, "PCRE2 match failed with code " << rc << " for regex " << pattern_);
    PCRE2_SIZE* ov = pcre2_get_ovector_pointer(st.md);
    start = ov[0];
    end = ov[1];
    if (end > start) {
      pos = end;
      return true;
    }
    // Empty match: step over one code point, as Oniguruma's find_iter does.
    if (start >= text.size()) return false;
    pos = start + 1;
    while (pos < text.size() && (static_cast<unsigned char>(text[pos]) & 0xC0) == 0x80) ++pos;
  }
  return false;
}

}  // namespace sq::io::tok
