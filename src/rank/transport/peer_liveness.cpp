#include "rank/transport/peer_liveness.h"

#include <fstream>
#include <sstream>
#include <utility>

namespace sq::rank {
namespace {

// State (field 3) and start time (field 22) of /proc/<pid>/stat. The command name (field 2) is
// in parentheses and may contain spaces, so fields are counted after its closing parenthesis.
bool read_stat(int pid, char& state, std::string& start) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!in || !std::getline(in, line)) return false;
  const size_t close = line.rfind(')');
  if (close == std::string::npos) return false;
  std::istringstream fields(line.substr(close + 1));
  std::string f;
  for (int field = 3; field <= 22 && fields >> f; ++field) {
    if (field == 3) state = f.empty() ? '?' : f[0];
    if (field == 22) {
      start = f;
      return true;
    }
  }
  return false;
}

}  // namespace

ProcessId process_id(int pid) {
  ProcessId id;
  id.pid = pid;
  char state = '?';
  std::string start;
  if (pid > 0 && read_stat(pid, state, start) && state != 'Z' && state != 'X') id.start = start;
  return id;
}

PeerLiveness::PeerLiveness(std::vector<WatchedRank> peers) {
  for (auto& p : peers)
    if (!p.process.start.empty()) peers_.push_back(std::move(p));
}

std::vector<WatchedRank> PeerLiveness::gone() const {
  std::vector<WatchedRank> out;
  for (const auto& p : peers_) {
    char state = '?';
    std::string start;
    // Unreadable now but readable at start-up: the process has been reaped.
    if (!read_stat(p.process.pid, state, start) || state == 'Z' || state == 'X' ||
        start != p.process.start)
      out.push_back(p);
  }
  return out;
}

}  // namespace sq::rank
