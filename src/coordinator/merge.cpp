// Fragments carry their tensor order in metadata because a safetensors file is laid out sorted by
// name, while shard boundaries depend on the order tensors reach the ShardedWriter.
#include "coordinator/merge.h"

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

#include "common/check.h"
#include "common/fs_util.h"
#include "common/log.h"
#include "io/pack.h"
#include "io/safetensors.h"
#include "io/tensor.h"

namespace sq::coordinator {
namespace {

nlohmann::json metadata_list(const io::SafetensorsFile& file, const std::string& path,
                             const std::string& key, bool required) {
  auto it = file.metadata().find(key);
  if (it == file.metadata().end()) {
    SQ_CHECK(!required, "fragment " << path << " has no '" << key << "' metadata");
    return nlohmann::json::array();
  }
  nlohmann::json list;
  try {
    list = nlohmann::json::parse(it->second);
  } catch (const nlohmann::json::exception& e) {
    SQ_THROW(InternalError, "fragment " << path << ": bad '" << key << "' metadata: " << e.what());
  }
  SQ_CHECK(list.is_array(), "fragment " << path << ": '" << key << "' is not a list");
  return list;
}

struct Fragment {
  std::string path;
  std::shared_ptr<io::SafetensorsFile> file;
  std::set<std::string> unpacked;
};

}  // namespace

std::string fragments_dir(const std::string& partial_dir) {
  return partial_dir + "/.fragments";
}

std::string fragment_path(const std::string& partial_dir, int64_t block) {
  char name[40];
  std::snprintf(name, sizeof name, "/block-%06lld.safetensors", static_cast<long long>(block));
  return fragments_dir(partial_dir) + name;
}

void write_fragment(const std::string& path, const rank::NamedTensors& tensors,
                    const std::vector<std::string>& unpacked_qzeros) {
  std::vector<io::TensorToWrite> out;
  nlohmann::json order = nlohmann::json::array();
  for (const auto& [name, t] : tensors) {
    order.push_back(name);
    out.push_back({name, t.is_cpu() ? t : t.cpu(), {}});
  }
  io::write_safetensors(
      path, std::move(out),
      {{"order", order.dump()}, {"unpacked_qzeros", nlohmann::json(unpacked_qzeros).dump()}});
}

bool gptq_version_known(const rank::ExportOptions& x) {
  const bool gptq = x.format == io::PackFormat::kGptqV1 || x.format == io::PackFormat::kGptqV2;
  return !gptq || x.pack.symmetric.value_or(false);  // unset: zeros may be asymmetric
}

void add_block(io::ShardedWriter& writer, const rank::NamedTensors& tensors,
               const std::vector<std::string>& unpacked_qzeros, int bits) {
  const std::set<std::string> unpacked(unpacked_qzeros.begin(), unpacked_qzeros.end());
  for (const auto& [name, t] : tensors) {
    if (unpacked.count(name) == 0) {
      writer.add(name, t);
      continue;
    }
    SQ_CHECK(io::gptq_v1_can_store(t, bits),
             name << ": a zero point gptq v1 cannot store in a checkpoint whose version was "
                     "known before the first block (symmetric GPTQ)");
    writer.add(name, io::pack_gptq_qzeros(t, bits, io::PackFormat::kGptqV1));
  }
}

FragmentContent read_fragment(const std::string& path) {
  auto file = io::SafetensorsFile::open(path);
  FragmentContent c;
  for (const auto& name : metadata_list(*file, path, "unpacked_qzeros", false))
    c.unpacked_qzeros.push_back(name.get<std::string>());
  for (const auto& name : metadata_list(*file, path, "order", true)) {
    const std::string n = name.get<std::string>();
    const io::TensorInfo* info = file->find(n);
    SQ_CHECK(info != nullptr, "fragment " << path << ": 'order' names missing tensor " << n);
    c.tensors.emplace_back(n, io::view(file, *info));
  }
  return c;
}

bool merge_fragments(const std::vector<std::string>& paths, io::ShardedWriter& writer, int bits) {
  std::vector<Fragment> frags;
  bool v2 = false;
  for (const auto& path : paths) {
    Fragment f{path, io::SafetensorsFile::open(path), {}};
    for (const auto& name : metadata_list(*f.file, path, "unpacked_qzeros", false)) {
      const std::string n = name.get<std::string>();
      const io::TensorInfo* info = f.file->find(n);
      SQ_CHECK(info != nullptr, "fragment " << path << ": unpacked qzeros " << n << " missing");
      v2 = v2 || !io::gptq_v1_can_store(io::view(f.file, *info), bits);
      f.unpacked.insert(n);
    }
    frags.push_back(std::move(f));
  }
  const io::PackFormat gptq = v2 ? io::PackFormat::kGptqV2 : io::PackFormat::kGptqV1;
  for (const auto& f : frags) {
    const nlohmann::json order = metadata_list(*f.file, f.path, "order", true);
    SQ_CHECK(order.size() == f.file->tensors().size(),
             "fragment " << f.path << ": 'order' lists " << order.size() << " names, file holds "
                         << f.file->tensors().size() << " tensors");
    for (const auto& name : order) {
      const std::string n = name.get<std::string>();
      const io::TensorInfo* info = f.file->find(n);
      SQ_CHECK(info != nullptr, "fragment " << f.path << ": 'order' names missing tensor " << n);
      at::Tensor t = io::view(f.file, *info);
      writer.add(n, f.unpacked.count(n) ? io::pack_gptq_qzeros(t, bits, gptq) : t);
    }
  }
  if (v2) log()->info("an asymmetric zero point of 0 occurred: checkpoint written as gptq_v2");
  return v2;
}

void remove_fragments(const std::string& partial_dir) {
  sq::remove_tree(fragments_dir(partial_dir));
}

}  // namespace sq::coordinator
