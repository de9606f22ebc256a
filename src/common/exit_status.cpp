#include "common/exit_status.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace sq {
namespace {

// The launcher's rank of this process; 0 when no launcher variable is set.
long launch_rank() {
  for (const char* name : {"PMIX_RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK", "SLURM_PROCID"}) {
    const char* v = std::getenv(name);
    if (v == nullptr || *v == '\0') continue;
    char* end = nullptr;
    const long r = std::strtol(v, &end, 10);
    if (end != nullptr && *end == '\0' && r >= 0) return r;
  }
  return 0;
}

}  // namespace

void write_exit_status(int code) noexcept {
  const char* dir = std::getenv("SHARDQUANT_STATUS_DIR");
  if (dir == nullptr || *dir == '\0') return;
  try {
    const std::string path =
        std::string(dir) + "/rank-" + std::to_string(launch_rank()) + ".status";
    // Written whole under another name and renamed: a reader never sees a partial number.
    const std::string tmp = path + ".tmp";
    std::FILE* f = std::fopen(tmp.c_str(), "w");
    bool ok = f != nullptr && std::fprintf(f, "%d\n", code) > 0;
    if (f != nullptr) ok = (std::fclose(f) == 0) && ok;
    if (ok) ok = std::rename(tmp.c_str(), path.c_str()) == 0;
    if (!ok)
      std::fprintf(stderr, "shardquant: could not write the exit status to %s: %s\n", path.c_str(),
                   std::strerror(errno));
  } catch (...) {
    // std::string may throw on allocation; the exit code still reaches the launcher.
  }
}

}  // namespace sq
