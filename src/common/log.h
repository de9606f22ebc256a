// Logging: spdlog to the console (stderr) and, once the output directory is known, to a log
// file. Every line carries the rank as "[r<rank>]".
//
// Contract: init_logging() may be called once at start (rank known later is fine:
// set_log_rank()); add_log_file() may be called later and many times (earlier lines are not
// replayed). Solvers never log (DESIGN.md §1.4); everything else uses sq::log().
#pragma once

#include <spdlog/spdlog.h>

#include <memory>
#include <string>

namespace sq {

enum class Verbosity { kQuiet, kNormal, kVerbose, kDebug };

void init_logging(Verbosity v = Verbosity::kNormal);
void set_log_rank(int rank, int world);
// Appends every further line to `path` (created, parent directories created).
void add_log_file(const std::string& path);
void flush_logs();
std::shared_ptr<spdlog::logger> log();
// A duration for log lines: "1h02m", "3m05s", "4.2s" ("?" when negative or not finite).
std::string human_seconds(double s);

}  // namespace sq
