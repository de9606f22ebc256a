// The process's resident memory as the kernel accounts it (/proc/self/status), split into
// anonymous pages (heap, tensors we allocated) and file-backed pages (the mmapped shards).
//
// CONTRACT
//   read_host_rss(): current RssAnon / RssFile / VmRSS and the peak VmHWM, in bytes; all zero
//   where /proc/self/status is missing or lacks a field (non-Linux). Never throws.
#pragma once

#include <cstdint>

namespace sq {

struct HostRss {
  uint64_t anon = 0;  // RssAnon
  uint64_t file = 0;  // RssFile
  uint64_t rss = 0;   // VmRSS (anon + file + shmem)
  uint64_t peak = 0;  // VmHWM: the largest VmRSS so far
};

HostRss read_host_rss();

}  // namespace sq
