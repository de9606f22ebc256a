#include "rank/quant/block_export.h"

#include "common/check.h"
#include "io/format_registry.h"
#include "io/tensor.h"

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

}  // namespace sq::rank
