#include "io/model_weights.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "common/check.h"
#include "io/tensor.h"

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
        SQ_THROW(InputError, index_path.string() << ": weight_map[\"" << it.key()
                                                 << "\"] is not a file name");
      index_map[it.key()] = it.value().get<std::string>();
      if (seen.insert(it.value().get<std::string>()).second)
        shard_names.push_back(it.value().get<std::string>());
    }
    std::sort(shard_names.begin(), shard_names.end());
    for (const auto& s : shard_names)
      if (!fs::exists(fs::path(model_dir) / s))
        SQ_THROW(InputError, index_path.string() << " lists shard \"" << s
                                                 << "\" which is missing from " << model_dir);
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
}

std::vector<std::string> ModelWeights::names() const {
  std::vector<std::string> out;
  for (const auto& kv : where_) out.push_back(kv.first);
  return out;
}

const TensorInfo& ModelWeights::info(const std::string& name) const {
  auto it = where_.find(name);
  if (it == where_.end()) SQ_THROW(InputError, dir_ << ": tensor \"" << name << "\" not found");
  return files_[it->second]->at(name);
}

const std::string& ModelWeights::file_of(const std::string& name) const {
  auto it = where_.find(name);
  if (it == where_.end()) SQ_THROW(InputError, dir_ << ": tensor \"" << name << "\" not found");
  return files_[it->second]->path();
}

at::Tensor ModelWeights::get(const std::string& name) const {
  auto it = where_.find(name);
  if (it == where_.end()) SQ_THROW(InputError, dir_ << ": tensor \"" << name << "\" not found");
  const auto& f = files_[it->second];
  return view(f, f->at(name));
}

at::Tensor ModelWeights::get_as(const std::string& name, at::ScalarType dtype) const {
  at::Tensor t = get(name);
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
