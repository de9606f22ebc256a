#include "common/log.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <mutex>

namespace sq {
namespace {

std::mutex g_mu;
std::shared_ptr<spdlog::logger> g_logger;
std::string g_rank_tag = "r0";

std::string pattern() {
  return "[%Y-%m-%d %H:%M:%S.%e] [" + g_rank_tag + "] [%^%l%$] %v";
}

std::shared_ptr<spdlog::logger> ensure_locked() {
  if (!g_logger) {
    auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
    g_logger = std::make_shared<spdlog::logger>("shardquant", sink);
    g_logger->set_pattern(pattern());
    g_logger->set_level(spdlog::level::info);
    g_logger->flush_on(spdlog::level::info);
  }
  return g_logger;
}

}  // namespace

void init_logging(Verbosity v) {
  std::lock_guard<std::mutex> lk(g_mu);
  auto lg = ensure_locked();
  static const spdlog::level::level_enum levels[] = {spdlog::level::warn, spdlog::level::info,
                                                     spdlog::level::debug, spdlog::level::trace};
  lg->set_level(levels[static_cast<int>(v)]);
}

void set_log_rank(int rank, int world) {
  std::lock_guard<std::mutex> lk(g_mu);
  g_rank_tag = "r" + std::to_string(rank) + (world > 1 ? "/" + std::to_string(world) : "");
  ensure_locked()->set_pattern(pattern());
}

void add_log_file(const std::string& path) {
  std::lock_guard<std::mutex> lk(g_mu);
  auto lg = ensure_locked();
  auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent);
  auto sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(path, /*truncate=*/false);
  sink->set_pattern(pattern());
  lg->sinks().push_back(sink);
  lg->set_pattern(pattern());
}

void flush_logs() {
  std::lock_guard<std::mutex> lk(g_mu);
  if (g_logger) g_logger->flush();
}

std::shared_ptr<spdlog::logger> log() {
  std::lock_guard<std::mutex> lk(g_mu);
  return ensure_locked();
}

std::string human_seconds(double s) {
  char buf[64];
  if (!std::isfinite(s) || s < 0) return "?";
  if (s < 60) {
    std::snprintf(buf, sizeof buf, "%.1fs", s);
  } else if (s < 3600) {
    std::snprintf(buf, sizeof buf, "%dm%02ds", static_cast<int>(s) / 60, static_cast<int>(s) % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%dh%02dm", static_cast<int>(s) / 3600,
                  (static_cast<int>(s) % 3600) / 60);
  }
  return buf;
}

}  // namespace sq
