#include "io/model/model_weights.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "common/check.h"
#include "io/format/format_registry.h"
#include "io/model/weight_checks.h"
#include "io/safetensors/tensor.h"

namespace fs = std::filesystem;

namespace sq::io {

ModelWeights::ModelWeights(const std::string& model_dir) : dir_(model_dir) {
  if (!fs::exists(model_dir)) SQ_THROW(InputError, model_dir << ": model directory not found");
  if (!fs::is_directory(model_dir)) SQ_THROW(InputError, model_dir << ": not a directory");
  const fs::path index_path = fs::path(model_dir) / "model.safetensors.index.json";

  std::map<std::string, std::string> index_map;  // tensor -> shard file name
  std::vector<std::string> shard_names;
  if (fs::exists(index_path)) {
    nlohmann::json idx;
    try {
      std::ifstream in(index_path);
      idx = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& ex) {
      SQ_THROW(InputError, index_path.string() << ": invalid JSON (" << ex.what() << ")");
    }
    if (!idx.contains("weight_map") || !idx["weight_map"].is_object())
      SQ_THROW(InputError, index_path.string() << ": missing \"weight_map\" object");
    std::set<std::string> seen;
    for (auto it = idx["weight_map"].begin(); it != idx["weight_map"].end(); ++it) {
      if (!it.value().is_string())
        SQ_THROW(InputError, index_path.string()
                                 << ": weight_map[\"" << it.key() << "\"] is not a file name");
      index_map[it.key()] = it.value().get<std::string>();
      if (seen.insert(it.value().get<std::string>()).second)
        shard_names.push_back(it.value().get<std::string>());
    }
    std::sort(shard_names.begin(), shard_names.end());
    for (const auto& s : shard_names) {
      // The name is data: one the file system refuses to look up (too long, a path through a
      // file) is the index's fault, not a system error (found by fuzz_index).
      std::error_code ec;
      const bool there = fs::exists(fs::path(model_dir) / s, ec);
      if (ec)
        SQ_THROW(InputError, index_path.string()
                                 << " lists shard \"" << s
                                 << "\" which cannot be looked up: " << ec.message());
      if (!there)
        SQ_THROW(InputError, index_path.string() << " lists shard \"" << s
                                                 << "\" which is missing from " << model_dir);
      // "" or "." names the directory itself, which mmap refused with ENODEV: a system error
      // (exit 3) for what is the index's fault (found by fuzz_index, session 14).
      if (!fs::is_regular_file(fs::path(model_dir) / s, ec))
        SQ_THROW(InputError, index_path.string()
                                 << " lists shard \"" << s << "\" which is not a file in "
                                 << model_dir << " (a directory?)");
    }
  } else {
    // Like transformers: without an index the weights are model.safetensors; only when that
    // is absent do other *.safetensors files (a single custom-named file) count.
    if (fs::exists(fs::path(model_dir) / "model.safetensors")) {
      shard_names.push_back("model.safetensors");
    } else {
      for (const auto& e : fs::directory_iterator(model_dir))
        if (e.is_regular_file() && e.path().extension() == ".safetensors")
          shard_names.push_back(e.path().filename().string());
    }
    std::sort(shard_names.begin(), shard_names.end());
    if (shard_names.empty())
      SQ_THROW(InputError, model_dir << ": no *.safetensors files (and no "
                                        "model.safetensors.index.json) — is this a Hugging Face "
                                        "model directory?");
  }

  for (const auto& s : shard_names) {
    auto f = SafetensorsFile::open((fs::path(model_dir) / s).string());
    const size_t fi = files_.size();
    files_.push_back(f);
    for (const auto& t : f->tensors()) {
      auto prev = where_.find(t.name);
      if (prev != where_.end())
        SQ_THROW(InputError, "tensor \"" << t.name << "\" appears in two shards: "
                                         << files_[prev->second]->path() << " and " << f->path());
      if (!index_map.empty()) {
        auto im = index_map.find(t.name);
        if (im == index_map.end()) continue;  // stray tensor not in the index: ignored like HF
        if (im->second != s)
          SQ_THROW(InputError, f->path() << " holds tensor \"" << t.name
                                         << "\" but the index assigns it to " << im->second);
      }
      where_[t.name] = fi;
    }
  }
  for (const auto& [name, shard] : index_map)
    if (!where_.count(name))
      SQ_THROW(InputError, index_path.string() << " lists tensor \"" << name << "\" in " << shard
                                               << " but that shard does not contain it");
  init_quantized_view();
}

// A quantized checkpoint is read dequantized so that blocks, the model and eval need no
// knowledge of packing: find each marker tensor, record the virtual weight's shape from the
// stored shapes (nothing is unpacked until get()), and hide the packed tensors.
void ModelWeights::init_quantized_view() {
  const fs::path cfg_path = fs::path(dir_) / "config.json";
  if (!fs::exists(cfg_path)) return;
  nlohmann::json cfg;
  try {
    std::ifstream in(cfg_path);
    cfg = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& ex) {
    SQ_THROW(InputError, cfg_path.string() << ": invalid JSON (" << ex.what() << ")");
  }
  // Every reader below looks keys up: a number, string or array here (nlohmann also ends the
  // text at a NUL byte, so "9\0{...}" is the number 9; found by fuzz_quantized) is the file's
  // fault.
  SQ_REQUIRE(cfg.is_object(), cfg_path.string()
                                  << ": expected a JSON object {...}, got " << cfg.type_name());
  init_expert_split(cfg);
  if (auto f = io::source_format(cfg, cfg_path.string())) {
    init_source_view(*f, cfg);
    return;
  }
  quant_ = quantized_layout(cfg, cfg_path.string());
  if (!quant_) return;
  const std::string marker = std::string(".") + format_row(quant_->format).marker;
  auto stored = [this](const std::string& n) {
    return where_.count(n) ? get_stored(n) : at::Tensor();
  };
  for (const auto& [name, fi] : where_) {
    if (name.size() <= marker.size() ||
        name.compare(name.size() - marker.size(), marker.size(), marker) != 0)
      continue;
    const std::string prefix = name.substr(0, name.size() - marker.size());
    const std::string wname = prefix + ".weight";
    if (where_.count(wname))
      SQ_THROW(InputError, file_of(wname) << ": linear " << prefix << " has both " << wname
                                          << " and the packed " << name);
    TensorInfo ti;
    ti.name = wname;
    ti.dtype = DType::F32;
    ti.shape = dequantized_shape(*quant_, prefix, stored);
    ti.begin = 0;
    ti.end = static_cast<uint64_t>(ti.numel()) * dtype_size(DType::F32);
    virtual_[wname] = ti;
    marker_[wname] = name;
    for (const auto& suffix : format_row(quant_->format).suffixes)
      if (where_.count(prefix + "." + suffix)) hidden_.insert(prefix + "." + suffix);
  }
}

// Llama 4: only float fused tensors as stored are split (a quantized or FP8 checkpoint of it is
// planned by its own view; their fused tensors would fail there, by name).
void ModelWeights::init_expert_split(const nlohmann::json& cfg) {
  if (!splits_fused_experts(cfg)) return;
  std::map<std::string, const TensorInfo*> stored;
  for (const auto& [name, fi] : where_) stored[name] = &files_[fi]->at(name);
  ExpertSplitPlan plan = plan_expert_split(stored, (fs::path(dir_) / "config.json").string());
  for (const auto& h : plan.hidden) hidden_.insert(h);
  split_ = std::move(plan.tensors);
}

// FP8 / MXFP4: the virtual tensors take the model dtype, the one a BF16 release of the same
// model would store, so that quantizing this checkpoint and quantizing its dequantized BF16 copy
// see the same bits.
void ModelWeights::init_source_view(const SourceFormat& f, const nlohmann::json& cfg) {
  const fs::path cfg_path = fs::path(dir_) / "config.json";
  std::string dt = "bfloat16";
  for (const char* key : {"torch_dtype", "dtype"})
    if (cfg.contains(key) && cfg[key].is_string()) {
      dt = cfg[key].get<std::string>();
      break;
    }
  if (dt == "bfloat16") {
    source_dtype_ = at::kBFloat16;
  } else if (dt == "float16") {
    source_dtype_ = at::kHalf;
  } else if (dt == "float32") {
    source_dtype_ = at::kFloat;
  } else {
    SQ_THROW(InputError, cfg_path.string() << ": torch_dtype \"" << dt
                                           << "\" cannot hold dequantized FP8/MXFP4 weights "
                                              "(expected bfloat16, float16 or float32)");
  }
  std::map<std::string, const TensorInfo*> stored;
  for (const auto& [name, fi] : where_) stored[name] = &files_[fi]->at(name);
  SourcePlan plan = plan_source_tensors(f, stored, cfg_path.string());
  source_ = f;
  for (const auto& h : plan.hidden) hidden_.insert(h);
  for (auto& [name, t] : plan.tensors) {
    TensorInfo ti;
    ti.name = name;
    ti.dtype = from_scalar_type(source_dtype_);
    ti.shape = t.shape;
    ti.end = static_cast<uint64_t>(ti.numel()) * dtype_size(ti.dtype);
    virtual_[name] = ti;
    // FP8 replaces a stored tensor of the same name: hide the stored one from names().
    if (where_.count(name)) hidden_.insert(name);
    if (t.data != name) marker_[name] = t.data;
    source_tensors_[name] = std::move(t);
  }
}

at::Tensor ModelWeights::get_raw(const std::string& name) const {
  const TensorInfo* ti = stored_info(name);
  if (!ti) SQ_THROW(InputError, dir_ << ": tensor \"" << name << "\" not found");
  if (dtype_size(ti->dtype) != 1) return get_stored(name);
  auto keep = files_[where_.at(name)];
  if (ti->numel() == 0) return at::empty(ti->shape, at::kByte);
  return at::from_blob(
      const_cast<uint8_t*>(keep->data(*ti)), ti->shape, [keep](void*) mutable { keep.reset(); },
      at::TensorOptions().dtype(at::kByte));
}

ModelWeights::Span ModelWeights::stored_span(const std::string& name) const {
  const TensorInfo* ti = stored_info(name);
  if (!ti) SQ_THROW(InputError, dir_ << ": tensor \"" << name << "\" not found");
  return {files_[where_.at(name)]->data(*ti), static_cast<size_t>(ti->nbytes())};
}

std::vector<std::string> ModelWeights::stored_parts(const std::string& name) const {
  if (auto s = split_.find(name); s != split_.end()) return {s->second.fused};
  if (auto s = source_tensors_.find(name); s != source_tensors_.end())
    return {s->second.data, s->second.scale};
  if (auto m = marker_.find(name); m != marker_.end() && quant_) {
    const std::string prefix = name.substr(0, name.size() - 7);  // drop ".weight"
    std::vector<std::string> out;
    for (const auto& suffix : format_row(quant_->format).suffixes)
      if (where_.count(prefix + "." + suffix)) out.push_back(prefix + "." + suffix);
    return out;
  }
  return {name};
}

at::Tensor ModelWeights::get_on(const std::string& name, at::ScalarType dtype,
                                at::Device device) const {
  auto s = source_tensors_.find(name);
  if (s == source_tensors_.end() && !device.is_cpu() && !marker_.count(name) &&
      !hidden_.count(name) && where_.count(name)) {
    // A stored tensor for a device: from the mapped shard straight to the device (no host
    // clone) and scanned for NaN/Inf there (the same verdict without a pass over host memory:
    // on a 70B block that pass and the clone were most of the block's load time). The dtype
    // cast is IEEE round-to-nearest-even on either side.
    at::Tensor t = get_stored(name).to(device);
    check_source_once(file_of(name), name, t);
    return t.scalar_type() == dtype ? t : t.to(dtype);
  }
  if (s == source_tensors_.end() || device.is_cpu()) return get_as(name, dtype).to(device);
  at::Tensor t = dequantize_source(
      s->second, [this](const std::string& n) { return get_raw(n); }, source_dtype_, device);
  return t.scalar_type() == dtype ? t : t.to(dtype);
}

bool ModelWeights::has(const std::string& name) const {
  return virtual_.count(name) || split_.count(name) || (where_.count(name) && !hidden_.count(name));
}

const TensorInfo* ModelWeights::stored_info(const std::string& name) const {
  auto it = where_.find(name);
  return it == where_.end() ? nullptr : &files_[it->second]->at(name);
}

std::vector<std::string> ModelWeights::stored_names() const {
  std::vector<std::string> out;
  for (const auto& kv : where_) out.push_back(kv.first);
  return out;
}

at::Tensor ModelWeights::get_stored(const std::string& name) const {
  auto it = where_.find(name);
  if (it == where_.end()) SQ_THROW(InputError, dir_ << ": tensor \"" << name << "\" not found");
  const auto& f = files_[it->second];
  return view(f, f->at(name));
}

std::vector<std::string> ModelWeights::names() const {
  std::vector<std::string> out;
  for (const auto& kv : where_)
    if (!hidden_.count(kv.first)) out.push_back(kv.first);
  for (const auto& kv : virtual_) out.push_back(kv.first);
  for (const auto& kv : split_) out.push_back(kv.first);
  std::sort(out.begin(), out.end());
  return out;
}

const TensorInfo& ModelWeights::info(const std::string& name) const {
  auto v = virtual_.find(name);
  if (v != virtual_.end()) return v->second;
  if (auto s = split_.find(name); s != split_.end()) return s->second.info;
  const TensorInfo* ti = hidden_.count(name) ? nullptr : stored_info(name);
  if (!ti) SQ_THROW(InputError, dir_ << ": tensor \"" << name << "\" not found");
  return *ti;
}

const std::string& ModelWeights::file_of(const std::string& name) const {
  if (auto s = split_.find(name); s != split_.end()) return file_of(s->second.fused);
  auto m = marker_.find(name);
  if (m != marker_.end()) return file_of(m->second);
  auto it = where_.find(name);
  if (it == where_.end()) SQ_THROW(InputError, dir_ << ": tensor \"" << name << "\" not found");
  return files_[it->second]->path();
}

at::Tensor ModelWeights::get(const std::string& name) const {
  if (auto s = split_.find(name); s != split_.end()) {
    at::Tensor t = expert_slice(get_stored(s->second.fused), s->second);
    check_source_once(file_of(name), name, t);
    return t;
  }
  if (auto s = source_tensors_.find(name); s != source_tensors_.end())
    return dequantize_source(
        s->second, [this](const std::string& n) { return get_raw(n); }, source_dtype_, at::kCPU);
  auto m = marker_.find(name);
  if (m != marker_.end()) {
    const std::string prefix = name.substr(0, name.size() - 7);  // drop ".weight"
    at::Tensor w = dequantize_stored(*quant_, prefix, [this](const std::string& n) {
      return where_.count(n) ? get_stored(n) : at::Tensor();
    });
    check_source_once(file_of(name), name, w);
    return w;
  }
  if (hidden_.count(name))
    SQ_THROW(InputError, dir_ << ": tensor \"" << name
                              << "\" is packed; read it with get_stored() or use the dequantized "
                              << name.substr(0, name.rfind('.')) << ".weight");
  at::Tensor t = get_stored(name);
  check_source_once(file_of(name), name, t);  // NaN/Inf is an error before any work uses it
  return t;
}

at::Tensor ModelWeights::get_as(const std::string& name, at::ScalarType dtype) const {
  at::Tensor t = get(name);
  if (source_tensors_.count(name)) return t.scalar_type() == dtype ? t : t.to(dtype);  // fresh
  // An expert slice is a transposed view: one contiguous copy (clone/to would keep its strides).
  if (split_.count(name)) return at::empty(t.sizes(), t.options().dtype(dtype)).copy_(t);
  return t.scalar_type() == dtype ? t.clone() : t.to(dtype);
}

std::vector<std::string> ModelWeights::files() const {
  std::vector<std::string> out;
  for (const auto& f : files_) out.push_back(f->path());
  return out;
}

uint64_t ModelWeights::total_bytes() const {
  uint64_t n = 0;
  for (const auto& f : files_) n += f->file_size();
  return n;
}

}  // namespace sq::io
