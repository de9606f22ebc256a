// Runnable model directories from the architecture fixtures of ../shared/fixtures/arch, which ship
// without a tokenizer (vocab 128): links to the fixture's files (its reference activations left
// out) plus a character-level BPE tokenizer.json written here (ids 3..97 = printable ASCII, below
// every fixture's vocab), and a small calibration text cut from the Brown corpus.
#pragma once

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

namespace sq::test {

inline void write_char_tokenizer(const std::filesystem::path& dir) {
  nlohmann::json vocab = {{"<unk>", 0}, {"<s>", 1}, {"</s>", 2}};
  for (int c = 32; c < 127; ++c) vocab[std::string(1, static_cast<char>(c))] = c - 29;
  nlohmann::json added = nlohmann::json::array();
  for (const char* t : {"<unk>", "<s>", "</s>"})
    added.push_back({{"id", vocab[t]}, {"content", t}, {"special", true}, {"normalized", false}});
  const nlohmann::json tok = {{"version", "1.0"},
                              {"added_tokens", added},
                              {"normalizer", nullptr},
                              {"pre_tokenizer", {{"type", "WhitespaceSplit"}}},
                              {"post_processor", nullptr},
                              {"decoder", nullptr},
                              {"model",
                               {{"type", "BPE"},
                                {"vocab", vocab},
                                {"merges", nlohmann::json::array()},
                                {"unk_token", "<unk>"},
                                {"fuse_unk", true}}}};
  std::ofstream(dir / "tokenizer.json") << tok.dump(1);
}

// `dst` (created) becomes a model directory of `fixture_dir`'s files and a char tokenizer.
inline void make_fixture_model(const std::string& fixture_dir, const std::string& dst) {
  namespace fs = std::filesystem;
  fs::create_directories(dst);
  for (const auto& e : fs::directory_iterator(fixture_dir)) {
    const std::string name = e.path().filename().string();
    if (name == "reference.safetensors") continue;  // the fixture's expected activations
    fs::create_symlink(e.path(), fs::path(dst) / name);
  }
  write_char_tokenizer(dst);
}

// The first `lines` lines of `src` into `dst`.
inline void write_head(const std::string& src, const std::string& dst, int lines) {
  std::ifstream in(src);
  std::ofstream out(dst);
  std::string line;
  for (int i = 0; i < lines && std::getline(in, line); ++i) out << line << "\n";
}

}  // namespace sq::test
