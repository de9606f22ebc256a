// Filesystem helpers that must not go through std::filesystem::remove_all: pip-built LibTorch
// 2.x exports a broken copy of it (it calls through a null pointer), and the dynamic linker can
// bind our calls to that copy.
#pragma once

#include <string>

namespace sq {

// Removes `path` and everything below it (symbolic links are removed, never followed).
// A missing path is not an error. Returns false (errno set) when something could not be removed.
bool remove_tree(const std::string& path);

}  // namespace sq
