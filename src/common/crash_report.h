// What a crash leaves behind: a fatal signal is a bug (exit 4), and the user's report needs the
// place it happened, even on a machine without a debugger.
//
// CONTRACT
//   install_crash_report(program)
//   - From now on SIGSEGV, SIGBUS, SIGFPE, SIGILL and SIGABRT write one line naming the signal
//     and `program`, then the call stack (glibc backtrace_symbols_fd: "file(+offset)" entries
//     that `addr2line -f -C -e <file> <offset>` resolves), to stderr, and the process exits
//     with code 4 (exit codes: common/errors.h).
//   - Does nothing in sanitizer builds (ASan/UBSan/libFuzzer report crashes better) and where
//     SHARDQUANT_CRASH_REPORT=0; libraries installed later (Open MPI) may replace the handlers.
//   - Call once, early in main(); not thread-safe against a concurrent call.
#pragma once

namespace sq {

void install_crash_report(const char* program);

}  // namespace sq
