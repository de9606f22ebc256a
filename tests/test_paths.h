// Paths for tests: the shared folder (fixtures, house model, corpora), the source tree and the
// built shardquant binary. SQ_SHARED_DIR can be overridden at run time by the environment
// variable of the same name.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>

#include "common/fs_util.h"

namespace sq::test {

inline std::string shared_dir() {
  if (const char* e = std::getenv("SQ_SHARED_DIR")) return e;
  return SQ_SHARED_DIR;
}
inline std::string shared(const std::string& rel) {
  return shared_dir() + "/" + rel;
}
inline std::string source_dir() {
  return SQ_SOURCE_DIR;
}
inline std::string binary() {
  return SQ_BINARY;
}
inline bool have_shared(const std::string& rel) {
  return std::filesystem::exists(shared(rel));
}

// A fresh empty temporary directory, removed by the destructor.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "sqtest-XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() { sq::remove_tree(path_); }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& rel) const { return path_ + "/" + rel; }

 private:
  std::string path_;
};

}  // namespace sq::test

namespace sq::test {
// Directory of helper executables built from tests/*/tools/*.cpp (sq_<name>).
inline std::string tool(const std::string& name) {
  return std::string(SQ_TOOL_DIR) + "/sq_" + name;
}
}  // namespace sq::test
