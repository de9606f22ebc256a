#include "common/fs_util.h"

#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace sq {
namespace {

int remove_entry(const char* p, const struct stat*, int, struct FTW*) {
  return std::remove(p);
}

}  // namespace

bool remove_tree(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return errno == ENOENT;
  // Depth first, physical walk: children before their directory, links not followed.
  return ::nftw(path.c_str(), remove_entry, 64, FTW_DEPTH | FTW_PHYS) == 0;
}

}  // namespace sq
