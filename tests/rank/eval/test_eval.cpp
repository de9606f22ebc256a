// Perplexity evaluation on the house model: both memory modes agree, windows are counted as the
// protocol says, and the first windows of brown-test land near the REFERENCE.md anchor (the full
// anchor check runs through the CLI: see the final report / bench).
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "common/errors.h"
#include "io/model/model_config.h"
#include "io/model/model_weights.h"
#include "io/tokenizer/tokenizer.h"
#include "rank/eval/eval.h"
#include "test_paths.h"

using namespace sq;

TEST(Eval, MemoryModesAgreeAndCountTokens) {
  if (!test::have_shared("models/house-llama-13m") ||
      !test::have_shared("data/corpus/brown-test.txt"))
    GTEST_SKIP() << "house model or corpus absent";
  const std::string dir = test::shared("models/house-llama-13m");
  auto cfg = io::load_model_config(dir);
  io::ModelWeights w(dir);
  auto tok = io::Tokenizer::load(dir);
  std::ifstream in(test::shared("data/corpus/brown-test.txt"));
  std::ostringstream ss;
  ss << in.rdbuf();
  const auto ids = tok->encode(ss.str().substr(0, 20000), false);
  rank::Model m(w, cfg);
  rank::EvalOptions o;
  o.seq_len = 128;
  o.max_windows = 3;
  o.batch = 2;
  auto a = rank::evaluate_perplexity(m, ids, o);
  o.low_memory = true;
  auto b = rank::evaluate_perplexity(m, ids, o);
  EXPECT_EQ(a.windows, 3);
  EXPECT_EQ(a.tokens, 3 * 127);
  EXPECT_NEAR(a.mean_nll, b.mean_nll, 1e-9);
  // A trained model: far better than uniform over 8192 tokens, far from perfect.
  EXPECT_GT(a.ppl, 10.0);
  EXPECT_LT(a.ppl, 1000.0);
}

TEST(Eval, TooFewTokensIsInputError) {
  if (!test::have_shared("models/house-llama-13m")) GTEST_SKIP() << "house model absent";
  const std::string dir = test::shared("models/house-llama-13m");
  auto cfg = io::load_model_config(dir);
  io::ModelWeights w(dir);
  rank::Model m(w, cfg);
  EXPECT_THROW(rank::evaluate_perplexity(m, {1, 2, 3}, rank::EvalOptions{}), sq::InputError);
}
