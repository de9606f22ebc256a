// Checkpoints (contract in checkpoint.h). The fingerprint is plain JSON so that a refused resume
// can name each difference in the user's terms (the option, the model file) rather than a hash.
#include "coordinator/run/checkpoint.h"

#include <algorithm>
#include <chrono>
#include <filesystem>

#include "common/check.h"
#include "io/hdf5/hdf5_record.h"

namespace fs = std::filesystem;

namespace sq::coordinator {
namespace {

void flatten(const nlohmann::json& j, const std::string& prefix,
             std::map<std::string, std::string>& out) {
  if (j.is_object() && !j.empty()) {
    for (const auto& [k, v] : j.items()) flatten(v, prefix.empty() ? k : prefix + "." + k, out);
    return;
  }
  out[prefix] = j.dump();
}

nlohmann::json result_options(const Options& o) {
  return {{"method", to_string(o.method)},
          {"bits", o.bits},
          {"q_group_size", o.group_size},
          {"zero_point", o.zero_point},
          {"desc_act", o.desc_act},
          {"static_groups", o.static_groups},
          {"damp_percent", o.damp_percent},
          {"mse", o.mse},
          {"true_sequential", o.true_sequential},
          {"propagate", to_string(o.propagate)},
          {"duo_scaling", o.duo_scaling},
          {"clip", o.clip},
          {"clip_asym", o.clip_asym},
          {"clip_tokens", o.clip_tokens},
          {"awq_rounding", to_string(o.awq_rounding)},
          {"n_grid", o.n_grid},
          {"iter", o.iter},
          {"search_step", o.search_step},
          {"keep_fp_layers", o.keep_fp_layers},
          {"dump_salient", o.dump_salient},
          {"salient_quota", o.salient_quota},
          {"format", io::cli_name(o.format)},
          {"seq_len", o.seq_len},
          {"calib_size", o.calib_size},
          {"micro_batch", o.micro_batch},
          {"max_shard_size", o.max_shard_size_bytes},
          {"output_layout", o.output_layout}};
}

// The k of every "<head><k>.h5" in the checkpoint directory (ascending).
std::vector<int64_t> generations(const std::string& partial_dir, const std::string& head) {
  std::vector<int64_t> out;
  for (const auto& p : checkpoint_files(partial_dir)) {
    const std::string f = fs::path(p).filename().string();
    if (f.rfind(head, 0) != 0) continue;
    const std::string k = f.substr(head.size(), f.size() - head.size() - 3);  // minus ".h5"
    if (!k.empty() && k.find_first_not_of("0123456789") == std::string::npos)
      out.push_back(std::stoll(k));
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

std::string checkpoint_dir(const std::string& partial_dir) {
  return partial_dir + "/.checkpoint";
}

std::string checkpoint_path(const std::string& partial_dir, int rank) {
  return checkpoint_dir(partial_dir) + "/rank-" + std::to_string(rank) + ".h5";
}

std::vector<std::string> checkpoint_files(const std::string& partial_dir) {
  std::vector<std::string> files;
  std::error_code ec;
  if (!fs::is_directory(checkpoint_dir(partial_dir), ec)) return files;
  for (const auto& e : fs::directory_iterator(checkpoint_dir(partial_dir), ec)) {
    const std::string f = e.path().filename().string();
    if (f.rfind("rank-", 0) == 0 && e.path().extension() == ".h5") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::string data_checkpoint_path(const std::string& partial_dir, int rank, int64_t next) {
  return checkpoint_dir(partial_dir) + "/rank-" + std::to_string(rank) + ".next-" +
         std::to_string(next) + ".h5";
}

std::vector<int64_t> data_checkpoint_generations(const std::string& partial_dir, int rank) {
  return generations(partial_dir, "rank-" + std::to_string(rank) + ".next-");
}

void remove_data_checkpoints(const std::string& partial_dir, int rank, int64_t keep_first,
                             int64_t keep_last) {
  for (const int64_t k : data_checkpoint_generations(partial_dir, rank))
    if (k < keep_first || k > keep_last) {
      std::error_code ec;  // a file already gone is what was wanted
      fs::remove(data_checkpoint_path(partial_dir, rank, k), ec);
    }
}

std::string activations_path(const std::string& partial_dir, int rank, int64_t next) {
  return checkpoint_dir(partial_dir) + "/rank-" + std::to_string(rank) + ".x-" +
         std::to_string(next) + ".h5";
}

std::vector<int64_t> activations_generations(const std::string& partial_dir, int rank) {
  return generations(partial_dir, "rank-" + std::to_string(rank) + ".x-");
}

int64_t newest_activations(const std::string& partial_dir, int rank, int64_t next) {
  int64_t best = -1;
  for (const int64_t k : activations_generations(partial_dir, rank))
    if (k <= next) best = k;
  return best;
}

void remove_activations_below(const std::string& partial_dir, int rank, int64_t keep) {
  for (const int64_t k : activations_generations(partial_dir, rank))
    if (k < keep) {
      std::error_code ec;  // a file already gone is what was wanted
      fs::remove(activations_path(partial_dir, rank, k), ec);
    }
}

nlohmann::json run_fingerprint(const Options& o, const Plan& plan, const DistPlan& dp,
                               const nlohmann::json& calib_provenance, at::ScalarType dtype,
                               const at::Device& dev) {
  nlohmann::json model = nlohmann::json::object();
  model["config.json"] = io::file_digest(o.model_path + "/config.json");
  for (const auto& e : fs::directory_iterator(o.model_path)) {
    const std::string f = e.path().filename().string();
    if (e.path().extension() == ".safetensors") model[f] = io::header_digest(e.path().string());
  }
  nlohmann::json ranges = nlohmann::json::array();
  for (const auto& r : dp.ranges) ranges.push_back({r.first, r.last});
  return {{"version", 1},
          {"model", model},
          {"plan", plan_digest(plan)},
          {"options", result_options(o)},
          {"calibration", calib_provenance},
          {"device", dev.is_cuda() ? "cuda" : dev.str()},
          {"compute_dtype", c10::toString(dtype)},
          {"ranks", dp.world},
          {"parallel", to_string(dp.mode)},
          {"block_ranges", ranges}};
}

std::vector<std::string> fingerprint_differences(const nlohmann::json& saved,
                                                 const nlohmann::json& now) {
  std::map<std::string, std::string> a, b;
  flatten(saved, "", a);
  flatten(now, "", b);
  std::vector<std::string> out;
  for (const auto& [k, v] : a) {
    const auto it = b.find(k);
    if (it == b.end())
      out.push_back(k + ": checkpoint " + v + ", now absent");
    else if (it->second != v)
      out.push_back(k + ": checkpoint " + v + ", now " + it->second);
  }
  for (const auto& [k, v] : b)
    if (!a.count(k)) out.push_back(k + ": checkpoint absent, now " + v);
  return out;
}

double Checkpoint::seconds() const {
  double s = 0;
  for (const auto& b : blocks) s += b.value("seconds", 0.0);
  return s;
}

void write_checkpoint(const std::string& path, const Checkpoint& c) {
  io::Record r;
  r.meta = {{"fingerprint", c.fingerprint},
            {"rank", c.rank},
            {"first", c.first},
            {"last", c.last},
            {"next", c.next},
            {"blocks_total", c.blocks_total},
            {"blocks", c.blocks},
            {"salient", c.salient},
            {"host_memory", c.host_memory},
            {"samples", c.samples},
            {"seq_len", c.seq_len},
            {"seq_lens", c.seq_lens},
            {"times",
             {{"blocks", c.times.blocks},
              {"load", c.times.load},
              {"quant_only", c.times.quant_only},
              {"export", c.times.export_}}},
            {"writer", c.writer}};
  if (c.x.defined()) r.tensors["x"] = c.x;
  if (c.mask.defined()) r.tensors["mask"] = c.mask;
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  io::write_record(path, r);
}

std::optional<Checkpoint> read_checkpoint(const std::string& path, bool tensors) {
  auto r = io::read_record(path, tensors);
  if (!r) return std::nullopt;
  Checkpoint c;
  try {
    const auto& m = r->meta;
    c.fingerprint = m.at("fingerprint");
    c.rank = m.at("rank");
    c.first = m.at("first");
    c.last = m.at("last");
    c.next = m.at("next");
    c.blocks_total = m.at("blocks_total");
    c.blocks = m.at("blocks");
    c.salient = m.at("salient");
    c.host_memory = m.at("host_memory");
    c.samples = m.at("samples");
    c.seq_len = m.at("seq_len");
    c.seq_lens = m.value("seq_lens", std::vector<int64_t>{});
    const auto& t = m.at("times");
    c.times.blocks = t.at("blocks");
    c.times.load = t.at("load");
    c.times.quant_only = t.at("quant_only");
    c.times.export_ = t.at("export");
    c.writer = m.at("writer");
  } catch (const nlohmann::json::exception& e) {
    SQ_THROW(BackendError, "checkpoint " << path << ": " << e.what());
  }
  if (r->tensors.count("x")) c.x = r->tensors.at("x");
  if (r->tensors.count("mask")) c.mask = r->tensors.at("mask");
  return c;
}

namespace {
double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
at::Tensor host_copy(const at::Tensor& t) {
  if (!t.defined()) return t;
  return t.is_cpu() ? t.clone() : t.cpu();
}
}  // namespace

CheckpointWriter::~CheckpointWriter() {
  if (thread_.joinable()) thread_.join();
}

void CheckpointWriter::join() {
  if (thread_.joinable()) thread_.join();
  if (error_) {
    std::exception_ptr e = error_;
    error_ = nullptr;
    std::rethrow_exception(e);
  }
}

void CheckpointWriter::write(const std::string& path, Checkpoint c, std::function<void()> after) {
  const auto t0 = std::chrono::steady_clock::now();
  join();
  c.x = host_copy(c.x);
  c.mask = host_copy(c.mask);
  waited_ += since(t0);
  finished_ = false;
  thread_ = std::thread([this, path, c = std::move(c), after = std::move(after)] {
    const auto tw = std::chrono::steady_clock::now();
    try {
      write_checkpoint(path, c);
      if (after) after();
    } catch (...) {
      error_ = std::current_exception();
    }
    writing_ += since(tw);
    finished_ = true;
  });
}

void CheckpointWriter::flush() {
  const auto t0 = std::chrono::steady_clock::now();
  join();
  waited_ += since(t0);
}

}  // namespace sq::coordinator
