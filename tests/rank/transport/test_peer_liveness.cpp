// rank/transport/peer_liveness.h on real processes: a forked child that sleeps (or is stopped) is alive; the
// same child SIGKILLed is gone both as a zombie and once reaped; a pid whose start time differs
// (reused) is gone; a pid that cannot be seen is never reported.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "rank/transport/peer_liveness.h"

using namespace sq::rank;

namespace {

// A child that waits for signals and nothing else (async-signal-safe after fork).
pid_t sleeping_child() {
  const pid_t pid = ::fork();
  if (pid == 0) {
    for (;;) ::pause();
  }
  return pid;
}

// The state letter of /proc/<pid>/stat ('?' when unreadable).
char state_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line) || line.rfind(')') == std::string::npos) return '?';
  return line[line.rfind(')') + 2];
}

bool wait_for_state(pid_t pid, char want) {
  for (int i = 0; i < 500 && state_of(pid) != want; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  return state_of(pid) == want;
}

class PeerLivenessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::ifstream("/proc/self/stat")) GTEST_SKIP() << "no /proc";
  }
};

TEST_F(PeerLivenessTest, KilledChildIsGoneAsZombieAndWhenReaped) {
  const pid_t child = sleeping_child();
  ASSERT_GT(child, 0);
  const ProcessId id = process_id(child);
  ASSERT_FALSE(id.start.empty());
  const PeerLiveness live({{3, id}});
  EXPECT_TRUE(live.gone().empty());
  ::kill(child, SIGSTOP);  // stopped is not dead
  ASSERT_TRUE(wait_for_state(child, 'T'));
  EXPECT_TRUE(live.gone().empty());
  ::kill(child, SIGKILL);
  ASSERT_TRUE(wait_for_state(child, 'Z'));  // killed, not yet reaped
  auto gone = live.gone();
  ASSERT_EQ(gone.size(), 1u);
  EXPECT_EQ(gone[0].rank, 3);
  EXPECT_EQ(gone[0].process.pid, child);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFSIGNALED(status));
  gone = live.gone();  // reaped: /proc/<pid> is gone
  ASSERT_EQ(gone.size(), 1u);
  EXPECT_EQ(gone[0].rank, 3);
}

TEST_F(PeerLivenessTest, OnlyTheDeadOfSeveralAreReportedInOrder) {
  const pid_t a = sleeping_child(), b = sleeping_child();
  ASSERT_GT(a, 0);
  ASSERT_GT(b, 0);
  const PeerLiveness live({{0, process_id(a)}, {2, process_id(b)}});
  ::kill(b, SIGKILL);
  ::waitpid(b, nullptr, 0);
  const auto gone = live.gone();
  ASSERT_EQ(gone.size(), 1u);
  EXPECT_EQ(gone[0].rank, 2);
  ::kill(a, SIGKILL);
  ::waitpid(a, nullptr, 0);
  EXPECT_EQ(live.gone().size(), 2u);
}

TEST_F(PeerLivenessTest, ReusedPidIsGone) {
  // This process, but with a start time it never had: as if our pid had been reused.
  ProcessId id = process_id(::getpid());
  ASSERT_FALSE(id.start.empty());
  EXPECT_TRUE(PeerLiveness({{1, id}}).gone().empty());
  id.start += "0";
  ASSERT_EQ(PeerLiveness({{1, id}}).gone().size(), 1u);
}

TEST_F(PeerLivenessTest, InvisibleProcessIsNeverReported) {
  // A pid above any pid_max (2^22): nothing to see, so nothing is claimed about it.
  const ProcessId id = process_id(1 << 23);
  EXPECT_TRUE(id.start.empty());
  const PeerLiveness live({{1, id}});
  EXPECT_TRUE(live.empty());
  EXPECT_TRUE(live.gone().empty());
}

}  // namespace
