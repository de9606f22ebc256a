// Why: LibTorch's CPU ops allocate their outputs with malloc and free them at once. glibc serves
// every block above its mmap threshold (at most 32 MiB) with a fresh mmap() and unmaps it on
// free, so the next op's output is page-faulted in again, one zero-filled 4 KiB page at a time.
// A CPU GPTQ run of the house model at 64×2048 took 16 M minor faults and 187 s of system time
// in 343 s of wall time; keeping the blocks in the heap brought it to 0.4 M faults and 166 s.
// /proc/self/status lines look like "RssAnon:\t  123456 kB".
#include "common/host_memory.h"

#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace sq {

std::string keep_freed_host_memory() {
  for (const char* v : {"MALLOC_MMAP_MAX_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_",
                        "MALLOC_TOP_PAD_", "GLIBC_TUNABLES"})
    if (std::getenv(v) != nullptr) return "";
  if (const char* k = std::getenv("SHARDQUANT_KEEP_HOST_MEMORY"); k && std::strcmp(k, "0") == 0)
    return "";
#if defined(__GLIBC__)
  // Trim first: a later trim threshold of INT_MAX never gives memory back.
  if (mallopt(M_TRIM_THRESHOLD, INT_MAX) != 1 || mallopt(M_MMAP_MAX, 0) != 1) return "";
  return "host allocator: large blocks stay in the heap and freed memory is kept for reuse (CPU "
         "run; SHARDQUANT_KEEP_HOST_MEMORY=0 turns this off)";
#else
  return "";
#endif
}

HostRss read_host_rss() {
  HostRss r;
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    const std::string key = line.substr(0, colon);
    uint64_t* slot = key == "RssAnon"   ? &r.anon
                     : key == "RssFile" ? &r.file
                     : key == "VmRSS"   ? &r.rss
                     : key == "VmHWM"   ? &r.peak
                     : key == "VmSize"  ? &r.address
                                        : nullptr;
    if (!slot) continue;
    std::istringstream v(line.substr(colon + 1));
    uint64_t kb = 0;
    if (v >> kb) *slot = kb * 1024;
  }
  return r;
}

namespace {

// The sampler of sampled_host_peaks(): one per process, joined by its static destructor.
class PeakSampler {
 public:
  PeakSampler() : thread_([this] { loop(); }) {}
  ~PeakSampler() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  HostRss peaks() {
    sample();
    std::lock_guard<std::mutex> lock(mu_);
    return max_;
  }

 private:
  void sample() {
    const HostRss now = read_host_rss();
    std::lock_guard<std::mutex> lock(mu_);
    max_.anon = std::max(max_.anon, now.anon);
    max_.file = std::max(max_.file, now.file);
    max_.rss = std::max(max_.rss, now.rss);
    max_.peak = std::max(max_.peak, now.peak);
    max_.address = now.address;
  }
  void loop() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
      lock.unlock();
      sample();
      lock.lock();
      cv_.wait_for(lock, std::chrono::milliseconds(10), [this] { return stop_; });
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  HostRss max_;
  std::thread thread_;  // last: started once the members it uses exist
};

std::string gib(uint64_t b) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f GiB", static_cast<double>(b) / (1ull << 30));
  return buf;
}

// Bytes in a one-number file ("max" or unreadable: 0).
uint64_t read_number(const std::string& path) {
  std::ifstream in(path);
  std::string s;
  if (!(in >> s) || s == "max") return 0;
  return std::strtoull(s.c_str(), nullptr, 10);
}

void take(HostHeadroom& h, uint64_t limit, uint64_t used, const std::string& name) {
  const uint64_t room = limit > used ? limit - used : 1;
  if (h.bytes != 0 && room >= h.bytes) return;
  h.bytes = room;
  h.what = used ? name + " " + gib(limit) + ", " + gib(used) + " already in use"
                : name + " " + gib(limit);
}

}  // namespace

HostRss sampled_host_peaks() {
  static PeakSampler sampler;
  return sampler.peaks();
}

HostHeadroom host_memory_headroom() {
  HostHeadroom h;
  struct rlimit rl {};
  if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
    take(h, rl.rlim_cur, read_host_rss().address, "ulimit -v (address space)");
  }
  // cgroup v2: "0::/path" in /proc/self/cgroup; v1: "N:memory:/path" (or "N:...,memory,...:").
  // v1 writes "no limit" as a huge number (PAGE_COUNTER_MAX pages), so anything above 2^60 is
  // taken as none. Both charge the page cache too; it is reclaimed under the limit, so what is
  // in use is counted as it is (an honest lower bound on the room).
  std::ifstream cg("/proc/self/cgroup");
  for (std::string line; std::getline(cg, line);) {
    const auto c1 = line.find(':'), c2 = line.find(':', c1 + 1);
    if (c1 == std::string::npos || c2 == std::string::npos) continue;
    const std::string controllers = "," + line.substr(c1 + 1, c2 - c1 - 1) + ",";
    const std::string path = line.substr(c2 + 1);
    if (line.rfind("0::", 0) == 0) {
      const std::string dir = "/sys/fs/cgroup" + path;
      const uint64_t max = read_number(dir + "/memory.max");
      if (max) take(h, max, read_number(dir + "/memory.current"), "cgroup memory.max");
    } else if (controllers.find(",memory,") != std::string::npos) {
      const std::string dir = "/sys/fs/cgroup/memory" + path;
      const uint64_t max = read_number(dir + "/memory.limit_in_bytes");
      if (max && max < (uint64_t{1} << 60))
        take(h, max, read_number(dir + "/memory.usage_in_bytes"), "cgroup memory.limit_in_bytes");
    }
  }
  // The machine's own: MemAvailable (free + reclaimable page cache), with nothing in use to
  // subtract (it is what is left already). Skipped when SHARDQUANT_IGNORE_MEMAVAILABLE=1.
  if (const char* e = std::getenv("SHARDQUANT_IGNORE_MEMAVAILABLE");
      !(e && std::strcmp(e, "1") == 0)) {
    std::ifstream mi("/proc/meminfo");
    for (std::string line; std::getline(mi, line);) {
      if (line.rfind("MemAvailable:", 0) != 0) continue;
      std::istringstream v(line.substr(13));
      uint64_t kb = 0;
      if (v >> kb && kb > 0) take(h, kb * 1024, 0, "available memory (MemAvailable)");
    }
  }
  return h;
}

}  // namespace sq
