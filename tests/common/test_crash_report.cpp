// common/crash_report: a fatal signal prints the signal, a stack and exits 4 (a bug).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <string>

#include "common/crash_report.h"

namespace {

// Raises `sig` in a forked child with the report installed; returns (exit status, stderr).
std::pair<int, std::string> crash_in_child(int sig) {
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], STDERR_FILENO);
    close(fds[0]);
    // test_main installed the report already: start from the default dispositions.
    for (int s : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) std::signal(s, SIG_DFL);
    sq::install_crash_report("crash-test");
    std::raise(sig);
    _exit(0);  // not reached when the handler runs
  }
  close(fds[1]);
  std::string err;
  char buf[4096];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) err.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return {status, err};
}

#if defined(__SANITIZE_ADDRESS__)
#define SQ_SKIP_SANITIZED GTEST_SKIP() << "the crash report is off in sanitizer builds"
#else
#define SQ_SKIP_SANITIZED (void)0
#endif

TEST(CrashReport, SegvNamesTheSignalPrintsAStackAndExits4) {
  SQ_SKIP_SANITIZED;
  const auto [status, err] = crash_in_child(SIGSEGV);
  ASSERT_TRUE(WIFEXITED(status)) << "killed by signal " << WTERMSIG(status) << "\n" << err;
  EXPECT_EQ(WEXITSTATUS(status), 4);
  EXPECT_NE(err.find("crash-test: fatal signal SIGSEGV"), std::string::npos) << err;
  EXPECT_NE(err.find("addr2line"), std::string::npos) << err;
  // At least one stack line of this test binary.
  EXPECT_NE(err.find("test_common"), std::string::npos) << err;
}

TEST(CrashReport, AbortToo) {
  SQ_SKIP_SANITIZED;
  const auto [status, err] = crash_in_child(SIGABRT);
  ASSERT_TRUE(WIFEXITED(status)) << err;
  EXPECT_EQ(WEXITSTATUS(status), 4);
  EXPECT_NE(err.find("SIGABRT"), std::string::npos) << err;
}

TEST(CrashReport, OffWhenTheUserSaysSo) {
  SQ_SKIP_SANITIZED;
  setenv("SHARDQUANT_CRASH_REPORT", "0", 1);
  const auto [status, err] = crash_in_child(SIGSEGV);
  unsetenv("SHARDQUANT_CRASH_REPORT");
  ASSERT_TRUE(WIFSIGNALED(status)) << err;
  EXPECT_EQ(WTERMSIG(status), SIGSEGV);
}

}  // namespace
