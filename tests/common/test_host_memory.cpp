// keep_freed_host_memory (common/host_memory.h): the user's malloc settings win; otherwise, on
// glibc, a large block is no longer served by mmap (mallinfo2's hblks stays 0) and a freed one
// is reused instead of faulted in again.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>

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

}  // namespace
