// Builds model directories in a TempDir from the house model: symlinks for untouched files,
// copies for the ones a test corrupts.
#pragma once

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/run_binary.h"

namespace sq::test {

namespace fs = std::filesystem;

// Symlinks every file of `src` into `dst` (created).
inline void link_model(const std::string& src, const std::string& dst) {
  fs::create_directories(dst);
  for (const auto& e : fs::directory_iterator(src))
    fs::create_symlink(fs::absolute(e.path()), fs::path(dst) / e.path().filename());
}

// Replaces the symlink `dst/name` by a writable copy of the original.
inline std::string materialize(const std::string& dst, const std::string& name) {
  const fs::path p = fs::path(dst) / name;
  const fs::path target = fs::read_symlink(p);
  fs::remove(p);
  fs::copy_file(target, p);
  fs::permissions(p, fs::perms::owner_read | fs::perms::owner_write);
  return p.string();
}

inline nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

inline void write_json(const std::string& path, const nlohmann::json& j) {
  std::ofstream(path) << j.dump(2);
}

// The shard holding `tensor` according to the model's index.
inline std::string shard_of(const std::string& model_dir, const std::string& tensor) {
  return read_json(model_dir + "/model.safetensors.index.json")["weight_map"][tensor];
}

}  // namespace sq::test
