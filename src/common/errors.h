// Error hierarchy of shardquant. Code inside the program throws; only
// coordinator/app/main.cpp turns an exception into an exit code (exit_code_for).
//
// Contract: every message names what a user needs to act on — the file, the tensor, the
// expected and the actual value. Build messages with sq::fmt-style helpers or streams.
#pragma once

#include <stdexcept>
#include <string>

namespace sq {

enum class ExitCode : int {
  kOk = 0,
  kInternal = 4,  // a bug in shardquant
  kUser = 2,      // bad input the user can fix (flags, model dir, files)
  kSystem = 3,    // the system or a backend failed (I/O, CUDA, NCCL, MPI, HDF5, memory)
};

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
  virtual ExitCode code() const = 0;
  virtual const char* kind() const = 0;
};

// The user can fix it: a flag, a file, a model directory. Exit 2.
class InputError : public Error {
 public:
  using Error::Error;
  ExitCode code() const override { return ExitCode::kUser; }
  const char* kind() const override { return "input error"; }
};

// The system or a backend failed: I/O, CUDA, NCCL, MPI, HDF5, out of memory. Exit 3.
class BackendError : public Error {
 public:
  using Error::Error;
  ExitCode code() const override { return ExitCode::kSystem; }
  const char* kind() const override { return "system error"; }
};

// A broken invariant inside shardquant. Exit 4.
class InternalError : public Error {
 public:
  using Error::Error;
  ExitCode code() const override { return ExitCode::kInternal; }
  const char* kind() const override { return "internal error"; }
};

// Maps any exception to the process exit code (Error subclasses to theirs, std::bad_alloc to
// kSystem, anything else to kInternal).
int exit_code_for(const std::exception& e);

}  // namespace sq
