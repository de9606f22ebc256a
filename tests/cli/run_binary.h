// Runs the built shardquant with arguments and environment overrides; captures exit code,
// stdout and stderr (through files, so large outputs cannot deadlock).
#pragma once

#include <sys/wait.h>
#include <unistd.h>

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
  std::string all() const { return out + err; }
};

// The env variables shardquant reads; cleared in the child unless the test sets them.
inline const std::vector<std::string>& shardquant_env_names() {
  static const std::vector<std::string> n = {"MODEL_PATH", "SEQ_LEN", "FORCE_CPU", "MAX_QUALITY",
                                             "OUTPUT_DIR", "METHOD",  "BITS",      "EXTRA_ARGS"};
  return n;
}

inline std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline RunResult run_shardquant(const std::vector<std::string>& args,
                                const std::map<std::string, std::string>& env = {}) {
  TempDir io;
  const std::string out_path = io / "stdout", err_path = io / "stderr";
  pid_t pid = fork();
  if (pid == 0) {
    for (const auto& n : shardquant_env_names()) unsetenv(n.c_str());
    for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
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
  waitpid(pid, &status, 0);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = slurp(out_path);
  r.err = slurp(err_path);
  return r;
}

inline std::string house_model() {
  return shared("models/house-llama-13m");
}

}  // namespace sq::test
