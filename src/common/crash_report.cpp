#include "common/crash_report.h"

#include <signal.h>
#include <ucontext.h>
#include <unistd.h>

#include <cstdint>

#include <cstdlib>
#include <cstring>
#include <initializer_list>

#if defined(__GLIBC__)
#include <execinfo.h>
#endif

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SQ_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(undefined_behavior_sanitizer) || \
    __has_feature(thread_sanitizer)
#define SQ_SANITIZED 1
#endif
#endif

namespace sq {
namespace {

const char* g_program = "shardquant";

// Only async-signal-safe calls from here on: write(2), backtrace_symbols_fd, _exit.
void put(const char* s) {
  const ssize_t n = static_cast<ssize_t>(std::strlen(s));
  (void)!write(STDERR_FILENO, s, static_cast<size_t>(n));
}

// "0x" + 16 hex digits of v.
void put_hex(uintptr_t v) {
  char b[19] = "0x";
  for (int i = 0; i < 16; ++i) b[2 + i] = "0123456789abcdef"[(v >> (60 - 4 * i)) & 15];
  b[18] = 0;
  put(b);
}

void on_fatal(int sig, siginfo_t* info, void* uctx) {
  const char* name = sig == SIGSEGV  ? "SIGSEGV (invalid memory access)"
                     : sig == SIGBUS ? "SIGBUS (bus error)"
                     : sig == SIGFPE ? "SIGFPE (arithmetic fault)"
                     : sig == SIGILL ? "SIGILL (illegal instruction)"
                                     : "SIGABRT (abort)";
  put("\n");
  put(g_program);
  put(": fatal signal ");
  put(name);
  put(" — this is a bug in shardquant; please report it with this stack and the log\n");
  if (sig == SIGSEGV || sig == SIGBUS) {
    put("fault address ");
    put_hex(reinterpret_cast<uintptr_t>(info ? info->si_addr : nullptr));
    put("\n");
  }
#if defined(__GLIBC__) && defined(__x86_64__)
  // The unwinder stops at a frame without unwind data (a call through a null or stale function
  // pointer jumps to such a place); the word at the stack pointer is then the caller's return
  // address, printed as a frame of its own.
  if (uctx) {
    const auto* uc = static_cast<const ucontext_t*>(uctx);
    const auto pc = static_cast<uintptr_t>(uc->uc_mcontext.gregs[REG_RIP]);
    const auto sp = static_cast<uintptr_t>(uc->uc_mcontext.gregs[REG_RSP]);
    put("pc ");
    put_hex(pc);
    put(":\n");
    void* at_pc[1] = {reinterpret_cast<void*>(pc)};
    if (pc != 0) backtrace_symbols_fd(at_pc, 1, STDERR_FILENO);
    put("word at sp (a return address if the pc was reached by a call):\n");
    if (sp != 0 && sp % sizeof(void*) == 0) {
      void* ret = *reinterpret_cast<void* const*>(sp);
      void* one[1] = {ret};
      backtrace_symbols_fd(one, 1, STDERR_FILENO);
    }
  }
#else
  (void)uctx;
#endif
#if defined(__GLIBC__)
  put("stack:\n");
  void* frames[64];
  const int n = backtrace(frames, 64);
  backtrace_symbols_fd(frames, n, STDERR_FILENO);
  put("(resolve a \"file(+0xoffset)\" line with: addr2line -f -C -e file 0xoffset)\n");
#endif
  _exit(4);
}

}  // namespace

void install_crash_report(const char* program) {
#ifndef SQ_SANITIZED
  if (const char* e = std::getenv("SHARDQUANT_CRASH_REPORT"); e && std::strcmp(e, "0") == 0) return;
  if (program) g_program = program;
#if defined(__GLIBC__)
  // The first backtrace() loads libgcc_s (malloc, dlopen): do it now, not inside the handler.
  void* warm[2];
  (void)backtrace(warm, 2);
#endif
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_fatal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_SIGINFO | SA_RESETHAND | SA_NODEFER;
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) sigaction(sig, &sa, nullptr);
#else
  (void)program;
#endif
}

}  // namespace sq
