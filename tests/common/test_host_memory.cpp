// keep_freed_host_memory (common/host_memory.h): the user's malloc settings win; otherwise, on
// glibc, a large block is no longer served by mmap (mallinfo2's hblks stays 0) and a freed one
// is reused instead of faulted in again. read_host_rss and host_memory_headroom: a block we touch
// shows in RssAnon, and a ulimit -v we set is the headroom reported.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <unistd.h>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "common/host_memory.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace {

// Touches every page so that the block is really resident.
void* touched_block(size_t bytes) {
  void* p = std::malloc(bytes);
  if (p != nullptr) std::memset(p, 1, bytes);
  return p;
}

TEST(HostMemory, UserSettingsWinThenLargeBlocksStayInTheHeap) {
#if !defined(__GLIBC__)
  GTEST_SKIP() << "not glibc: keep_freed_host_memory does nothing here";
#elif defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "AddressSanitizer replaces malloc: glibc's mallopt has no effect on it";
#else
  if (std::getenv("GLIBC_TUNABLES") || std::getenv("MALLOC_MMAP_MAX_"))
    GTEST_SKIP() << "the environment already sets malloc options";
  const size_t big = size_t{64} << 20;  // above glibc's largest dynamic mmap threshold (32 MiB)
  // Before: glibc maps a 64 MiB block.
  void* a = touched_block(big);
  ASSERT_NE(a, nullptr);
  EXPECT_GE(mallinfo2().hblks, 1u) << "glibc served 64 MiB without mmap before the call";
  std::free(a);

  ::setenv("MALLOC_TOP_PAD_", "0", 1);
  EXPECT_EQ(sq::keep_freed_host_memory(), "") << "a user malloc setting must win";
  ::unsetenv("MALLOC_TOP_PAD_");
  ::setenv("SHARDQUANT_KEEP_HOST_MEMORY", "0", 1);
  EXPECT_EQ(sq::keep_freed_host_memory(), "");
  ::unsetenv("SHARDQUANT_KEEP_HOST_MEMORY");

  EXPECT_NE(sq::keep_freed_host_memory(), "");
  void* b = touched_block(big);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(mallinfo2().hblks, 0u) << "a 64 MiB block still came from mmap";
  std::free(b);
  void* c = touched_block(big);  // the freed heap block is reused
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(mallinfo2().hblks, 0u);
  std::free(c);
#endif
}

TEST(HostMemory, TouchedBlockShowsInRssAnon) {
  const sq::HostRss before = sq::read_host_rss();
  if (before.rss == 0) GTEST_SKIP() << "no /proc/self/status here";
  // 256 MiB: the test above leaves 64 MiB of touched memory in the heap (kept by its mallopt),
  // which a block of that size would reuse without RssAnon moving.
  const size_t big = size_t{256} << 20;
  void* p = touched_block(big);
  ASSERT_NE(p, nullptr);
  const sq::HostRss after = sq::read_host_rss();
  std::free(p);
  EXPECT_GE(after.anon, before.anon + big / 2) << "256 MiB touched, RssAnon barely moved";
  EXPECT_GE(after.peak, after.rss);
  EXPECT_GE(after.address, after.rss) << "VmSize below VmRSS";
  EXPECT_LE(after.anon + after.file, after.rss);
}

TEST(HostMemory, HeadroomIsTheAddressSpaceLimitLessWhatIsMapped) {
  struct rlimit old {};
  ASSERT_EQ(getrlimit(RLIMIT_AS, &old), 0);
  const uint64_t mapped = sq::read_host_rss().address;
  if (mapped == 0) GTEST_SKIP() << "no /proc/self/status here";
  const uint64_t extra = uint64_t{1} << 30;
  if (old.rlim_max != RLIM_INFINITY && old.rlim_max < mapped + extra)
    GTEST_SKIP() << "the hard address-space limit is below what this test sets";
  struct rlimit lim = old;
  lim.rlim_cur = mapped + extra;
  ASSERT_EQ(setrlimit(RLIMIT_AS, &lim), 0);
  const sq::HostHeadroom h = sq::host_memory_headroom();
  ASSERT_EQ(setrlimit(RLIMIT_AS, &old), 0);
  // Whatever the call itself mapped (a few pages for the files it reads) comes off the headroom;
  // a cgroup limit tighter than 1 GiB would win instead.
  if (h.what.rfind("cgroup", 0) == 0) GTEST_SKIP() << "a cgroup limit is tighter: " << h.what;
  EXPECT_LE(h.bytes, extra);
  EXPECT_GE(h.bytes, extra - (uint64_t{16} << 20)) << h.what;
  EXPECT_NE(h.what.find("ulimit -v"), std::string::npos) << h.what;
}

// MemAvailable (read here from /proc/meminfo) bounds the headroom; the switch takes it out.
TEST(HostMemory, HeadroomIsAtMostTheMachinesAvailableMemory) {
  std::ifstream mi("/proc/meminfo");
  uint64_t avail_kb = 0;
  for (std::string line; std::getline(mi, line);)
    if (line.rfind("MemAvailable:", 0) == 0) avail_kb = std::stoull(line.substr(13));
  if (avail_kb == 0) GTEST_SKIP() << "no MemAvailable in /proc/meminfo";
  const sq::HostHeadroom h = sq::host_memory_headroom();
  ASSERT_GT(h.bytes, 0u);
  EXPECT_LE(h.bytes, avail_kb * 1024 + (avail_kb * 1024) / 10) << h.what;  // 10 %: it moves
  ::setenv("SHARDQUANT_IGNORE_MEMAVAILABLE", "1", 1);
  const sq::HostHeadroom without = sq::host_memory_headroom();
  ::unsetenv("SHARDQUANT_IGNORE_MEMAVAILABLE");
  EXPECT_EQ(without.what.find("MemAvailable"), std::string::npos) << without.what;
}

// The sampler's peaks see a block that was touched and freed again between two calls.
TEST(HostMemory, SampledPeaksKeepATransientBlock) {
  const sq::HostRss before = sq::sampled_host_peaks();
  if (before.rss == 0) GTEST_SKIP() << "no /proc/self/status here";
  const size_t big = size_t{256} << 20;
  void* p = touched_block(big);
  ASSERT_NE(p, nullptr);
  usleep(100 * 1000);  // ten sampling periods
  const uint64_t anon_then = sq::read_host_rss().anon;
  std::free(p);
  const sq::HostRss after = sq::sampled_host_peaks();
  EXPECT_GE(after.anon, anon_then - (uint64_t{8} << 20));
  EXPECT_GE(after.anon, before.anon);
  EXPECT_GE(after.peak, after.rss);
}

}  // namespace
