#include "rank/quant/capture.h"

#include "common/check.h"

namespace sq::rank {
namespace {

// Flattens x to [tokens, in], keeping only real tokens when a [B,T] mask matches x's leading dims.
at::Tensor flatten_tokens(const at::Tensor& x, const at::Tensor& mask) {
  at::Tensor flat = x.reshape({-1, x.size(-1)});
  if (mask.defined() && x.dim() == 3 && mask.size(0) == x.size(0) && mask.size(1) == x.size(1)) {
    at::Tensor m = mask.reshape({-1}).to(x.device());
    if (!m.all().item<bool>()) flat = flat.index({m});
  }
  return flat;
}

}  // namespace

bool InputCapture::wants(const std::string& linear) const {
  return wanted_.empty() || wanted_.count(linear) != 0;
}

void InputCapture::begin_batch() {
  batch_ptr_slot_.clear();
}

void InputCapture::on_input(const std::string& linear, const at::Tensor& x) {
  const void* ptr = x.data_ptr();
  auto same = batch_ptr_slot_.find(ptr);
  if (same != batch_ptr_slot_.end() && same->second.x.sizes() == x.sizes()) {
    slot_of_[linear] = same->second.slot;  // shares an input already stored in this micro-batch
    return;
  }
  at::Tensor flat = x.reshape({-1, x.size(-1)}).contiguous();
  auto it = slot_of_.find(linear);
  size_t slot;
  if (it == slot_of_.end()) {
    slot = pieces_.size();
    pieces_.emplace_back();
    slot_of_[linear] = slot;
  } else {
    slot = it->second;
  }
  pieces_[slot].push_back(flat);
  batch_ptr_slot_[ptr] = Seen{slot, x};
}

void InputCapture::finish() {
  joined_.clear();
  piece_rows_.clear();
  for (auto& p : pieces_) {
    std::vector<int64_t> rows;
    for (const auto& t : p) rows.push_back(t.size(0));
    piece_rows_.push_back(std::move(rows));
    joined_.push_back(p.size() == 1 ? p[0] : at::cat(p, 0));
    p.clear();
  }
  batch_ptr_slot_.clear();
}

at::Tensor& InputCapture::input(const std::string& linear) {
  auto it = slot_of_.find(linear);
  SQ_CHECK(it != slot_of_.end(), "no captured input for linear " << linear);
  SQ_CHECK(it->second < joined_.size(), "InputCapture::finish() not called");
  return joined_[it->second];
}

const std::vector<int64_t>& InputCapture::piece_rows(const std::string& linear) const {
  auto it = slot_of_.find(linear);
  SQ_CHECK(it != slot_of_.end(), "no captured input for linear " << linear);
  SQ_CHECK(it->second < piece_rows_.size(), "InputCapture::finish() not called");
  return piece_rows_[it->second];
}

HessianCapture::HessianCapture(const std::vector<std::vector<std::string>>& input_sets,
                               const std::map<std::string, int64_t>& in_features,
                               at::Device device) {
  for (const auto& set : input_sets) {
    if (set.empty()) continue;
    const size_t idx = acc_.size();
    auto k = in_features.find(set[0]);
    SQ_CHECK(k != in_features.end(), "unknown in_features for " << set[0]);
    acc_.emplace_back(k->second, device);
    first_.push_back(set[0]);
    for (const auto& name : set) set_of_[name] = idx;
  }
}

void HessianCapture::on_input(const std::string& linear, const at::Tensor& x) {
  auto it = set_of_.find(linear);
  if (it == set_of_.end()) return;
  // Members of one set receive the same input: count it once, through the set's first linear.
  if (first_[it->second] != linear) return;
  acc_[it->second].add(flatten_tokens(x, mask_));
  if (it->second < seen_.size() && !seen_[it->second]) {
    seen_[it->second] = true;
    ++n_seen_;
  }
}

solvers::HessianAccumulator& HessianCapture::accumulator(const std::string& linear) {
  auto it = set_of_.find(linear);
  SQ_CHECK(it != set_of_.end(), "no Hessian for linear " << linear);
  return acc_[it->second];
}

}  // namespace sq::rank
