// Host memory of this process: how malloc behaves, what the process holds, and how much more a
// limit lets it take. One home for the three (issue 21's RSS report, issue 24's limit check).
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
//
//   HostRss read_host_rss()
//   - The process's memory as the kernel accounts it (/proc/self/status): resident pages split
//     into anonymous (heap, tensors we allocated) and file-backed (the mmapped shards), the peak
//     VmHWM and the mapped address space VmSize, in bytes; a field is zero where
//     /proc/self/status is missing or lacks it (non-Linux). Never throws.
//
//   HostRss sampled_host_peaks()
//   - The largest RssAnon, RssFile and VmRSS this process has had (anon / file / rss fields;
//     peak = VmHWM; address = VmSize now), sampled by a thread of its own every 10 ms from the
//     first call on (started by that call, stopped at exit) and at every call. A short spike
//     between two samples can be missed by anon / file, never by peak (the kernel's own maximum).
//     Thread-safe; never throws (zeros where /proc/self/status is missing).
//
//   HostHeadroom host_memory_headroom()
//   - How much more host memory this process may take before a limit stops it (issue 24 point 5):
//       ulimit -v (RLIMIT_AS, soft): the limit minus the address space mapped now (VmSize:
//       program, libraries, the mmapped model shards);
//       cgroup v2 memory.max of the process's cgroup: the limit minus memory.current;
//       cgroup v1 memory.limit_in_bytes of its memory cgroup: the limit minus usage_in_bytes;
//       the machine's MemAvailable (/proc/meminfo; not with SHARDQUANT_IGNORE_MEMAVAILABLE=1).
//     `bytes` is the smaller headroom, `what` describes it ("ulimit -v (address space) 1.43 GiB,
//     0.61 GiB already in use"); bytes == 0 and what == "" when no limit is known.
#pragma once

#include <cstdint>
#include <string>

namespace sq {

std::string keep_freed_host_memory();

struct HostRss {
  uint64_t anon = 0;     // RssAnon
  uint64_t file = 0;     // RssFile
  uint64_t rss = 0;      // VmRSS (anon + file + shmem)
  uint64_t peak = 0;     // VmHWM: the largest VmRSS so far
  uint64_t address = 0;  // VmSize: the address space mapped (what ulimit -v counts)
};

HostRss read_host_rss();
HostRss sampled_host_peaks();

struct HostHeadroom {
  uint64_t bytes = 0;
  std::string what;
};
HostHeadroom host_memory_headroom();

}  // namespace sq
