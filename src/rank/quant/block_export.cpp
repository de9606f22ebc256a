#include "rank/quant/block_export.h"

#include <set>
#include <unordered_map>

#include "common/check.h"
#include "io/format/format_registry.h"
#include "io/format/quantized_view.h"
#include "io/safetensors/tensor.h"

namespace sq::rank {
namespace {

bool ends_with(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

// The block-held tensor for a checkpoint name, or undefined when the block does not hold it.
at::Tensor held_tensor(const Block& b, const std::string& name) {
  for (const char* suffix : {".weight", ".bias"}) {
    if (!ends_with(name, suffix)) continue;
    const std::string base = name.substr(0, name.size() - std::string(suffix).size());
    const bool is_weight = std::string(suffix) == ".weight";
    if (b.has_linear(base)) {
      const Linear& l = b.linear(base);
      at::Tensor t = is_weight ? l.weight : l.bias;
      if (t.defined() && is_weight && l.transposed) t = t.t();
      return t;
    }
    if (b.has_norm(base)) {
      const Norm& n = b.norm(base);
      return is_weight ? n.weight : n.bias;
    }
  }
  auto& extras = const_cast<Block&>(b).extras();
  auto it = extras.find(name);
  return it == extras.end() ? at::Tensor() : it->second;
}

}  // namespace

NamedTensors export_block(const Block& block,
                          const std::map<std::string, solvers::QuantizedLinear>& quantized,
                          const io::ModelWeights& w, const ExportOptions& opts,
                          std::vector<std::string>* unpacked_qzeros) {
  const io::FormatRow& row = io::format_row(opts.format);
  // Zeros the writer packs later (GPTQ): until then packed in a row that stores any zero.
  const bool defer = row.pack_zeros != nullptr && unpacked_qzeros != nullptr;
  const io::Format storable = row.widened.value_or(opts.format);
  NamedTensors out;
  const std::string pre = block.prefix() + ".";
  for (const auto& name : w.names()) {
    if (name.compare(0, pre.size(), pre) != 0) continue;
    if (ends_with(name, ".weight")) {
      const std::string base = name.substr(0, name.size() - 7);
      auto q = quantized.find(base);
      if (q != quantized.end()) {
        io::QuantLinear ql;
        // Packed on the block's device (on a GPU the bit packing is a few tensor ops); only the
        // packed words travel to the host. A stored result (rank::store_result) may hold uint8
        // codes, or sit in host memory: the packers take the canonical int32 codes.
        const at::Device dev = block.device();
        ql.codes = q->second.codes.to(dev).to(at::kInt).contiguous();
        ql.zeros = q->second.zeros.to(dev).contiguous();
        ql.scales = q->second.scales.to(dev).contiguous();
        ql.g_idx = q->second.g_idx.to(dev).contiguous();
        ql.scheme = opts.scheme;
        // Deferred zeros: packed storably here, replaced by the true zeros below.
        io::PackedLinear p = io::pack(ql, defer ? storable : opts.format, opts.pack);
        for (auto& kv : p.tensors) {
          const std::string tname = base + "." + kv.first;
          if (defer && kv.first == "qzeros") {
            out.emplace_back(tname, ql.zeros.to(at::kCPU).to(at::kInt).contiguous());
            unpacked_qzeros->push_back(tname);
          } else {
            out.emplace_back(tname, kv.second.to(at::kCPU).contiguous());
          }
        }
        continue;
      }
    }
    const auto& info = w.info(name);
    at::Tensor t = held_tensor(block, name);
    if (!t.defined()) {
      out.emplace_back(name, w.get(name));
      continue;
    }
    SQ_CHECK(t.numel() == info.numel(), "block tensor " << name << " has " << t.numel()
                                                        << " elements, checkpoint "
                                                        << info.numel());
    out.emplace_back(
        name, t.to(at::kCPU).to(io::to_scalar_type(info.dtype)).reshape(info.shape).contiguous());
  }
  return out;
}

bool import_is_exact(const ExportOptions& opts) {
  if (opts.format != io::Format::kCompressedPack) return true;  // fp16 scales always
  return opts.pack.scale_dtype == at::kHalf || opts.pack.scale_dtype == at::kFloat;
}

std::vector<std::string> import_quantized(Block& block, const NamedTensors& tensors,
                                          const std::vector<std::string>& unpacked_qzeros,
                                          const ExportOptions& opts) {
  const io::FormatRow& row = io::format_row(opts.format);
  const std::string marker = std::string(".") + row.marker;
  std::unordered_map<std::string, at::Tensor> by_name;
  for (const auto& [name, t] : tensors) by_name.emplace(name, t);
  const std::set<std::string> unpacked(unpacked_qzeros.begin(), unpacked_qzeros.end());
  std::vector<std::string> done;
  for (const auto& [name, t] : tensors) {
    if (!ends_with(name, marker)) continue;
    const std::string base = name.substr(0, name.size() - marker.size());
    const std::string zeros_name = base + ".qzeros";
    // export_block packs a linear whose zeros it defers in the row that stores any zero, and
    // returns the true zeros; they are packed again here with that row.
    const bool deferred = unpacked.count(zeros_name) != 0;
    io::QuantizedLayout layout;
    layout.format = deferred ? row.widened.value_or(opts.format) : opts.format;
    layout.scheme = opts.scheme;
    const io::FormatRow& packed_row = io::format_row(layout.format);
    const io::StoredLookup lookup = [&](const std::string& n) {
      auto it = by_name.find(n);
      if (it == by_name.end()) return at::Tensor();
      if (deferred && n == zeros_name) return packed_row.pack_zeros(it->second, opts.scheme.bits);
      return it->second;
    };
    SQ_CHECK(block.has_linear(base),
             "import_quantized: block " << block.prefix() << " has no linear " << base);
    Linear& l = block.linear(base);
    at::Tensor w = io::dequantize_stored(layout, base, lookup);
    SQ_CHECK(w.sizes() == l.weight.sizes(),
             "import_quantized: " << base << " dequantizes to " << w.sizes() << ", the block holds "
                                  << l.weight.sizes());
    l.weight = w.to(l.weight.device()).to(l.weight.scalar_type());
    done.push_back(base);
  }
  return done;
}

}  // namespace sq::rank
