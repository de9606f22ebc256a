#include "io/output/output_dir.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>

#include "common/check.h"
#include "common/fs_util.h"

namespace fs = std::filesystem;

namespace sq::io {
namespace {

// Files a runtime needs next to the weights. Glob-like patterns matched on file names.
const char* const kAuxFilePatterns[] = {
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "tokenizer.model",
    "vocab.json",
    "merges.txt",
    "vocab.txt",
    "added_tokens.json",
    "generation_config.json",
    "chat_template.jinja",
    "chat_template.json",
    "preprocessor_config.json",
    "*.py",
    "*.tiktoken",
    "LICENSE*",
    "README.md",
};

bool matches(const std::string& name, const std::string& pattern) {
  // Only '*' wildcards are used in the table above.
  std::string rx;
  for (char c : pattern) {
    if (c == '*')
      rx += ".*";
    else if (std::string(".^$|()[]{}+?\\").find(c) != std::string::npos)
      rx += std::string("\\") + c;
    else
      rx += c;
  }
  return std::regex_match(name, std::regex(rx));
}

std::string canonical_or_abs(const fs::path& p) {
  std::error_code ec;
  auto c = fs::weakly_canonical(p, ec);
  return (ec ? fs::absolute(p) : c).lexically_normal().string();
}

}  // namespace

nlohmann::json read_json_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) SQ_THROW(InputError, path << ": cannot open");
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    SQ_THROW(InputError, path << ": invalid JSON (" << e.what() << ")");
  }
}

void write_json_file(const std::string& path, const nlohmann::json& j) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) SQ_THROW(BackendError, tmp << ": cannot create");
    out << j.dump(2) << "\n";
    if (!out.flush()) SQ_THROW(BackendError, tmp << ": write failed (disk full?)");
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) SQ_THROW(BackendError, "rename " << tmp << " -> " << path << ": " << ec.message());
}

OutputDir::OutputDir(const std::string& final_path, const std::string& input_dir, bool resume)
    : final_(canonical_or_abs(final_path)), input_(canonical_or_abs(input_dir)) {
  SQ_REQUIRE(final_ != input_, "output directory " << final_
                                                   << " is the input model directory; choose "
                                                      "another --output_dir");
  SQ_REQUIRE(!(fs::exists(final_) && !fs::is_directory(final_)),
             "output path " << final_ << " exists and is not a directory");
  partial_ = final_ + ".partial";
  std::error_code ec;
  if (!resume && fs::exists(partial_)) sq::remove_tree(partial_);
  fs::create_directories(partial_, ec);
  if (ec) SQ_THROW(BackendError, partial_ << ": cannot create: " << ec.message());
}

std::vector<std::string> OutputDir::copy_aux_files() const {
  std::vector<std::string> copied;
  for (const auto& e : fs::directory_iterator(input_)) {
    if (!e.is_regular_file()) continue;
    const std::string name = e.path().filename().string();
    for (const char* pat : kAuxFilePatterns) {
      if (!matches(name, pat)) continue;
      std::error_code ec;
      fs::copy_file(e.path(), fs::path(partial_) / name, fs::copy_options::overwrite_existing, ec);
      if (ec)
        SQ_THROW(BackendError, "copy " << e.path() << " -> " << partial_ << ": " << ec.message());
      copied.push_back(name);
      break;
    }
  }
  std::sort(copied.begin(), copied.end());
  return copied;
}

void OutputDir::write_json(const std::string& name, const nlohmann::json& j) const {
  write_json_file(file(name), j);
}

void OutputDir::clear_partial() const {
  sq::remove_tree(partial_);
  std::error_code ec;
  fs::create_directories(partial_, ec);
  if (ec) SQ_THROW(BackendError, partial_ << ": cannot create: " << ec.message());
}

void OutputDir::commit() {
  SQ_CHECK(!committed_, "OutputDir committed twice");
  std::error_code ec;
  std::string aside;
  if (fs::exists(final_)) {
    aside = final_ + ".old";
    sq::remove_tree(aside);
    fs::rename(final_, aside, ec);
    if (ec)
      SQ_THROW(BackendError,
               "cannot move the previous output " << final_ << " aside: " << ec.message());
  }
  fs::rename(partial_, final_, ec);
  if (ec) SQ_THROW(BackendError, "rename " << partial_ << " -> " << final_ << ": " << ec.message());
  if (!aside.empty()) sq::remove_tree(aside);
  committed_ = true;
}

}  // namespace sq::io
