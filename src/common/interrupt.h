// Graceful interruption (issue 22 point 3) and the resume tests' kill hook.
//
// CONTRACT
//   * install_interrupt_handlers(): SIGTERM and SIGINT set a flag instead of ending the process
//     (the quantization loop checks it between blocks, after the block's checkpoint); a second
//     signal of either kind restores the default action and re-raises, so it ends the process
//     at once.
//   * interrupt_signal(): 0 while no signal arrived, else the first signal's number.
//   * Interrupted: the error a run throws when it stops on that flag; its exit code is
//     128 + the signal's number (143 for SIGTERM, 130 for SIGINT: what a shell, Slurm and
//     `docker stop` report for a process ended by that signal).
//   * test_kill_point(phase, block): when SQ_TEST_KILL_AT is "<phase>" or "<phase>:<block>" and
//     matches (a block of -1 only matches the phase alone), the process SIGKILLs itself — a
//     reproducible kill -9 at that point for the resume tests. Unset: nothing.
#pragma once

#include <cstdint>

#include "common/errors.h"

namespace sq {

void install_interrupt_handlers();
int interrupt_signal();

class Interrupted : public Error {
 public:
  Interrupted(const std::string& msg, int signal) : Error(msg), signal_(signal) {}
  ExitCode code() const override { return static_cast<ExitCode>(128 + signal_); }
  const char* kind() const override { return "interrupted"; }

 private:
  int signal_;
};

void test_kill_point(const char* phase, int64_t block = -1);

}  // namespace sq
