// Runs a shell command (mpirun and friends) for the distributed tests: exit status, wall time and
// the merged stdout+stderr of every process.
#pragma once

#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <string>

namespace sq::test {

struct Launch {
  int rc = -1;  // exit status; 128 + signal when killed
  double seconds = 0;
  std::string output;  // stdout and stderr of every rank and of the launcher
};

inline Launch run_shell(const std::string& cmd) {
  Launch out;
  const auto start = std::chrono::steady_clock::now();
  FILE* pipe = popen((cmd + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) out.output.append(buf, n);
  const int status = pclose(pipe);
  out.rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return out;
}

}  // namespace sq::test
