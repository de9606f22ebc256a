// Graceful interruption (issue 22 point 3) and the resume tests' kill hook.
//
// CONTRACT
//   * install_interrupt_handlers(): SIGTERM and SIGINT set a flag instead of ending the process
//     (the quantization loop checks it between blocks, after the block's checkpoint, and a
//     single-process block in progress is abandoned at its next abandon_point); a second
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

// Abandoning the block in progress, so that a stop takes seconds rather than a block's time
// (`docker stop` gives 10 s by default): while an AbandonScope is alive on this thread,
// abandon_point() throws Interrupted once a signal has arrived. The block's work is dropped; the
// run's checkpoint is still the one after the previous block, and --resume redoes this one.
// Only a step whose work no other rank waits on opens a scope (a rank leaving a collective would
// leave its peers waiting). The solvers call abandon_point() between micro-batches and linears.
class AbandonScope {
 public:
  AbandonScope();
  ~AbandonScope();
  AbandonScope(const AbandonScope&) = delete;
  AbandonScope& operator=(const AbandonScope&) = delete;
};
void abandon_point();

void test_kill_point(const char* phase, int64_t block = -1);

}  // namespace sq
