// Named calibration datasets, resolved to local files (no network: the user downloads them
// once). The table says where each comes from, so a missing file tells the user how to get it.
#include <filesystem>

#include "common/check.h"
#include "io/calib/corpus.h"

namespace fs = std::filesystem;

namespace sq::io {
namespace {

// File-name spellings of each canonical split, tried in order.
struct SplitSpelling {
  const char* split;
  std::vector<const char*> file_names;
};
const std::vector<SplitSpelling>& split_spellings() {
  static const std::vector<SplitSpelling> kRows = {
      {"train", {"train"}},
      {"valid", {"valid", "validation", "val"}},
      {"test", {"test"}},
  };
  return kRows;
}

// Candidate paths for one split, in lookup order: per dataset folder first, then flat files.
std::vector<std::string> candidates(const std::string& dir, const std::string& name,
                                    const std::string& split) {
  // {folder form?, extension}
  struct Pattern {
    bool in_folder;
    const char* ext;
  };
  static constexpr Pattern kPatterns[] = {
      {true, ".jsonl"}, {true, ".txt"}, {false, ".jsonl"}, {false, ".txt"}};
  std::vector<std::string> out;
  for (const auto& row : split_spellings()) {
    if (split != row.split) continue;
    for (const auto& p : kPatterns) {
      for (const char* file_name : row.file_names) {
        out.push_back(p.in_folder
                          ? (fs::path(dir) / name / (std::string(file_name) + p.ext)).string()
                          : (fs::path(dir) / (name + "-" + file_name + p.ext)).string());
      }
    }
  }
  return out;
}

std::vector<std::string> split_fields(const char* list) {
  std::vector<std::string> out;
  std::string cur;
  for (const char* c = list;; ++c) {
    if (*c == ',' || *c == '\0') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
      if (*c == '\0') break;
    } else {
      cur += *c;
    }
  }
  return out;
}

}  // namespace

const std::vector<DatasetInfo>& named_datasets() {
  static const std::vector<DatasetInfo> kDatasets = {
      {"wikitext2", "Hugging Face wikitext, config wikitext-2-raw-v1 (train/validation/test)",
       "text"},
      {"c4",
       "Hugging Face allenai/c4, config en (c4-train.00000-of-01024.json.gz, "
       "c4-validation.00000-of-00008.json.gz, gunzipped)",
       "text"},
      {"pileval",
       "Hugging Face mit-han-lab/pile-val-backup (val.jsonl.zst, unzstd; save it as "
       "the split you ask for)",
       "text"},
      {"ptb", "Hugging Face ptb_text_only (train/validation/test)", "sentence,text"},
      {"book", "Hugging Face bookcorpus (train)", "text"},
      {"github", "Hugging Face codeparrot/github-code (train)", "code,content,text"},
      {"stack", "Hugging Face bigcode/the-stack-smol or the-stack (train)", "content,code,text"},
  };
  return kDatasets;
}

CorpusSource load_named_dataset(const std::string& name, const std::string& dataset_dir,
                                const std::vector<std::string>& splits) {
  const DatasetInfo* info = nullptr;
  std::string known;
  for (const auto& row : named_datasets()) {
    known += std::string(known.empty() ? "" : ", ") + row.name;
    if (name == row.name) info = &row;
  }
  SQ_REQUIRE(info != nullptr,
             "unknown calibration dataset '" << name << "' (known: brown, " << known << ")");
  const std::vector<std::string> fields = split_fields(info->text_fields);

  CorpusSource src;
  src.kind = "dataset";
  src.name = name;
  uint64_t h = fnv1a64("");
  for (const auto& raw_split : splits) {
    const std::string split = normalize_split(raw_split);
    src.splits.push_back(split);
    const std::vector<std::string> looked = candidates(dataset_dir, name, split);
    std::string found;
    for (const auto& c : looked) {
      std::error_code ec;
      if (fs::is_regular_file(c, ec)) {
        found = c;
        break;
      }
    }
    if (found.empty()) {
      std::string list;
      for (const auto& c : looked) list += "\n  " + c;
      SQ_THROW(InputError, "calibration dataset '"
                               << name << "' split '" << split << "' not found; looked for:" << list
                               << "\nTo supply it, download " << info->origin
                               << " and save the split as " << looked.front()
                               << " (JSON Lines, one object per line with field \""
                               << fields.front() << "\") or "
                               << (fs::path(dataset_dir) / name / (split + ".txt")).string()
                               << " (plain text, one text per line), or point "
                                  "--dataset-dir at the folder that holds it");
    }
    const bool jsonl = found.size() > 6 && found.compare(found.size() - 6, 6, ".jsonl") == 0;
    CorpusSource part = jsonl ? load_jsonl(found, fields) : load_plain_text(found);
    src.joiner = part.joiner;
    src.paths.push_back(found);
    src.bytes += part.bytes;
    h = fnv1a64(part.content_hash, h);
    for (auto& u : part.units) src.units.push_back(std::move(u));
  }
  src.content_hash = hex64(h);
  return src;
}

}  // namespace sq::io
