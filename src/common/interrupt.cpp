#include "common/interrupt.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <string>

namespace sq {
namespace {

std::atomic<int> g_signal{0};

extern "C" void on_interrupt(int sig) {
  int expected = 0;
  if (!g_signal.compare_exchange_strong(expected, sig)) {
    // A second signal: the user (or the scheduler) wants the process gone now.
    ::signal(sig, SIG_DFL);
    ::raise(sig);
  }
}

}  // namespace

void install_interrupt_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_interrupt;
  sigemptyset(&sa.sa_mask);
  // SA_RESTART: a read or write in progress continues instead of failing with EINTR.
  sa.sa_flags = SA_RESTART;
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGINT, &sa, nullptr);
}

int interrupt_signal() {
  return g_signal.load();
}

namespace {
thread_local int g_abandon_depth = 0;
}  // namespace

AbandonScope::AbandonScope() {
  ++g_abandon_depth;
}
AbandonScope::~AbandonScope() {
  --g_abandon_depth;
}

void abandon_point() {
  const int sig = g_abandon_depth > 0 ? g_signal.load() : 0;
  if (sig != 0) throw Interrupted("block abandoned on a signal", sig);
}

void test_kill_point(const char* phase, int64_t block) {
  static const char* spec = std::getenv("SQ_TEST_KILL_AT");
  if (spec == nullptr || *spec == '\0') return;
  std::string want = phase;
  if (block >= 0) want += ":" + std::to_string(block);
  if (want == spec) ::kill(::getpid(), SIGKILL);
}

}  // namespace sq
