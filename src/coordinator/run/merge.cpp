// Fragments carry their tensor order in metadata because a safetensors file is laid out sorted by
// name, while shard boundaries depend on the order tensors reach the ShardedWriter.
#include "coordinator/run/merge.h"

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

#include "common/check.h"
#include "common/fs_util.h"
#include "common/log.h"
#include "io/format/format_registry.h"
#include "io/safetensors/safetensors.h"
#include "io/safetensors/tensor.h"

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

bool format_known_before_solves(const rank::ExportOptions& x) {
  // Symmetric zeros are all 2^(bits-1), which every row stores; unset: they may be asymmetric.
  return !io::format_row(x.format).widened || x.pack.symmetric.value_or(false);
}

void add_block(io::ShardedWriter& writer, const rank::NamedTensors& tensors,
               const std::vector<std::string>& unpacked_qzeros, int bits, io::Format format) {
  const io::FormatRow& row = io::format_row(format);
  const std::set<std::string> unpacked(unpacked_qzeros.begin(), unpacked_qzeros.end());
  for (const auto& [name, t] : tensors) {
    if (unpacked.count(name) == 0) {
      writer.add(name, t);
      continue;
    }
    SQ_CHECK(row.pack_zeros && row.can_store_zeros(t, bits),
             name << ": a zero point " << row.name
                  << " cannot store in a checkpoint whose format was known before the first "
                     "block (symmetric GPTQ)");
    writer.add(name, row.pack_zeros(t, bits));
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

io::Format merge_fragments(const std::vector<std::string>& paths, io::ShardedWriter& writer,
                           int bits, io::Format format) {
  const io::FormatRow& asked = io::format_row(format);
  std::vector<Fragment> frags;
  bool widen = false;
  for (const auto& path : paths) {
    Fragment f{path, io::SafetensorsFile::open(path), {}};
    for (const auto& name : metadata_list(*f.file, path, "unpacked_qzeros", false)) {
      const std::string n = name.get<std::string>();
      const io::TensorInfo* info = f.file->find(n);
      SQ_CHECK(info != nullptr, "fragment " << path << ": unpacked qzeros " << n << " missing");
      SQ_CHECK(asked.can_store_zeros, "fragment " << path << ": unpacked qzeros " << n << " in a "
                                                  << asked.name << " checkpoint");
      widen = widen || !asked.can_store_zeros(io::view(f.file, *info), bits);
      f.unpacked.insert(n);
    }
    frags.push_back(std::move(f));
  }
  SQ_CHECK(!widen || asked.widened, asked.name << " cannot store a zero and has no wider row");
  const io::Format written = widen ? *asked.widened : format;
  const io::FormatRow& row = io::format_row(written);
  for (auto& f : frags) {
    const nlohmann::json order = metadata_list(*f.file, f.path, "order", true);
    SQ_CHECK(order.size() == f.file->tensors().size(),
             "fragment " << f.path << ": 'order' lists " << order.size() << " names, file holds "
                         << f.file->tensors().size() << " tensors");
    for (const auto& name : order) {
      const std::string n = name.get<std::string>();
      const io::TensorInfo* info = f.file->find(n);
      SQ_CHECK(info != nullptr, "fragment " << f.path << ": 'order' names missing tensor " << n);
      at::Tensor t = io::view(f.file, *info);
      writer.add(n, f.unpacked.count(n) ? row.pack_zeros(t, bits) : t);
    }
    // The writer has its own copy of every tensor (spilled): unmapping the fragment now keeps
    // its pages out of the resident set while the next ones are read.
    f.file.reset();
  }
  if (widen)
    log()->info(
        "a zero point that {} cannot store occurred (an asymmetric zero of 0): checkpoint written "
        "as {}",
        asked.name, row.name);
  return written;
}

void remove_fragments(const std::string& partial_dir) {
  sq::remove_tree(fragments_dir(partial_dir));
}

}  // namespace sq::coordinator
