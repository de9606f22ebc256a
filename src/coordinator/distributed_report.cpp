// A rank's report travels to rank 0 as JSON (gather_bytes); rank 0 turns each block entry back
// into the BlockQuantResult fields the run summary reads (reports and notes, no tensors).
#include "coordinator/distributed_internal.h"

namespace sq::coordinator::dist {

nlohmann::json to_json(const RankReport& r) {
  return {{"zero_zero", r.zero_zero},
          {"v1_qzeros", r.v1_qzeros},
          {"blocks", r.blocks},
          {"rank_stats", r.rank_stats}};
}

rank::BlockQuantResult report_as_result(const nlohmann::json& block) {
  rank::BlockQuantResult res;
  res.notes = block.at("notes").get<std::vector<std::string>>();
  for (const auto& j : block.at("reports")) {
    rank::LinearReport r;
    r.name = j.at("name");
    r.error = j.at("error");
    r.seconds = j.at("seconds");
    r.stats.error = r.error;
    r.stats.damp_escalations = j.at("damp_escalations");
    r.stats.diagonal_floor = j.at("diagonal_floor");
    r.stats.rtn_fallback = j.at("rtn_fallback");
    r.stats.dead_columns = j.at("dead_columns");
    r.note = j.at("note");
    r.salient = j.value("salient", std::vector<int64_t>{});
    res.reports.push_back(r);
  }
  return res;
}

}  // namespace sq::coordinator::dist
