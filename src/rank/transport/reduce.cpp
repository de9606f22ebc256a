// Reductions go through the transport on its own device (host memory for MPI) and come back to
// the caller's device; the transport's sum order is fixed, so every rank sees identical bits.
// A shared QuantizedLinear travels as a JSON header (shapes, dtypes, stats) and then its tensors
// in their own dtypes: the receivers allocate from the header, so nothing about the solve has to
// be recomputed (and the dequantized weight is the owner's, bit for bit).
#include "rank/transport/reduce.h"

#include <nlohmann/json.hpp>

#include "common/check.h"

namespace sq::rank {
namespace {

// The tensors of a QuantizedLinear, in the order they travel.
struct TensorField {
  const char* name;
  at::Tensor solvers::QuantizedLinear::*member;
};
constexpr TensorField kFields[] = {
    {"codes", &solvers::QuantizedLinear::codes},     {"zeros", &solvers::QuantizedLinear::zeros},
    {"scales", &solvers::QuantizedLinear::scales},   {"g_idx", &solvers::QuantizedLinear::g_idx},
    {"dequant", &solvers::QuantizedLinear::dequant},
};

}  // namespace

int64_t Reducer::sum(int64_t v) const {
  at::Tensor t = at::full({1}, v, at::kLong);
  sum(t);
  return t.item<int64_t>();
}

void TransportReducer::sum(at::Tensor& t) const {
  if (t_.world() <= 1) return;
  t_.all_reduce_sum(t);
}

int TransportReducer::owner(const std::string& linear) const {
  return owner_of_ ? owner_of_(linear) : -1;
}

void TransportReducer::broadcast(at::Tensor& t, int root) const {
  if (t_.world() <= 1) return;
  t_.broadcast(t, root);
}

void TransportReducer::broadcast_bytes(std::string& bytes, int root) const {
  if (t_.world() <= 1) return;
  t_.broadcast_bytes(bytes, root);
}

void share_quantized(const Reducer& r, solvers::QuantizedLinear& q, double& report_seconds,
                     std::string& note, int root, at::Device device, const Status& root_failure) {
  if (r.world() <= 1) {
    root_failure.raise("solve");
    return;
  }
  const bool is_root = r.rank() == root;
  std::string head;
  if (is_root && !root_failure.is_ok()) {
    head = nlohmann::json{{"failed", {root_failure.code, root_failure.rank, root_failure.message}}}
               .dump();
  } else if (is_root) {
    nlohmann::json j;
    for (const auto& f : kFields) {
      const at::Tensor& t = q.*f.member;
      SQ_CHECK(t.defined(), "share_quantized: the owner's " << f.name << " is undefined");
      j[f.name] = {{"shape", t.sizes().vec()}, {"dtype", static_cast<int>(t.scalar_type())}};
    }
    const auto& s = q.stats;
    j["stats"] = {s.error,          s.damp_escalations, s.final_damp_percent,
                  s.diagonal_floor, s.rtn_fallback,     s.dead_columns};
    j["seconds"] = report_seconds;
    j["note"] = note;
    head = j.dump();
  }
  r.broadcast_bytes(head, root);
  const auto j = nlohmann::json::parse(head);
  if (j.contains("failed")) {
    Status st;
    st.code = j["failed"].at(0);
    st.rank = j["failed"].at(1);
    st.message = j["failed"].at(2);
    st.failed_ranks = 1;
    st.raise("solve");
  }
  for (const auto& f : kFields) {
    at::Tensor& t = q.*f.member;
    if (is_root) {
      t = t.contiguous();
    } else {
      const auto& d = j.at(f.name);
      t = at::empty(d.at("shape").get<std::vector<int64_t>>(),
                    at::TensorOptions()
                        .dtype(static_cast<at::ScalarType>(d.at("dtype").get<int>()))
                        .device(device));
    }
    r.broadcast(t, root);
  }
  if (is_root) return;
  const auto& s = j.at("stats");
  q.stats.error = s.at(0);
  q.stats.damp_escalations = s.at(1);
  q.stats.final_damp_percent = s.at(2);
  q.stats.diagonal_floor = s.at(3);
  q.stats.rtn_fallback = s.at(4);
  q.stats.dead_columns = s.at(5);
  report_seconds = j.at("seconds");
  note = j.at("note");
}

}  // namespace sq::rank
