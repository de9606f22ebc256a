// Runs the built shardquant with arguments and environment overrides; captures exit code,
// stdout and stderr (through files, so large outputs cannot deadlock) and the child's peak
// resident size as the kernel measured it.
#pragma once

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "test_paths.h"

namespace sq::test {

struct RunResult {
  int code = -1;
  std::string out, err;
  uint64_t max_rss = 0;  // bytes: ru_maxrss from wait4, the kernel's peak, not the run's report
  std::string all() const { return out + err; }
};

// The env variables shardquant reads; cleared in the child unless the test sets them.
inline const std::vector<std::string>& shardquant_env_names() {
  static const std::vector<std::string> n = {"MODEL_PATH",  "SEQ_LEN",    "FORCE_CPU",
                                             "MAX_QUALITY", "OUTPUT_DIR", "METHOD",
                                             "BITS",        "EXTRA_ARGS", "SHARDQUANT_STATUS_DIR"};
  return n;
}

inline std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// When `cgroup_procs` is set (a cgroup's cgroup.procs file) the child first moves itself into
// that cgroup, and exits 126 if it cannot.
inline RunResult run_shardquant(const std::vector<std::string>& args,
                                const std::map<std::string, std::string>& env = {},
                                const std::string& cgroup_procs = "") {
  TempDir io;
  const std::string out_path = io / "stdout", err_path = io / "stderr";
  pid_t pid = fork();
  if (pid == 0) {
    for (const auto& n : shardquant_env_names()) unsetenv(n.c_str());
    for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
    if (!cgroup_procs.empty()) {
      std::ofstream p(cgroup_procs);
      p << getpid() << std::flush;
      if (!p) _exit(126);
    }
    if (!freopen(out_path.c_str(), "w", stdout) || !freopen(err_path.c_str(), "w", stderr))
      _exit(127);
    std::vector<char*> argv;
    std::string bin = binary();
    argv.push_back(bin.data());
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(bin.c_str(), argv.data());
    _exit(127);
  }
  RunResult r;
  int status = 0;
  struct rusage ru {};
  wait4(pid, &status, 0, &ru);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.max_rss = static_cast<uint64_t>(ru.ru_maxrss) * 1024;
  r.out = slurp(out_path);
  r.err = slurp(err_path);
  return r;
}

inline std::string house_model() {
  return shared("models/house-llama-13m");
}

}  // namespace sq::test
