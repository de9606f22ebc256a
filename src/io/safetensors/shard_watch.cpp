// Why a handler at all: the shards are mmapped (zero-copy), so a file that shrinks under a
// running job turns the next read of a lost page into SIGBUS, which would kill the process with
// "Bus error" and no hint of the file. The handler only reads a fixed table that watch_mapping()
// fills before publishing each slot (release/acquire on `begin`).
#include "io/safetensors/shard_watch.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <mutex>

namespace sq::io {
namespace {

struct Watched {
  std::atomic<const uint8_t*> begin{nullptr};
  uint64_t size = 0;
  const char* path = nullptr;
  const std::vector<TensorInfo>* tensors = nullptr;
  const uint8_t* data_start = nullptr;
};
constexpr int kMaxWatched = 4096;
Watched g_watched[kMaxWatched];
struct sigaction g_previous {};
std::once_flag g_install;

void put(const char* s) {
  ssize_t rc = ::write(2, s, std::strlen(s));
  (void)rc;
}
void put_u64(uint64_t v) {
  char buf[24];
  int i = 23;
  buf[i] = 0;
  do {
    buf[--i] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v && i > 0);
  put(buf + i);
}

void on_sigbus(int sig, siginfo_t* info, void* ctx) {
  const auto* addr = static_cast<const uint8_t*>(info->si_addr);
  for (const auto& w : g_watched) {
    const uint8_t* b = w.begin.load(std::memory_order_acquire);
    if (!b || addr < b || addr >= b + w.size) continue;
    put("shardquant: system error: ");
    put(w.path);
    put(": input file shrank while being read (");
    if (addr >= w.data_start) {
      const uint64_t off = static_cast<uint64_t>(addr - w.data_start);
      for (const auto& t : *w.tensors)
        if (off >= t.begin && off < t.end) {
          put("tensor \"");
          put(t.name.c_str());
          put("\", ");
        }
      put("byte ");
      put_u64(off);
      put(" of the data section");
    } else {
      put("header");
    }
    put("): it was truncated or rewritten after its header was read; input files must not "
        "change during a run\n");
    ::_exit(3);
  }
  // Not ours: what was there before.
  if (g_previous.sa_flags & SA_SIGINFO) {
    if (g_previous.sa_sigaction) return g_previous.sa_sigaction(sig, info, ctx);
  } else if (g_previous.sa_handler != SIG_DFL && g_previous.sa_handler != SIG_IGN &&
             g_previous.sa_handler) {
    return g_previous.sa_handler(sig);
  }
  ::signal(SIGBUS, SIG_DFL);
  ::raise(SIGBUS);
}

}  // namespace

void watch_mapping(const void* begin, uint64_t size, const std::string& path,
                   const std::vector<TensorInfo>& tensors, const uint8_t* data_start) {
  std::call_once(g_install, [] {
    struct sigaction sa {};
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGBUS, &sa, &g_previous);
  });
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  for (auto& w : g_watched) {
    if (w.begin.load(std::memory_order_relaxed)) continue;
    w.size = size;
    w.path = path.c_str();
    w.tensors = &tensors;
    w.data_start = data_start;
    w.begin.store(static_cast<const uint8_t*>(begin), std::memory_order_release);
    return;
  }
  // More open shards than slots: this one is read unwatched (a SIGBUS then kills the process
  // with the default message instead of ours).
}

void unwatch_mapping(const void* begin) {
  for (auto& w : g_watched)
    if (w.begin.load(std::memory_order_relaxed) == begin) {
      w.begin.store(nullptr, std::memory_order_release);
      return;
    }
}

}  // namespace sq::io
