// Fragments carry their tensor order in metadata because a safetensors file is laid out sorted by
// name, while shard boundaries depend on the order tensors reach the ShardedWriter.
#include "coordinator/merge.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/check.h"
#include "common/fs_util.h"
#include "io/safetensors.h"
#include "io/tensor.h"

namespace sq::coordinator {

namespace fs = std::filesystem;

std::string fragments_dir(const std::string& partial_dir) {
  return partial_dir + "/.fragments";
}

std::string fragment_path(const std::string& partial_dir, int rank) {
  return fragments_dir(partial_dir) + "/rank-" + std::to_string(rank) + ".safetensors";
}

void write_fragment(const std::string& path, const rank::NamedTensors& tensors) {
  std::vector<io::TensorToWrite> out;
  nlohmann::json order = nlohmann::json::array();
  for (const auto& [name, t] : tensors) {
    order.push_back(name);
    out.push_back({name, t.is_cpu() ? t : t.cpu(), {}});
  }
  io::write_safetensors(path, std::move(out), {{"order", order.dump()}});
}

void add_fragment(const std::string& path, io::ShardedWriter& writer) {
  auto file = io::SafetensorsFile::open(path);
  auto it = file->metadata().find("order");
  SQ_CHECK(it != file->metadata().end(), "fragment " << path << " has no 'order' metadata");
  nlohmann::json order;
  try {
    order = nlohmann::json::parse(it->second);
  } catch (const nlohmann::json::exception& e) {
    SQ_THROW(InternalError, "fragment " << path << ": bad 'order' metadata: " << e.what());
  }
  SQ_CHECK(order.is_array() && order.size() == file->tensors().size(),
           "fragment " << path << ": 'order' lists " << order.size() << " names, file holds "
                       << file->tensors().size() << " tensors");
  for (const auto& name : order) {
    const std::string n = name.get<std::string>();
    const io::TensorInfo* info = file->find(n);
    SQ_CHECK(info != nullptr, "fragment " << path << ": 'order' names missing tensor " << n);
    writer.add(n, io::view(file, *info));
  }
}

void remove_fragments(const std::string& partial_dir) {
  std::error_code ec;
  sq::remove_tree(fragments_dir(partial_dir));
}

}  // namespace sq::coordinator
