// Shared scaffolding of the libFuzzer targets (issue 24). Each target feeds bytes to one reader
// of untrusted files; the only acceptable failure is sq::InputError (what the program turns into
// exit 2 with a message). Any other exception — a JSON type error escaping as "internal error",
// std::out_of_range, bad_alloc — is a finding: it is reported and the process aborts, so
// libFuzzer saves the input. Memory errors and UB are caught by ASan/UBSan.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "common/errors.h"

namespace sq::fuzz {

// One private scratch directory per fuzzing process (under TMPDIR, /dev/shm when it exists:
// targets that read files write each input there), removed at exit.
inline const std::string& scratch_dir() {
  static const std::string dir = [] {
    const char* base = std::getenv("TMPDIR");
    std::string root =
        base ? base : (std::filesystem::is_directory("/dev/shm") ? "/dev/shm" : "/tmp");
    std::string tmpl = root + "/sqfuzz-XXXXXX";
    if (!mkdtemp(tmpl.data())) std::abort();
    static std::string keep = tmpl;
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(keep, ec);
    });
    return tmpl;
  }();
  return dir;
}

inline std::string write_file(const std::string& name, const uint8_t* data, size_t size) {
  const std::string path = scratch_dir() + "/" + name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  return path;
}

// Runs `fn`; an InputError is the reader doing its job, anything else aborts (a finding).
template <typename Fn>
void expect_only_input_errors(Fn&& fn) {
  try {
    fn();
  } catch (const sq::InputError&) {
  } catch (const std::exception& e) {
    std::fprintf(stderr, "FINDING: exception other than InputError: %s\n", e.what());
    std::abort();
  }
}

// The shared folder (fixtures, house model): $SQ_SHARED_DIR, else the configured default.
inline std::string shared_dir() {
  if (const char* e = std::getenv("SQ_SHARED_DIR")) return e;
  return SQ_SHARED_DIR;
}

}  // namespace sq::fuzz
