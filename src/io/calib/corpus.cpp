// Plain text and JSON Lines sources, split names and content hashes (contract in corpus.h).
#include "io/calib/corpus.h"

#include <cstdio>
#include <fstream>
#include <sstream>

#include "common/check.h"

namespace sq::io {
namespace {

// Whole file as bytes. A missing or unreadable file is the user's to fix (exit 2).
std::string read_file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  SQ_REQUIRE(in.good(), "calibration file " << path << " cannot be opened (missing or unreadable)");
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

bool is_blank(std::string_view s) {
  return s.find_first_not_of(" \t\r\n\f\v") == std::string_view::npos;
}

// Calls fn(line, 1-based number) for every line, without its "\n" or "\r\n".
template <typename Fn>
void for_each_line(const std::string& text, Fn&& fn) {
  size_t pos = 0, number = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    fn(line, ++number);
    pos = end + 1;
  }
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

void finish_file_source(CorpusSource& src, const std::string& path, const std::string& bytes,
                        const char* what) {
  src.paths = {path};
  src.bytes = bytes.size();
  src.content_hash = hex64(fnv1a64(bytes));
  SQ_REQUIRE(!src.units.empty(), "calibration file " << path << " holds no text (" << what << "; "
                                                     << bytes.size() << " bytes)");
}

}  // namespace

uint64_t fnv1a64(std::string_view bytes, uint64_t h) {
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

std::string hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

nlohmann::json CorpusSource::describe() const {
  return {{"kind", kind},   {"name", name},   {"splits", splits},
          {"paths", paths}, {"bytes", bytes}, {"hash", content_hash}};
}

std::string normalize_split(const std::string& split) {
  // Accepted spellings → canonical split name.
  static const std::pair<const char*, const char*> kSpellings[] = {
      {"train", "train"}, {"valid", "valid"}, {"validation", "valid"},
      {"val", "valid"},   {"dev", "valid"},   {"test", "test"},
  };
  for (const auto& [spelling, canonical] : kSpellings) {
    if (split == spelling) return canonical;
  }
  SQ_THROW(InputError,
           "unknown calibration split '" << split << "' (expected train, valid or test)");
}

CorpusSource load_plain_text(const std::string& path) {
  const std::string bytes = read_file_bytes(path);
  CorpusSource src;
  src.kind = "file";
  src.name = path;
  src.joiner = "\n";
  for_each_line(bytes, [&](std::string_view line, size_t) {
    if (!is_blank(line)) src.units.emplace_back(line);
  });
  finish_file_source(src, path, bytes, "only blank lines");
  return src;
}

CorpusSource load_jsonl(const std::string& path, const std::vector<std::string>& text_fields) {
  const std::string bytes = read_file_bytes(path);
  CorpusSource src;
  src.kind = "file";
  src.name = path;
  src.joiner = "\n\n";
  std::string fields;
  for (const auto& f : text_fields) fields += (fields.empty() ? "\"" : " or \"") + f + "\"";
  for_each_line(bytes, [&](std::string_view line, size_t number) {
    if (is_blank(line)) return;
    nlohmann::json record;
    try {
      record = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {  // parse_error, and out_of_range (1e999)
      SQ_THROW(InputError, path << ":" << number << ": not valid JSON (" << e.what()
                                << "); expected one JSON object per line with a string field "
                                << fields);
    }
    const nlohmann::json* text = nullptr;
    if (record.is_object()) {
      for (const auto& f : text_fields) {
        auto it = record.find(f);
        if (it != record.end() && it->is_string()) {
          text = &*it;
          break;
        }
      }
    }
    SQ_REQUIRE(text != nullptr, path << ":" << number << ": no string field " << fields
                                     << " in this JSON Lines record");
    const std::string& s = text->get_ref<const std::string&>();
    if (!is_blank(s)) src.units.push_back(s);
  });
  finish_file_source(src, path, bytes, "no record with non-blank text");
  return src;
}

CorpusSource load_text_file(const std::string& path) {
  if (ends_with(path, ".jsonl") || ends_with(path, ".json")) return load_jsonl(path, {"text"});
  return load_plain_text(path);
}

}  // namespace sq::io
