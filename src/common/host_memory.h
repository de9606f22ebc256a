// Host (malloc) behaviour for runs that compute on the CPU.
//
// CONTRACT
//   std::string keep_freed_host_memory()
//   - On glibc: from now on malloc serves large blocks from its heap instead of a fresh mmap()
//     each time, and keeps freed memory instead of returning it to the OS (mallopt M_MMAP_MAX = 0,
//     M_TRIM_THRESHOLD = the largest value). Returns a one-line description of that.
//   - Does nothing and returns "" when the user set any of MALLOC_MMAP_MAX_,
//     MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_, MALLOC_TOP_PAD_ or GLIBC_TUNABLES (their
//     choice wins), when SHARDQUANT_KEEP_HOST_MEMORY=0, or when the C library is not glibc.
//   - Process-wide and not undone; call it once the run is known to compute on the CPU.
//   Cost: the process's resident size stays at its peak until it exits (measured +22 % peak RSS
//   on a CPU GPTQ run of the house model, bench/NOTES.md "CPU page faults").
#pragma once

#include <string>

namespace sq {

std::string keep_freed_host_memory();

}  // namespace sq
