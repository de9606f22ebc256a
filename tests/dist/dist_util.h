// Helpers of the distributed quantization tests: launching shardquant (plain or under mpirun),
// comparing output directories byte for byte, and counting identical packed 4-bit codes.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "dist/shell.h"
#include "io/safetensors/safetensors.h"
#include "test_paths.h"

namespace sq::test::dist {

namespace fs = std::filesystem;

// Threads per process of a launch: kDefaultThreads runs it as a user does, with no thread
// variable set (shardquant picks the count: every core for one process, one per rank when ranks
// share a host); n > 0 sets OMP_NUM_THREADS=n for every process.
constexpr int kDefaultThreads = 0;

// The environment prefix of a launch with `threads` (see kDefaultThreads) and `env` (more
// NAME=value words, "" for none; exported to every rank too).
inline std::string launch_env(int threads, const std::string& env = "") {
  std::string cmd = "env -u OMP_NUM_THREADS -u OPENBLAS_NUM_THREADS -u MKL_NUM_THREADS ";
  if (threads > 0) cmd += "OMP_NUM_THREADS=" + std::to_string(threads) + " ";
  return cmd + env + (env.empty() ? "" : " ");
}

// shardquant with `args` on `ranks` ranks; 0 = the plain single-process binary (no mpirun), with
// `threads` per process (one by default) and `env` (see launch_env).
inline Launch quantize(int ranks, const std::string& args, const std::string& fault = "",
                       int timeout_s = 240, int threads = 1, const std::string& env = "") {
  std::string cmd = launch_env(threads, env) + "timeout -s KILL " + std::to_string(timeout_s) + " ";
  if (ranks > 0) {
    cmd += "mpirun --oversubscribe --allow-run-as-root --bind-to none --mca btl self,vader -n " +
           std::to_string(ranks);
    if (threads > 0) cmd += " -x OMP_NUM_THREADS";
    for (size_t at = 0; at < env.size();) {  // -x NAME for every NAME=value word of env
      const size_t end = std::min(env.find(' ', at), env.size());
      const std::string word = env.substr(at, end - at);
      if (word.find('=') != std::string::npos) cmd += " -x " + word.substr(0, word.find('='));
      at = end + 1;
    }
    if (!fault.empty()) cmd += " -x SHARDQUANT_FAULT='" + fault + "'";
    cmd += " ";
  }
  return run_shell(cmd + binary() + " " + args);
}

inline std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

// Every output file except the log and the summary (timings), by name → bytes.
inline std::map<std::string, std::string> output_files(const std::string& dir) {
  std::map<std::string, std::string> out;
  if (!fs::is_directory(dir)) return out;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name == "quantize.log" || name == "shardquant_summary.json") continue;
    out[name] = slurp(e.path());
  }
  return out;
}

inline void expect_identical(const std::string& a, const std::string& b) {
  const auto fa = output_files(a), fb = output_files(b);
  ASSERT_FALSE(fa.empty()) << a << " holds no output";
  ASSERT_EQ(fa.size(), fb.size()) << a << " vs " << b;
  for (const auto& [name, bytes] : fa) {
    auto it = fb.find(name);
    ASSERT_NE(it, fb.end()) << name << " missing in " << b;
    EXPECT_TRUE(it->second == bytes) << name << " differs between " << a << " and " << b;
  }
}

// Same file names; files other than safetensors shards byte-identical (configs, tokenizer).
inline void expect_same_layout(const std::string& a, const std::string& b) {
  const auto fa = output_files(a), fb = output_files(b);
  ASSERT_FALSE(fa.empty()) << a << " holds no output";
  ASSERT_EQ(fa.size(), fb.size()) << a << " vs " << b;
  for (const auto& [name, bytes] : fa) {
    ASSERT_TRUE(fb.count(name)) << name << " missing in " << b;
    if (name.find(".safetensors") == std::string::npos) EXPECT_EQ(fb.at(name), bytes) << name;
  }
}

// Fraction of identical 4-bit codes over every packed "qweight" of two output directories whose
// name starts with name_prefix (0 when the tensors differ in presence or size, or none exist).
inline double same_code_fraction(const std::string& a, const std::string& b,
                                 const std::string& name_prefix = "") {
  int64_t same = 0, total = 0;
  for (const auto& e : fs::directory_iterator(a)) {
    if (e.path().extension() != ".safetensors") continue;
    auto fa = io::SafetensorsFile::open(e.path().string());
    auto fb = io::SafetensorsFile::open(b + "/" + e.path().filename().string());
    for (const auto& t : fa->tensors()) {
      if (t.name.size() < 7 || t.name.compare(t.name.size() - 7, 7, "qweight") != 0) continue;
      if (t.name.compare(0, name_prefix.size(), name_prefix) != 0) continue;
      const auto* tb = fb->find(t.name);
      if (tb == nullptr || tb->end - tb->begin != t.end - t.begin) return 0.0;
      const auto* pa = reinterpret_cast<const uint32_t*>(fa->data(t));
      const auto* pb = reinterpret_cast<const uint32_t*>(fb->data(*tb));
      for (uint64_t i = 0; i < (t.end - t.begin) / 4; ++i)
        for (int j = 0; j < 8; ++j) {
          same += ((pa[i] >> (4 * j)) & 0xF) == ((pb[i] >> (4 * j)) & 0xF);
          ++total;
        }
    }
  }
  return total == 0 ? 0.0 : static_cast<double>(same) / total;
}

// `shardquant eval` perplexity of a model directory on the first `windows` windows of
// `seq_len` tokens of `text` (CPU, fp32); NaN (and a test failure) when eval fails.
inline double eval_ppl(const std::string& model, const std::string& text, int windows = 20,
                       int seq_len = 256) {
  const Launch l =
      run_shell("OMP_NUM_THREADS=1 timeout -s KILL 120 " + binary() + " eval --model " + model +
                " --text " + text + " --seq_len " + std::to_string(seq_len) + " --max-windows " +
                std::to_string(windows) + " --device cpu --dtype fp32");
  EXPECT_EQ(l.rc, 0) << l.output;
  const size_t at = l.output.find("{\"");
  if (l.rc != 0 || at == std::string::npos) return std::nan("");
  const size_t end = l.output.find('\n', at);
  return nlohmann::json::parse(l.output.substr(at, end - at)).at("ppl").get<double>();
}

// The first `lines` lines of `src` written to `dst` (a cheap evaluation or calibration text).
inline void head_lines(const std::string& src, const std::string& dst, int lines) {
  std::ifstream in(src);
  std::ofstream out(dst);
  std::string line;
  for (int i = 0; i < lines && std::getline(in, line); ++i) out << line << "\n";
}

inline bool have_mpirun() {
  return std::system("command -v mpirun >/dev/null 2>&1") == 0;
}

}  // namespace sq::test::dist
