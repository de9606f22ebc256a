// `shardquant tokenize`: JSON strings on stdin, JSON id arrays on stdout, equal to the
// in-process Tokenizer; bad input lines are exit code 2.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "io/tokenizer/tokenizer.h"
#include "test_paths.h"

namespace {

std::string run(const std::string& cmd, int* rc) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  int st = pclose(p);
  *rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return out;
}

TEST(TokenizeCommand, MatchesLibraryWithAndWithoutSpecial) {
  const std::string model = sq::test::shared("models/house-llama-13m");
  if (!sq::test::have_shared("models/house-llama-13m")) GTEST_SKIP() << "house model absent";
  const std::vector<std::string> texts = {"Hello world", "", "  tabs\tand\nnewlines\r\n",
                                          "<|end_of_text|> x", "caf\xC3\xA9 12345"};
  sq::test::TempDir dir;
  {
    std::ofstream in(dir / "in.jsonl");
    for (const auto& t : texts) in << nlohmann::json(t).dump() << "\n";
  }
  auto tok = sq::io::Tokenizer::load(model);
  for (bool special : {true, false}) {
    int rc = 0;
    std::string out = run(sq::test::binary() + " tokenize --tokenizer '" + model + "'" +
                              (special ? "" : " --no-special") + " < '" + (dir / "in.jsonl") + "'",
                          &rc);
    ASSERT_EQ(rc, 0) << out;
    std::istringstream lines(out);
    std::string line;
    size_t i = 0;
    for (; std::getline(lines, line); ++i) {
      ASSERT_LT(i, texts.size());
      EXPECT_EQ(nlohmann::json::parse(line).get<std::vector<int32_t>>(),
                tok->encode(texts[i], special))
          << texts[i];
    }
    EXPECT_EQ(i, texts.size());
  }
}

TEST(TokenizeCommand, NonStringLineIsInputError) {
  if (!sq::test::have_shared("models/house-llama-13m")) GTEST_SKIP() << "house model absent";
  int rc = 0;
  run("echo '[1,2]' | " + sq::test::binary() + " tokenize --tokenizer '" +
          sq::test::shared("models/house-llama-13m") + "' 2>/dev/null",
      &rc);
  EXPECT_EQ(rc, 2);
}

}  // namespace
