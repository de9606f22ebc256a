// Whether the processes of the other ranks on this host still run (issue 24 point 4), so that a
// rank waiting in a collective can name a peer that was SIGKILLed (OOM killer, operator) instead
// of only timing out. No heartbeat: the waiting rank looks at the peer's process itself.
//
// CONTRACT
//   process_id(pid)  the pid with its start time (/proc/<pid>/stat field 22, clock ticks after
//                    boot); start is empty when /proc/<pid>/stat cannot be read (no such process,
//                    another PID namespace, no /proc).
//   PeerLiveness(peers)  the ranks to watch, each with the ProcessId taken while it ran (at
//                    transport start-up). Entries with an empty start are ignored: their process
//                    cannot be seen from here, so it is never reported gone.
//   gone()           the watched ranks whose process has ended, in the order given: its
//                    /proc/<pid>/stat is gone, says zombie or dead (state Z or X: killed, not yet
//                    reaped), or shows another start time (the pid was reused). A process that
//                    is alive — running, sleeping or stopped — is never reported.
// Linux only (/proc); elsewhere nothing is ever reported gone.
#pragma once

#include <string>
#include <vector>

namespace sq::rank {

struct ProcessId {
  int pid = 0;
  std::string start;  // "" = not visible from this process
};

ProcessId process_id(int pid);

struct WatchedRank {
  int rank = -1;
  ProcessId process;
};

class PeerLiveness {
 public:
  PeerLiveness() = default;
  explicit PeerLiveness(std::vector<WatchedRank> peers);
  std::vector<WatchedRank> gone() const;
  bool empty() const { return peers_.empty(); }

 private:
  std::vector<WatchedRank> peers_;
};

}  // namespace sq::rank
