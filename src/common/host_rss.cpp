// /proc/self/status lines look like "RssAnon:\t  123456 kB".
#include "common/host_rss.h"

#include <fstream>
#include <sstream>
#include <string>

namespace sq {

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
                                        : nullptr;
    if (!slot) continue;
    std::istringstream v(line.substr(colon + 1));
    uint64_t kb = 0;
    if (v >> kb) *slot = kb * 1024;
  }
  return r;
}

}  // namespace sq
