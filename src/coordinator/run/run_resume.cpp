// Which checkpoint a --resume continues (contract in run_internal.h). Every refusal is raised
// inside an agreed step so that all ranks stop with the same message; the data-mode generation is
// chosen by rank 0 from what every rank holds, since the ranks' background writes finish at
// different times and only a generation that all of them have on disk is consistent.
#include <algorithm>
#include <filesystem>
#include <iterator>

#include "common/check.h"
#include "common/log.h"
#include "coordinator/run/merge.h"
#include "coordinator/run/run_internal.h"

namespace sq::coordinator::run {
namespace {

void require_same_run(const std::string& path, const nlohmann::json& saved,
                      const nlohmann::json& now, const std::string& partial_dir) {
  const auto diff = fingerprint_differences(saved, now);
  if (diff.empty()) return;
  std::string lines;
  for (size_t k = 0; k < diff.size() && k < 12; ++k) lines += "\n  " + diff[k];
  if (diff.size() > 12) lines += "\n  … " + std::to_string(diff.size() - 12) + " more";
  SQ_THROW(InputError, "cannot resume from "
                           << path << ": it was written by a different run (model, options, "
                           << "calibration, rank count or --parallel mode):" << lines
                           << "\nrerun with the options of the interrupted run, or remove "
                           << partial_dir << " to start over");
}

// Data mode: the largest generation every rank holds (0: none), decided by rank 0.
int64_t agreed_generation(rank::Transport& t, const std::string& partial_dir) {
  const nlohmann::json mine = data_checkpoint_generations(partial_dir, t.rank());
  const auto all = t.gather_bytes(mine.dump(), 0);
  std::string chosen = "0";
  if (t.rank() == 0) {
    std::vector<int64_t> common = nlohmann::json::parse(all.at(0));
    for (size_t r = 1; r < all.size(); ++r) {
      const std::vector<int64_t> theirs = nlohmann::json::parse(all[r]);
      std::vector<int64_t> both;
      std::set_intersection(common.begin(), common.end(), theirs.begin(), theirs.end(),
                            std::back_inserter(both));
      common = std::move(both);
    }
    if (!common.empty()) chosen = std::to_string(common.back());
  }
  t.broadcast_bytes(chosen, 0);
  return std::stoll(chosen);
}

}  // namespace

std::optional<Checkpoint> find_resume_checkpoint(rank::Transport& t, const Options& o,
                                                 const DistPlan& dp,
                                                 const nlohmann::json& fingerprint) {
  if (!o.resume) return std::nullopt;
  const int r = t.rank();
  const bool data = dp.mode == DistMode::kData;
  const int64_t k = data ? agreed_generation(t, dp.partial_dir) : 0;
  std::optional<Checkpoint> ckpt;
  rank::agreed_step(t, "resume", [&] {
    const std::string path = !data   ? checkpoint_path(dp.partial_dir, r)
                             : k > 0 ? data_checkpoint_path(dp.partial_dir, r, k)
                                     : std::string();
    if (!path.empty()) ckpt = read_checkpoint(path);
    if (!ckpt) {
      // Nothing of this rank's to continue; whatever checkpoint the directory holds must still
      // be this run's (a checkpoint of the other --parallel mode or of another rank count would
      // otherwise be started over silently).
      const auto files = checkpoint_files(dp.partial_dir);
      if (r != 0 || files.empty()) return;
      require_same_run(files.front(), read_checkpoint(files.front(), false)->fingerprint,
                       fingerprint, dp.partial_dir);
      if (data)
        log()->info(
            "--resume: no checkpoint in {} that every rank holds (interrupted in the first "
            "block); starting from the first block",
            dp.partial_dir);
      return;
    }
    require_same_run(path, ckpt->fingerprint, fingerprint, dp.partial_dir);
    SQ_CHECK(ckpt->next > ckpt->first && ckpt->next <= ckpt->last,
             path << ": checkpoint at block " << ckpt->next << " outside the range " << ckpt->first
                  << ".." << ckpt->last);
    // (Data mode: rank 0 writes every fragment.)
    for (int64_t i = ckpt->first; i < ckpt->next && (!data || r == 0); ++i)
      SQ_REQUIRE(
          ckpt->writer.is_object() || std::filesystem::exists(fragment_path(dp.partial_dir, i)),
          path << " records block " << i << " as done but its fragment "
               << fragment_path(dp.partial_dir, i) << " is missing; remove " << dp.partial_dir
               << " to start over");
  });
  // Generations after the agreed one (a rank that got further) are redone; older ones are stale.
  if (data) remove_data_checkpoints(dp.partial_dir, r, k, k);
  return ckpt;
}

}  // namespace sq::coordinator::run
